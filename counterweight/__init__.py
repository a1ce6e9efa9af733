"""Counterweight: rebalance how AI is portrayed in LLM pretraining data.

Driver-side library. Executor-side code (pure functions over Arrow/pandas batches) lives in the
top-level ``udfs`` package; thin ``spark-submit`` entry points live in ``jobs/``.
"""

__version__ = "0.1.0"

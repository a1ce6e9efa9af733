"""Executor-side code: pure functions over records and Arrow/pandas batches.

Nothing in this package creates or imports a SparkSession; every function here can be tested
without Spark, and Spark's Python workers import it (shipped with the package or ``--py-files``).
"""

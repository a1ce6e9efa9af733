"""Pipeline: ingest -> label -> mix -> report in ONE SparkSession (what ``make demo`` runs).

    .venv/bin/spark-submit jobs/pipeline.py lake.root=./lake
    .venv/bin/spark-submit jobs/pipeline.py input=jsonl input.path=data/raw/*.jsonl.gz policy=balance

Each step is the same function its own job runs, with its own run id and lineage, so the tables
it writes are indistinguishable from running the jobs one by one.
"""

from __future__ import annotations

import importlib

from counterweight import columns as C

STEPS = ("ingest", "label", "mix", "report")


def run(ctx) -> dict:
    from counterweight.cli import JOBS, make_context

    summary = {}
    for step in STEPS:
        target, _ = JOBS[step]
        module, func = target.split(":")
        step_ctx = make_context(step, ctx.cfg, ctx.spark, run_id=f"{ctx.run_id}-{step}")
        print(f"[counterweight] pipeline step {step} (run {step_ctx.run_id})", flush=True)
        summary[step] = getattr(importlib.import_module(module), func)(step_ctx)
    root = ctx.lake.root
    print(f"[counterweight] pipeline done. Tables under {root}: "
          + ", ".join(t for t in (C.DOCUMENTS, C.QUARANTINE, C.LABELS, C.MIX, C.MIX_REPORT) if ctx.lake.exists(t)), flush=True)
    out = {step: {k: v for k, v in s.items() if not isinstance(v, dict)} for step, s in summary.items()}
    if "report" in summary:
        out["report_path"] = summary["report"]["path"]
    return out

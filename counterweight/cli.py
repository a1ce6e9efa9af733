"""Job runner shared by every entry point: parse config, build the session, run, exit with a code.

    python -m counterweight <job> [hydra overrides]      # same as spark-submit jobs/<job>.py
    python -m counterweight <job> --cfg                  # print the resolved config and exit

Exit codes come from :mod:`counterweight.errors` (2 config, 3 bad input, 4 conflict, 5 transient,
6 reconciliation, 1 unexpected). Configuration is validated before Spark starts.
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
import uuid
from dataclasses import dataclass
from typing import Callable, Optional

from omegaconf import OmegaConf

from counterweight import config
from counterweight.errors import CounterweightError

log = logging.getLogger("counterweight")

# job name -> ("module:function" taking a JobContext and returning a summary dict, needs Spark)
JOBS = {
    "ingest": ("counterweight.ingest:run", True),
    "label": ("counterweight.label:run", True),
    "evaluate": ("counterweight.evaluate:run", True),
    "train": ("counterweight.train:run", False),
    "pipeline": ("counterweight.pipeline:run", True),
    "mix": ("counterweight.mix:run", True),
    "export": ("counterweight.export:run", True),
    "report": ("counterweight.report:run", True),
    "maintain": ("counterweight.maintain:run", True),
}


@dataclass
class JobContext:
    job: str
    cfg: object
    spark: object
    lake: object
    run_id: str


def _resolve(job: str) -> tuple[Callable, bool]:
    if job not in JOBS:
        raise config.ConfigError(f"unknown job '{job}'; valid jobs: {', '.join(sorted(JOBS))}")
    target, needs_spark = JOBS[job]
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func), needs_spark


def make_context(job: str, cfg, spark=None, needs_spark: bool = True, run_id: Optional[str] = None) -> JobContext:
    """Build the session (unless given) and the lake for one run of ``job``."""
    from counterweight.lake import Lake, Lineage
    from counterweight.session import build_session

    run_id = run_id or cfg.run.id or uuid.uuid4().hex
    if not needs_spark:
        return JobContext(job, cfg, None, None, run_id)
    spark = spark or build_session(cfg)
    lineage = Lineage(job=job, run_id=run_id, config_hash=config.config_hash(cfg))
    lake = Lake(spark, cfg.lake.root, lineage, engine=cfg.lake.engine.value, lock=cfg.lake.lock,
                lock_timeout_s=cfg.lake.lock_timeout_s, row_group_bytes=cfg.lake.row_group_bytes)
    return JobContext(job, cfg, spark, lake, run_id)


def run(job: str, overrides: list[str], spark=None) -> dict:
    """Run ``job`` in this process (raises CounterweightError subclasses on failure)."""
    func, needs_spark = _resolve(job)
    cfg = config.load(overrides)
    ctx = make_context(job, cfg, spark, needs_spark)
    log.info("%s run %s (config %s)", job, ctx.run_id, config.config_hash(cfg)[:12])
    return func(ctx)


def main(job: Optional[str], argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="[counterweight] %(message)s", stream=sys.stdout)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    if job is None:
        if not argv or argv[0].startswith("-"):
            print(f"usage: python -m counterweight <job> [overrides]; jobs: {', '.join(sorted(JOBS))}")
            return 2
        job, argv = argv[0], argv[1:]
    if "--help" in argv or "-h" in argv:
        print(f"usage: spark-submit jobs/{job}.py [key=value ...] [--cfg]\n"
              f"config: {config.conf_dir()}/config.yaml; schema: counterweight/config.py")
        return 0
    try:
        if "--cfg" in argv:
            print(OmegaConf.to_yaml(config.load([a for a in argv if a != "--cfg"])))
            return 0
        summary = run(job, argv)
    except CounterweightError as exc:
        print(f"[counterweight] {job} failed ({type(exc).__name__}): {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except Exception:  # noqa: BLE001 - report, never swallow: exit 1 with the traceback
        traceback.print_exc()
        print(f"[counterweight] {job} failed with an unexpected error (above)", file=sys.stderr, flush=True)
        return 1
    print(f"[counterweight] {job} finished: {summary}", flush=True)
    if isinstance(summary, dict) and summary.get("report_path"):
        print(f"[counterweight] report: {summary['report_path']}", flush=True)
    return 0

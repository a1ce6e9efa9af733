"""(c) The label job in steady state: one SparkSession, the job run several times, later runs timed.

    .venv/bin/python bench/steady_label.py --lake bench/work/lake/n100000 --runs 3

Builds the session the way every job does (``counterweight.session.build_session`` from the
project config, with ``spark.master=local[2]``), then calls
``counterweight.cli.run("label", ["lake.root=...", "label.relabel_all=true"], spark=session)``
``1 + runs`` times. The first call is the warm-up (JVM JIT, Python workers forked, models loaded
into the workers' cache); the following ``runs`` calls are timed. Each call is the full job:
Delta read of ``documents``, scoring, decisions, Delta write (a merge into ``labels``).

Prints ``BENCH_RUN {json}`` per call (wall seconds; CPU seconds of this process tree: driver
Python, driver JVM and Python workers; the share of the machine's CPU used by other processes
meanwhile) and the job's own stage lines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from procmon import machine_cpu_seconds, tree_cpu_seconds  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--override", action="append", default=[], help="extra Hydra override for the label job")
    args = ap.parse_args()

    import logging

    from counterweight import cli, config
    from counterweight.session import build_session

    logging.basicConfig(level=logging.INFO, format="[counterweight] %(message)s", stream=sys.stdout)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    master = f"spark.master='local[{args.cores}]'"
    overrides = [master, f"lake.root={args.lake}", "label.relabel_all=true", *args.override]
    session = build_session(config.load(overrides))
    print(f"BENCH_SESSION {json.dumps({'master': session.sparkContext.master})}", flush=True)
    for i in range(1 + args.runs):
        busy0, cpu0, t0 = machine_cpu_seconds()[0], tree_cpu_seconds(os.getpid()), time.perf_counter()
        summary = cli.run("label", overrides, spark=session)
        seconds = time.perf_counter() - t0
        cpu = tree_cpu_seconds(os.getpid()) - cpu0
        others = max(0.0, machine_cpu_seconds()[0] - busy0 - cpu)
        record = {"run": i, "warmup": i == 0, "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 1),
                  "others_cpu_share": round(others / (seconds * len(os.sched_getaffinity(0))), 3),
                  "scored": summary["scored"], "labels_version": summary.get("labels_version")}
        print(f"BENCH_RUN {json.dumps(record)}", flush=True)
    session.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where the label job spends its time: py-spy on the Python workers, CPU split by process role.

    .venv/bin/python bench/profile_label.py --lake bench/work/lake/n20000 --out bench/results/profile-n20000

One SparkSession (``local[2]``); a warm-up label run; then a second run with ``py-spy record``
attached to the ``pyspark.daemon`` process and the workers it forks (``--subprocesses``), sampling
at ``--rate`` Hz. Writes, under ``--out``:

* ``pyspy.txt``: collapsed stacks (``frame;frame;... count``; open in speedscope.app or feed to
  flamegraph.pl);
* ``summary.json``: wall and CPU seconds of the profiled run per role (driver JVM, driver Python,
  Python workers), the job's stage timings, and the workers' py-spy samples by category
  (fastText predict, model_text, windows, Arrow in/out, idle between tasks) and by function.

Needs py-spy (``make bench-setup`` installs it into bench/.venv-tools) and ptrace permission.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from procmon import ROLES, cmdline, cpu_seconds, descendants, role_of  # noqa: E402

PYSPY = str(BENCH / ".venv-tools/bin/py-spy")


def cpu_by_role(root: int) -> dict[str, float]:
    out = {r: 0.0 for r in ROLES}
    roles: dict[int, str] = {}
    for pid in descendants(root):
        cmd = cmdline(pid)
        parent = None
        try:
            with open(f"/proc/{pid}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            parent = roles.get(ppid)
        except (OSError, ValueError, IndexError):
            pass
        roles[pid] = role_of(cmd, parent)
        out[roles[pid]] += cpu_seconds(pid) or 0.0
    return out


def daemon_pid(root: int) -> int | None:
    for pid in descendants(root):
        if "pyspark.daemon" in cmdline(pid):
            return pid
    return None


SCORING = (  # inside udfs.scoring.score_texts: first match wins
    ("fastText predict", "predict_matrix"),
    ("model_text (fastText input normalisation)", "model_text"),
    ("windows (split into 400-word windows)", "windows"),
    ("focus/aggregate (window maths)", "focus"),
    ("focus/aggregate (window maths)", "aggregate"),
)


def categorise(names: list[str]) -> str:
    if any(x.startswith("score_texts") for x in names):
        for label, needle in SCORING:
            if any(x.startswith(needle) for x in names):
                return label
        return "score_texts, other"
    if any(x.startswith(("load_stream", "ArrowStreamSerializer.load_stream", "RecordBatchStreamReader"))
           for x in names):
        return "Arrow in: read batches from the JVM"
    if any(x.startswith("label_batches") for x in names):
        return "Arrow out: build result batches"
    if any(x.startswith(("dump_stream", "ArrowStreamSerializer.dump_stream")) for x in names):
        return "Arrow out: write batches to the JVM"
    return "other in-task Python"


def _function(frame: str) -> str:
    # py-spy frames look like "function (path/file.py:line)"; drop the line to group per function
    return frame.rsplit(":", 1)[0] + ")" if frame.endswith(")") and ":" in frame else frame


def aggregate(collapsed: Path, top: int = 25) -> dict:
    """Shares of the Python workers' samples (the daemon's own manager loop is left out).

    ``idle between tasks`` is a worker blocked in ``read_int`` at the top of ``worker.main``,
    waiting for the JVM to send the next task (the JVM-only phases of the job: reading the
    documents count, writing labels). Everything else is time inside a task, split into
    categories (:func:`categorise`), with self-time per function for detail.
    """
    cats, self_counts = collections.Counter(), collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or "worker (daemon.py" not in stack:
            continue
        n = int(count)
        total += n
        names = [_function(f) for f in stack.split(";")]
        if names[-1].startswith("read_int") and not any(x.startswith("main.<locals>.process") for x in names):
            cats["idle between tasks (waiting for the JVM)"] += n
            continue
        self_counts[names[-1]] += n
        cats[categorise(names)] += n

    def table(counter):
        return [{"what": k, "share": round(v / total, 4)} for k, v in counter.most_common(top)] if total else []

    return {"worker_samples": total, "categories": table(cats), "self": table(self_counts)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--rate", type=int, default=50)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import logging

    from counterweight import cli, config
    from counterweight.session import build_session

    logging.basicConfig(level=logging.INFO, format="[counterweight] %(message)s", stream=sys.stdout)
    overrides = [f"spark.master='local[{args.cores}]'", f"lake.root={args.lake}", "label.relabel_all=true"]
    session = build_session(config.load(overrides))
    cli.run("label", overrides, spark=session)  # warm-up: workers forked, models loaded
    me = os.getpid()
    daemon = daemon_pid(me)
    if daemon is None:
        raise SystemExit("no pyspark.daemon process found under this driver")
    raw = out / "pyspy.txt"
    spy = subprocess.Popen([PYSPY, "record", "--pid", str(daemon), "--subprocesses", "--idle", "--rate",
                            str(args.rate), "--format", "raw", "--output", str(raw)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(1.0)
    cpu0, t0 = cpu_by_role(me), time.perf_counter()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        summary = cli.run("label", overrides, spark=session)
    seconds = time.perf_counter() - t0
    cpu1 = cpu_by_role(me)
    spy.send_signal(signal.SIGINT)
    spy_out = spy.communicate(timeout=120)[0].decode(errors="replace")
    session.stop()
    stages = [line for line in buf.getvalue().splitlines() if line.startswith("[counterweight] label:")]
    result = {
        "docs": summary["scored"], "seconds": round(seconds, 2),
        "cpu_seconds_by_role": {r: round(cpu1[r] - cpu0.get(r, 0.0), 1) for r in ROLES},
        "stages": stages, "pyspy": aggregate(raw) if raw.exists() else {"error": spy_out[-2000:]},
    }
    (out / "summary.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "pyspy"}, indent=1))
    for kind in ("categories", "self"):
        print(f"py-spy {kind} (share of Python worker samples, idle included):")
        for row in result["pyspy"].get(kind, [])[:15]:
            print(f"  {row['share'] * 100:5.1f}%  {row['what']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

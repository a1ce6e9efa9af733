"""Where the label job spends its time: py-spy on the Python workers, CPU split by process role.

    .venv/bin/python bench/profile_label.py --lake bench/work/lake/n20000 --out bench/results/profile-n20000

One SparkSession (``local[2]``); a warm-up label run; then a second run with ``py-spy record``
attached to the ``pyspark.daemon`` process and the workers it forks (``--subprocesses``), sampling
at ``--rate`` Hz. Writes, under ``--out``:

* ``pyspy.txt``: collapsed stacks (``frame;frame;... count``; open in speedscope.app or feed to
  flamegraph.pl);
* ``summary.json``: wall and CPU seconds of the profiled run per role (driver JVM, driver Python,
  Python workers), the job's stage timings, and the py-spy samples aggregated by function
  (self and inclusive share of worker samples, idle samples included, so time a worker spends
  waiting for the JVM to hand it the next Arrow batch shows up as idle).

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


def aggregate(collapsed: Path, top: int = 25) -> dict:
    """Self and inclusive sample shares per function from py-spy's collapsed ("raw") output."""
    self_counts, incl_counts = collections.Counter(), collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        # py-spy frames look like "function (file.py:line)"; drop the line to group per function
        names = [f.rsplit(":", 1)[0] + ")" if f.endswith(")") and ":" in f else f for f in frames]
        self_counts[names[-1]] += n
        for name in set(names):
            incl_counts[name] += n
    def table(counter):
        return [{"function": k, "share": round(v / total, 4)} for k, v in counter.most_common(top)]
    return {"samples": total, "self": table(self_counts), "inclusive": table(incl_counts)}


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
    for kind in ("self", "inclusive"):
        print(f"py-spy {kind} (share of worker samples, idle included):")
        for row in result["pyspy"].get(kind, [])[:15]:
            print(f"  {row['share'] * 100:5.1f}%  {row['function']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

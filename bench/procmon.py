"""Peak memory and CPU time of a process tree, from /proc (Linux only, no dependencies).

A Spark job started by ``spark-submit`` (or by a Python driver that creates a session) is a tree:

* the **driver JVM** (``java ... org.apache.spark.deploy.SparkSubmit``): the launcher script
  ``exec``s into it, or a Python driver starts it through py4j;
* the **driver Python** process (``jobs/label.py``, or the script that built the session);
* **Python workers** (``python -m pyspark.daemon`` and the workers it forks), children of the JVM.

:class:`TreeMonitor` polls the tree every ``interval`` seconds and keeps, per role, the peak RSS
(``VmHWM``, the kernel's own high-water mark, so short spikes between polls are not missed for a
process that is still alive at the next poll) and the CPU time (utime + stime) last seen per pid.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

CLK_TCK = os.sysconf("SC_CLK_TCK")
ROLES = ("driver_jvm", "driver_python", "python_workers", "other")


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as handle:
                    out += [int(x) for x in handle.read().split()]
            except OSError:
                continue
    except OSError:
        pass
    return out


def descendants(root: int) -> list[int]:
    """root and all its descendants (breadth first)."""
    seen, queue = [], [root]
    while queue:
        pid = queue.pop(0)
        if pid in seen:
            continue
        seen.append(pid)
        queue += children(pid)
    return seen


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def status_kb(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return None


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by the live processes of the tree (exited ones are not counted)."""
    return sum(c for c in (cpu_seconds(p) for p in descendants(root)) if c is not None)


def role_of(cmd: str, parent_role: str | None) -> str:
    if "pyspark.daemon" in cmd or "pyspark.worker" in cmd or parent_role == "python_workers":
        return "python_workers"
    exe = cmd.split(" ", 1)[0]
    if exe.endswith("java") and "org.apache.spark.deploy.SparkSubmit" in cmd:
        return "driver_jvm"
    if "python" in os.path.basename(exe):
        return "driver_python"
    return "other"


@dataclass
class Sample:
    peak_kb: dict[str, int] = field(default_factory=lambda: {r: 0 for r in ROLES})
    workers_sum_peak_kb: int = 0  # peak of the summed RSS of all Python workers at one poll
    cpu: dict[int, float] = field(default_factory=dict)  # pid -> last CPU seconds seen
    roles: dict[int, str] = field(default_factory=dict)
    cmds: dict[int, str] = field(default_factory=dict)
    polls: int = 0


class TreeMonitor(threading.Thread):
    def __init__(self, root: int, interval: float = 0.25):
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.data = Sample()
        self._halt = threading.Event()

    def poll(self) -> None:
        data = self.data
        parent_role: dict[int, str] = {}
        workers_now = 0
        queue = [self.root]
        seen = set()
        while queue:
            pid = queue.pop(0)
            if pid in seen:
                continue
            seen.add(pid)
            if pid not in data.roles or data.roles[pid] == "other":
                cmd = cmdline(pid)
                if not cmd:
                    continue
                data.cmds[pid] = cmd[:300]
                data.roles[pid] = role_of(cmd, parent_role.get(pid))
            role = data.roles[pid]
            mem = status_kb(pid)
            if mem:
                data.peak_kb[role] = max(data.peak_kb[role], mem.get("VmHWM", 0))
                if role == "python_workers":
                    workers_now += mem.get("VmRSS", 0)
            cpu = cpu_seconds(pid)
            if cpu is not None:
                data.cpu[pid] = cpu
            for child in children(pid):
                parent_role[child] = role
                queue.append(child)
        data.workers_sum_peak_kb = max(data.workers_sum_peak_kb, workers_now)
        data.polls += 1

    def run(self) -> None:
        while not self._halt.is_set():
            self.poll()
            self._halt.wait(self.interval)

    def stop(self) -> dict:
        self._halt.set()
        self.join(timeout=5)
        return self.result()

    def result(self) -> dict:
        data = self.data
        cpu_by_role = {r: 0.0 for r in ROLES}
        for pid, secs in data.cpu.items():
            cpu_by_role[data.roles.get(pid, "other")] += secs
        jvm_cmd = next((c for p, c in data.cmds.items() if data.roles.get(p) == "driver_jvm"), "")
        xmx = next((a for a in jvm_cmd.split() if a.startswith("-Xmx")), None)
        return {
            "peak_rss_mb": {r: round(kb / 1024, 1) for r, kb in data.peak_kb.items()},
            "python_workers_sum_peak_rss_mb": round(data.workers_sum_peak_kb / 1024, 1),
            "cpu_seconds": {r: round(s, 1) for r, s in cpu_by_role.items()},
            "cpu_seconds_total": round(sum(cpu_by_role.values()), 1),
            "driver_jvm_xmx": xmx,
            "polls": data.polls,
        }


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    idle = values[3] + values[4]
    return (total - idle) / CLK_TCK, total / CLK_TCK


def run_monitored(cmd: list[str], log_path: str, env: dict | None = None, cwd: str | None = None,
                  interval: float = 0.25) -> dict:
    """Run ``cmd`` (stdout+stderr to ``log_path``), timing it and monitoring its process tree.

    Also reports how busy the rest of the machine was meanwhile: ``others_cpu_share`` is the CPU
    time used by processes outside the tree divided by (wall time x CPUs): 0 on an idle machine.
    """
    import subprocess

    with open(log_path, "w") as log:
        busy0, _ = machine_cpu_seconds()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        monitor = TreeMonitor(proc.pid, interval)
        monitor.start()
        code = proc.wait()
        seconds = time.perf_counter() - started
        mem = monitor.stop()
        busy1, _ = machine_cpu_seconds()
    others = max(0.0, (busy1 - busy0) - mem["cpu_seconds_total"])
    ncpu = len(os.sched_getaffinity(0))
    return {"seconds": seconds, "exit_code": code, **mem, "machine_busy_cpu_seconds": round(busy1 - busy0, 1),
            "others_cpu_share": round(others / (seconds * ncpu), 3) if seconds > 0 else None}

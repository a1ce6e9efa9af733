r"""Start and stop a Spark standalone cluster on this machine (1 master + N workers) for tests.

The commands are the ones the README's "Running on a cluster" section shows, run from the repo root
with the virtualenv's pip-installed Spark (``.venv/bin/spark-class``; pip's pyspark has no
``sbin/start-*.sh``), in the environment of :meth:`StandaloneCluster.env` (``SPARK_LOCAL_IP``,
``SPARK_LOCAL_DIRS``, ``SPARK_MASTER_OPTS``; drivers submitted to the cluster get it too):

    .venv/bin/spark-class org.apache.spark.deploy.master.Master --host 127.0.0.1 --port P --webui-port W
    .venv/bin/spark-class org.apache.spark.deploy.worker.Worker spark://127.0.0.1:P \
        --host 127.0.0.1 --webui-port W2 --cores 1 --memory 2g --work-dir DIR

Every server listens on 127.0.0.1 only (``--host`` for RPC, ``SPARK_LOCAL_IP`` for the web UIs,
which otherwise bind 0.0.0.0; the master's REST submission server is switched off) on ports picked
free at start. Each process is started in its own session, so stopping it (SIGTERM, then SIGKILL
after a grace period) also stops what it started: a worker's executor JVMs and their Python workers. :meth:`StandaloneCluster.stop` is safe to call
twice and after partial starts; use the cluster as a context manager or from a fixture finalizer.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parent.parent
SPARK_CLASS = REPO / ".venv" / "bin" / "spark-class"
LOOPBACK = "127.0.0.1"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def wait_for(what: str, check: Callable[[], object], timeout: float, interval: float = 0.25,
             on_timeout: Optional[Callable[[], str]] = None):
    """Poll ``check`` until it returns a truthy value (returned); raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError, ValueError) as exc:  # server not up yet
            last_error = exc
        time.sleep(interval)
    detail = on_timeout() if on_timeout else ""
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error})\n{detail}")


def stop_process_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process's group, wait up to ``grace`` seconds, then SIGKILL what is left (and reap)."""
    pgid = proc.pid  # started with start_new_session=True: its pid is its group id
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break  # nothing left in the group
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and (proc.poll() is None or group_alive(pgid)):
            time.sleep(0.1)
        if proc.poll() is not None and not group_alive(pgid):
            break
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def group_alive(pgid: int) -> bool:
    """True while a process of group ``pgid`` runs (zombies waiting to be reaped do not count)."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():  # not Linux: ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
            return True
        except ProcessLookupError:
            return False
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    webui_port: int
    log: Path
    work_dir: Optional[Path] = None

    @property
    def ui(self) -> str:
        return f"http://{LOOPBACK}:{self.webui_port}"

    def state(self) -> dict:
        """The server's JSON status page (master: workers and apps; worker: its executors)."""
        return get_json(f"{self.ui}/json/")

    def alive(self) -> bool:
        return self.proc.poll() is None


class StandaloneCluster:
    """A master and ``n_workers`` workers of ``cores`` cores each, all on 127.0.0.1.

        with StandaloneCluster(tmp_dir, n_workers=2) as cluster:
            spark_submit("pipeline", [...], extra=["--master", cluster.master_url, ...])
    """

    def __init__(self, base_dir: Path, n_workers: int = 2, cores: int = 1, memory: str = "2g",
                 start_timeout: float = 90.0):
        self.base_dir = Path(base_dir)
        self.n_workers = n_workers
        self.cores = cores
        self.memory = memory
        self.start_timeout = start_timeout
        self.master: Optional[Server] = None
        self.master_port: Optional[int] = None
        self.workers: list[Server] = []  # index i: the latest process started for worker i
        self._all: list[Server] = []  # every process ever started here (stopped by stop())

    # --- environment --------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """Environment for every cluster process (and for drivers submitted to it)."""
        env = dict(os.environ)
        env["SPARK_LOCAL_IP"] = LOOPBACK  # web UIs and unqualified binds stay on loopback
        env["SPARK_LOCAL_DIRS"] = str(self.base_dir / "local")  # shuffle and spill files
        env["SPARK_MASTER_OPTS"] = "-Dspark.master.rest.enabled=false"  # no REST submission server (port 6066)
        (self.base_dir / "local").mkdir(parents=True, exist_ok=True)
        return env

    @property
    def master_url(self) -> str:
        return f"spark://{LOOPBACK}:{self.master_port}"

    # --- start --------------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str], webui_port: int, work_dir: Optional[Path] = None) -> Server:
        logs = self.base_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen([str(SPARK_CLASS), *args], cwd=REPO, env=self.env(), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        server = Server(name, proc, webui_port, log, work_dir)
        self._all.append(server)
        return server

    def start(self) -> "StandaloneCluster":
        try:
            self._start_master()
            for i in range(self.n_workers):
                self.workers.append(self._start_worker(i))
            self.wait_for_workers(self.n_workers)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_master(self) -> None:
        self.master_port = free_port()
        webui = free_port()
        self.master = self._spawn("master", [MASTER_CLASS, "--host", LOOPBACK, "--port", str(self.master_port),
                                             "--webui-port", str(webui)], webui)
        wait_for("the Spark master", lambda: self._checked(self.master).state().get("status") == "ALIVE",
                 self.start_timeout, on_timeout=self.logs)

    def _start_worker(self, index: int) -> Server:
        webui = free_port()
        work_dir = self.base_dir / f"worker-{index}-{webui}"
        work_dir.mkdir(parents=True, exist_ok=True)
        return self._spawn(f"worker-{index}", [
            WORKER_CLASS, self.master_url, "--host", LOOPBACK, "--webui-port", str(webui),
            "--cores", str(self.cores), "--memory", self.memory, "--work-dir", str(work_dir),
        ], webui, work_dir)

    def _checked(self, server: Server) -> Server:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited with code {server.proc.returncode}:\n{self.logs()}")
        return server

    def alive_workers(self) -> list[dict]:
        """The master's ALIVE entries for the worker processes running now.

        A worker killed with SIGKILL stays ALIVE in the master until its heartbeat times out
        (``spark.worker.timeout``, 60 s), so entries are matched to live processes by worker id.
        """
        ids = {w.state()["id"] for w in self.workers if w.alive()}
        return [w for w in self.master.state().get("workers", []) if w.get("state") == "ALIVE" and w["id"] in ids]

    def wait_for_workers(self, n: int, timeout: Optional[float] = None) -> list[dict]:
        def enough():
            for worker in self.workers:
                self._checked(worker)  # a worker that exited will never register: fail now
            alive = self.alive_workers()
            return alive if len(alive) == n else None

        return wait_for(f"{n} registered workers", enough, timeout or self.start_timeout, on_timeout=self.logs)

    def ensure_workers(self) -> None:
        """Restart any worker slot whose process has died (e.g. after :meth:`kill_worker`)."""
        dead = [i for i, w in enumerate(self.workers) if not w.alive()]
        for i in dead:
            self.workers[i] = self._start_worker(i)
        if dead:
            self.wait_for_workers(self.n_workers)

    # --- failures -----------------------------------------------------------------------
    def kill_worker(self, index: int) -> None:
        """SIGKILL worker ``index`` with everything it started (executor JVMs, Python workers)."""
        worker = self.workers[index]
        try:
            os.killpg(worker.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        worker.proc.wait(timeout=30)
        wait_for(f"{worker.name}'s process group to end", lambda: not group_alive(worker.proc.pid), 30)

    # --- inspection ---------------------------------------------------------------------
    def app_ids(self) -> set[str]:
        state = self.master.state()
        return {a["id"] for key in ("activeapps", "completedapps") for a in state.get(key, [])}

    def logs(self, tail: int = 4000) -> str:
        parts = []
        for server in self._all:
            try:
                text = server.log.read_text(errors="replace")[-tail:]
            except OSError:
                text = "(no log)"
            parts.append(f"--- {server.name} (pid {server.proc.pid}, exit {server.proc.poll()}) ---\n{text}")
        return "\n".join(parts)

    # --- stop ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop workers first (so they do not re-register), then the master. Idempotent."""
        errors = []
        for server in reversed(self._all):
            try:
                stop_process_group(server.proc)
            except Exception as exc:  # noqa: BLE001 - keep stopping the others, report at the end
                errors.append(f"{server.name} (pid {server.proc.pid}): {exc!r}")
        if errors:
            raise RuntimeError("could not stop " + "; ".join(errors))

    def __enter__(self) -> "StandaloneCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

"""Benchmark harness: the label job against a single-process ceiling and DataTrove.

    make bench                                   # N = 100k, 200k, 400k, 3 runs (about 75 min on 2 cores)
    make bench BENCH_N=20000,40000 BENCH_RUNS=2  # a quick look (about 10 min)
    .venv/bin/python bench/run.py --help

What it measures (docs/benchmarks.md explains each number and records measured results):

* corpus: real text from ../shared/corpus expanded to N documents (``bench/corpus.py``), one
  nested corpus per N, ingested once per N into ``<work>/lake/n<N>`` (untimed, cached);
* (a) ceiling: ``bench/ceiling.py`` scores the same documents in one Python process with
  ``udfs.scoring.score_texts`` and the label job's ScoreOptions (``label`` mode) and, for context,
  plain batched fastText predict with the topic model (``raw`` mode); at ``BENCH_PEER_N``;
* (b) peer: DataTrove's FastTextClassifierFilter pipeline (``bench/datatrove_run.py``) in
  ``bench/.venv-datatrove``, tasks = workers = cores; at ``BENCH_PEER_N``;
* (c) this project, at every N: the label job with ``local[<cores>]`` and ``label.relabel_all=true``
  as a ``spark-submit`` subprocess (JVM start-up included) and in steady state
  (``bench/steady_label.py``: one session, a warm-up run, then timed runs); and the full
  ``jobs/pipeline.py`` (ingest -> label -> mix -> report) on a fresh lake;
* driver peak memory (driver JVM and driver Python RSS high-water marks, from /proc) per N.

Prints a table and writes ``bench/results/<UTC timestamp>.json`` (every run, medians, ratios,
targets, machine, commands, load average before and after each measurement).

Configuration (environment variable, or the command-line flag of the same name):
``BENCH_N`` (comma-separated N), ``BENCH_RUNS`` (runs per measurement; medians are quoted),
``BENCH_PIPELINE_RUNS`` (default 1), ``BENCH_PEER_N`` (N for (a) and (b); default the
smallest N), ``BENCH_CORES`` (default 2), ``BENCH_DRIVER_MEMORY`` (default 4g, the value in
conf/spark/local.yaml, passed to spark-submit as --driver-memory), ``BENCH_PIPELINE_OVERRIDES``
(extra Hydra overrides for the pipeline runs; default none: the project's defaults),
``BENCH_INGEST_CHUNK`` (documents per ingest run when building the lakes; default 0 = one run),
``BENCH_ONLY`` (subset of
ceiling,raw,datatrove,label_steady,label_submit,pipeline), ``BENCH_WORK`` (default bench/work).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import corpus as corpus_builder  # noqa: E402
from procmon import run_monitored  # noqa: E402

PY = str(ROOT / ".venv/bin/python")
SPARK_SUBMIT = str(ROOT / ".venv/bin/spark-submit")
DT_PY = str(BENCH / ".venv-datatrove/bin/python")
PARTS = ("ceiling", "ceiling_native", "raw", "datatrove", "label_steady", "label_submit", "label_small_heap",
         "pipeline")
DEFAULTS = {
    "BENCH_N": "100000,200000,400000", "BENCH_RUNS": "3", "BENCH_PIPELINE_RUNS": "1", "BENCH_CORES": "2",
    "BENCH_DRIVER_MEMORY": "4g", "BENCH_SMALL_HEAP": "512m", "BENCH_PIPELINE_OVERRIDES": "",
}
TARGETS = {
    "label_vs_ceiling_per_core": 0.75,  # >=
    "label_vs_datatrove": 1.5,  # >=
    "time_2n_over_n": 2.1,  # <=
    "driver_memory_growth": 1.2,  # <= peak RSS at the largest N / at the smallest N ("flat")
}
PROGRESS_RE = re.compile(r"\[Stage (\d+):[=> ]*\(\d+ \+ \d+\) / (\d+)\]")
STAGE_RE = re.compile(r"\[counterweight\] ((?:ingest|label|mix|report|export)[a-z_]*: [^:\n]+): (.*?) in ([0-9.]+) s")


class MeasureFailed(Exception):
    """A measurement failed twice: its part is recorded as failed and the run goes on."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spark_stage_tasks(log_path: Path) -> dict[str, int]:
    """Spark stage id -> number of tasks, from the console progress bar in a job's log."""
    text = log_path.read_text(errors="replace")
    return {m.group(1): int(m.group(2)) for m in PROGRESS_RE.finditer(text)}


GC_RE = re.compile(r"GC\(\d+\) Pause (\S+).*? (\d+)M->(\d+)M\((\d+)M\)")


def gc_stats(path: Path) -> dict | None:
    """Heap in use after collections, and peak committed heap, from a JVM -Xlog:gc file (MB).

    After a young collection the old generation still holds whatever garbage G1 has not yet had
    a reason to collect (with a 4 GB heap, a lot); only a full collection leaves just the live
    objects, so ``heap_after_full_gc_peak_mb`` is the live-set figure when there was one.
    """
    if not path.exists():
        return None
    after, after_full, committed, pauses, fulls = 0, None, 0, 0, 0
    for m in GC_RE.finditer(path.read_text(errors="replace")):
        used_after = int(m.group(3))
        after, committed, pauses = max(after, used_after), max(committed, int(m.group(4))), pauses + 1
        if m.group(1) == "Full":
            after_full, fulls = max(after_full or 0, used_after), fulls + 1
    return {"heap_after_gc_peak_mb": after, "heap_after_full_gc_peak_mb": after_full,
            "heap_committed_peak_mb": committed, "gc_pauses": pauses, "full_gcs": fulls}


def stage_times(log_path: Path) -> list[dict]:
    text = log_path.read_text(errors="replace")
    return [{"stage": m.group(1), "what": m.group(2), "seconds": float(m.group(3))} for m in STAGE_RE.finditer(text)]


def _cmd_out(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        return (out.stdout + out.stderr).strip()
    except Exception as exc:  # noqa: BLE001 - informational only
        return f"unavailable ({exc})"


def machine_info() -> dict:
    cpu_model = next((line.split(":", 1)[1].strip() for line in _cmd_out(["lscpu"]).splitlines()
                      if line.startswith("Model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    os_name = next((line.split("=", 1)[1].strip('"') for line in Path("/etc/os-release").read_text().splitlines()
                    if line.startswith("PRETTY_NAME")), "")
    versions = _cmd_out([PY, "-c", (
        "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
        "['pyspark','numpy','pyarrow','deltalake','fasttext-numpy2-wheel','pandas','hydra-core']}))")])
    dt_versions = _cmd_out([DT_PY, "-c", (
        "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
        "['datatrove','fasttext-numpy2-wheel','numpy','orjson']}))")]) if Path(DT_PY).exists() else "not installed"
    sources = {}
    for rel in ("counterweight/label.py", "udfs/scoring.py", "udfs/text.py", "counterweight/lake.py",
                "conf/config.yaml", "conf/spark/local.yaml", "models/topic.ftz", "models/stance.ftz"):
        sources[rel] = hashlib.sha256((ROOT / rel).read_bytes()).hexdigest()[:16]
    return {
        "nproc": os.cpu_count(), "nproc_available": len(os.sched_getaffinity(0)), "cpu_model": cpu_model,
        "memory_gb": round(mem_kb / 1024 / 1024, 1), "os": os_name, "kernel": platform.release(),
        "python": platform.python_version(), "java": _cmd_out(["java", "-version"]).splitlines()[0],
        "project_packages": _try_json(versions), "datatrove_venv_packages": _try_json(dt_versions),
        "source_sha256_16": sources,
    }


def _try_json(text: str):
    try:
        return json.loads(text.splitlines()[-1])
    except (ValueError, IndexError):
        return text


class Bench:
    def __init__(self, args):
        self.ns = sorted({int(x) for x in args.n.split(",") if x.strip()})
        self.runs = args.runs
        self.pipeline_runs = args.pipeline_runs if args.pipeline_runs is not None else args.runs
        self.cores = args.cores
        self.peer_n = args.peer_n or self.ns[0]
        if self.peer_n not in self.ns:
            self.ns = sorted(set(self.ns) | {self.peer_n})
        self.only = set(args.only.split(",")) if args.only else set(PARTS)
        unknown = self.only - set(PARTS)
        if unknown:
            raise SystemExit(f"BENCH_ONLY: unknown part(s) {sorted(unknown)}; valid: {', '.join(PARTS)}")
        self.work = Path(args.work).resolve()
        self.logs = self.work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.master = f"local[{self.cores}]"
        # spark-submit starts the driver JVM before the job reads conf/spark/local.yaml, so its
        # spark.driver.memory (4g) would be ignored and the heap would be spark-submit's 1g default
        # (ingest of 100k documents runs out of heap with it): pass the same value explicitly.
        self.driver_memory = args.driver_memory
        self.ingest_chunk = args.ingest_chunk
        self.pipeline_overrides = args.pipeline_overrides.split()
        self.small_heap = args.small_heap
        self.submit = [SPARK_SUBMIT, "--master", self.master, "--driver-memory", self.driver_memory]
        self.commands: dict[str, str] = {}
        self.measurements: list[dict] = []
        self.failures: list[dict] = []  # failed attempts that were retried (kept in the JSON)

    # --- helpers -------------------------------------------------------------------------
    def measure(self, kind: str, n: int, run: int, cmd: list[str], env=None) -> dict:
        log_path = self.logs / f"{kind}-n{n}-r{run}.log"
        self.commands.setdefault(kind, " ".join(_rel(c) for c in cmd))
        # JVM GC log: the heap still in use after each collection is the driver's real memory need
        # (RSS only shows how far the heap was allowed to grow before collecting).
        gc_log = self.logs / f"{kind}-n{n}-r{run}.gc.log"
        gc_log.unlink(missing_ok=True)
        if cmd[0] == SPARK_SUBMIT:
            cmd = [cmd[0], "--driver-java-options", f"-Xlog:gc:file={gc_log}", *cmd[1:]]
        elif kind == "label_steady":
            cmd = [*cmd, "--override", f"+spark.conf.spark.driver.extraJavaOptions='-Xlog:gc:file={gc_log}'"]
        for attempt in (1, 2):
            before = loadavg()
            result = run_monitored(cmd, str(log_path), env=env, cwd=str(ROOT))
            result.update({"kind": kind, "n": n, "run": run, "log": _rel(str(log_path)), "loadavg_before": before,
                           "loadavg_after": loadavg(), "stages": stage_times(log_path), "attempt": attempt,
                           "spark_stage_tasks": spark_stage_tasks(log_path), "jvm_gc": gc_stats(gc_log)})
            if result["exit_code"] == 0:
                break
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            failed = log_path.with_suffix(f".failed{attempt}.log")
            log_path.rename(failed)
            self.failures.append({"kind": kind, "n": n, "run": run, "attempt": attempt, "log": _rel(str(failed))})
            if attempt == 2:
                raise MeasureFailed(f"{kind} n={n} run {run} failed twice (exit {result['exit_code']}); log {failed}:\n{tail}")
            log(f"{kind} n={n} run {run} failed (exit {result['exit_code']}, log {_rel(str(failed))}); retrying once")
        self.measurements.append(result)
        return result

    def json_tail(self, result: dict, prefix: str = "") -> list[dict]:
        lines = (ROOT / result["log"]).read_text(errors="replace").splitlines()
        out = []
        for line in lines:
            if prefix and line.startswith(prefix):
                out.append(json.loads(line[len(prefix):]))
            elif not prefix and line.startswith("{") and line.endswith("}"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    # --- steps ---------------------------------------------------------------------------
    def build_corpus(self) -> dict[int, Path]:
        return corpus_builder.build(self.ns, self.work / "corpus", ROOT.parent / "shared/corpus")

    def ensure_lake(self, n: int, corpus_dir: Path) -> tuple[Path, dict]:
        lake = self.work / "lake" / f"n{n}"
        manifest = json.loads((corpus_dir / "_manifest.json").read_text())
        key = hashlib.sha256(json.dumps(manifest["recipe"], sort_keys=True).encode()).hexdigest()[:16]
        marker = lake / "_bench_ingest.json"
        if marker.exists() and json.loads(marker.read_text()).get("corpus_key") == key:
            info = json.loads(marker.read_text())
            log(f"lake n={n:,}: reusing {_rel(str(lake))} ({info['documents']:,} documents)")
            return lake, info
        shutil.rmtree(lake, ignore_errors=True)
        # One ingest run by default; BENCH_INGEST_CHUNK > 0 ingests at most that many documents per
        # run (whole corpus files, linked into one folder per chunk), each an incremental ingest
        # into the same lake (how a lake grows in production; also how the lakes were built while
        # a 200k-document ingest ran out of a 4g heap, before the fix in docs/benchmarks.md).
        files = sorted(corpus_dir.glob("part-*.jsonl"))
        n_chunks = max(1, math.ceil(n / self.ingest_chunk)) if self.ingest_chunk > 0 else 1
        per_chunk = math.ceil(len(files) / n_chunks)
        groups = [files[i:i + per_chunk] for i in range(0, len(files), per_chunk)]
        log(f"lake n={n:,}: ingesting {_rel(str(corpus_dir))} in {len(groups)} run(s) (untimed for the label job)")
        documents, seconds = 0, 0.0
        for k, group in enumerate(groups):
            if len(groups) == 1:
                path = corpus_dir
            else:
                path = self.work / "ingest-chunks" / f"n{n}" / f"c{k}"
                shutil.rmtree(path, ignore_errors=True)
                path.mkdir(parents=True)
                for f in group:
                    (path / f.name).symlink_to(f)
            cmd = [*self.submit, "jobs/ingest.py", "input=jsonl", f"input.path={path}",
                   "input.id_field=id", f"lake.root={lake}"]
            res = self.measure("ingest", n, k, cmd)
            text = (ROOT / res["log"]).read_text(errors="replace")
            m = re.search(r"ingest reconciliation: read (\d+) = documents (\d+) \(new (\d+)", text)
            documents += int(m.group(3)) if m else 0
            seconds += res["seconds"]
        if documents != n:
            raise SystemExit(f"ingest of n={n} kept {documents} documents, expected {n}: see {self.logs}")
        info = {"corpus_key": key, "documents": documents, "ingest_runs": len(groups),
                "ingest_seconds": round(seconds, 1)}
        marker.write_text(json.dumps(info))
        return lake, info

    def run_ceiling(self, lake: Path, n: int, mode: str, engine: str = "fasttext") -> list[dict]:
        out = []
        for r in range(self.runs):
            res = self.measure(f"ceiling_{mode}_{engine}", n, r, [PY, "bench/ceiling.py", "--lake", str(lake),
                                                                 "--mode", mode, "--engine", engine])
            data = self.json_tail(res)[-1]
            data["others_cpu_share"] = res["others_cpu_share"]
            res["result"] = data
            out.append(data)
            log(f"(a) ceiling {mode} ({engine}) n={n:,} run {r + 1}/{self.runs}: {data['docs_per_s']:,.0f} docs/s "
                f"({data['docs_per_cpu_s']:,.0f} per CPU-second)")
        return out

    def run_datatrove(self, corpus_dir: Path, n: int) -> list[dict]:
        out = []
        dt_dir = self.work / "datatrove" / f"n{n}"
        for r in range(self.runs):
            cmd = [DT_PY, "bench/datatrove_run.py", "--input", str(corpus_dir), "--output", str(dt_dir / "out"),
                   "--logs", str(dt_dir / "logs"), "--tasks", str(self.cores), "--workers", str(self.cores)]
            res = self.measure("datatrove", n, r, cmd)
            data = self.json_tail(res)[-1]
            data["process_seconds"] = round(res["seconds"], 3)
            data["process_cpu_seconds"] = res["cpu_seconds_total"]
            data["others_cpu_share"] = res["others_cpu_share"]
            res["result"] = data
            if data["docs_out"] != n:
                raise SystemExit(f"DataTrove wrote {data['docs_out']} documents, expected {n}")
            out.append(data)
            log(f"(b) DataTrove n={n:,} run {r + 1}/{self.runs}: {data['seconds']:.1f} s in the executor, "
                f"{res['seconds']:.1f} s process ({n / res['seconds']:,.0f} docs/s)")
        shutil.rmtree(dt_dir / "out", ignore_errors=True)
        return out

    def run_label_steady(self, lake: Path, n: int) -> dict:
        cmd = [PY, "bench/steady_label.py", "--lake", str(lake), "--runs", str(self.runs), "--cores", str(self.cores),
               "--override", f"spark.conf.spark.driver.memory={self.driver_memory}"]
        res = self.measure("label_steady", n, 0, cmd)
        runs = self.json_tail(res, "BENCH_RUN ")
        for rec in runs:
            if rec["scored"] != n:
                raise SystemExit(f"steady label n={n}: scored {rec['scored']}, expected {n}")
        timed = [r for r in runs if not r["warmup"]]
        res["runs"] = runs
        timed_text = ", ".join(f"{r['seconds']:.1f}" for r in timed)
        log(f"(c) label steady n={n:,}: runs {timed_text} s "
            f"(warm-up {runs[0]['seconds']:.1f} s); driver JVM peak {res['peak_rss_mb']['driver_jvm']:,.0f} MB, "
            f"driver Python peak {res['peak_rss_mb']['driver_python']:,.0f} MB")
        return {"runs": runs, "timed_seconds": [r["seconds"] for r in timed],
                "timed_cpu_seconds": [r["cpu_seconds"] for r in timed],
                "others_cpu_share": [r["others_cpu_share"] for r in timed],
                "peak_rss_mb": res["peak_rss_mb"], "driver_jvm_xmx": res["driver_jvm_xmx"],
                "jvm_heap_after_gc_peak_mb": (res.get("jvm_gc") or {}).get("heap_after_gc_peak_mb"),
                "python_workers_sum_peak_rss_mb": res["python_workers_sum_peak_rss_mb"], "stages": res["stages"]}

    def run_label_submit(self, lake: Path, n: int) -> dict:
        cmd = [*self.submit, "jobs/label.py", f"lake.root={lake}", "label.relabel_all=true"]
        results = []
        for r in range(self.runs):
            res = self.measure("label_submit", n, r, cmd)
            results.append(res)
            log(f"(c) label spark-submit n={n:,} run {r + 1}/{self.runs}: {res['seconds']:.1f} s; driver JVM peak "
                f"{res['peak_rss_mb']['driver_jvm']:,.0f} MB, driver Python peak "
                f"{res['peak_rss_mb']['driver_python']:,.0f} MB")
        return {
            "seconds": [r["seconds"] for r in results], "cpu_seconds": [r["cpu_seconds_total"] for r in results],
            "cpu_seconds_by_role": [r["cpu_seconds"] for r in results],
            "others_cpu_share": [r["others_cpu_share"] for r in results],
            "driver_jvm_peak_rss_mb": [r["peak_rss_mb"]["driver_jvm"] for r in results],
            "driver_python_peak_rss_mb": [r["peak_rss_mb"]["driver_python"] for r in results],
            "python_workers_sum_peak_rss_mb": [r["python_workers_sum_peak_rss_mb"] for r in results],
            "driver_jvm_xmx": results[0]["driver_jvm_xmx"], "stages": [r["stages"] for r in results],
            "jvm_heap_after_gc_peak_mb": [(r.get("jvm_gc") or {}).get("heap_after_gc_peak_mb") for r in results],
        }

    def run_label_small_heap(self, lake: Path, n: int) -> dict:
        """The spark-submit label job once with a small fixed driver heap: if the driver's memory
        need grew with N, the largest N would fail (OutOfMemoryError) or spend its time in full GCs."""
        cmd = [SPARK_SUBMIT, "--master", self.master, "--driver-memory", self.small_heap, "jobs/label.py",
               f"lake.root={lake}", "label.relabel_all=true"]
        res = self.measure("label_small_heap", n, 0, cmd)
        gc = res.get("jvm_gc") or {}
        log(f"(c) label spark-submit, {self.small_heap} driver heap, n={n:,}: {res['seconds']:.1f} s; "
            f"{gc.get('full_gcs')} full GCs, heap after full GC peak {gc.get('heap_after_full_gc_peak_mb')} MB")
        return {"seconds": res["seconds"], "driver_memory": self.small_heap, "jvm_gc": gc,
                "driver_jvm_peak_rss_mb": res["peak_rss_mb"]["driver_jvm"]}

    def run_pipeline(self, corpus_dir: Path, n: int) -> dict:
        results = []
        for r in range(self.pipeline_runs):
            base = self.work / "pipeline" / f"n{n}"
            shutil.rmtree(base, ignore_errors=True)
            cmd = [*self.submit, "jobs/pipeline.py", "input=jsonl",
                   f"input.path={corpus_dir}", "input.id_field=id", f"lake.root={base / 'lake'}",
                   *self.pipeline_overrides]
            res = self.measure("pipeline", n, r, cmd)
            steps: dict[str, float] = {}
            for st in res["stages"]:
                step = st["stage"].split(":")[0]
                steps[step] = round(steps.get(step, 0.0) + st["seconds"], 1)
            res["step_seconds"] = steps
            results.append(res)
            shutil.rmtree(base, ignore_errors=True)
            log(f"(c) pipeline n={n:,} run {r + 1}/{self.pipeline_runs}: {res['seconds']:.1f} s "
                f"({', '.join(f'{k} {v:.0f} s' for k, v in steps.items())})")
        return {"seconds": [r["seconds"] for r in results], "step_seconds": [r["step_seconds"] for r in results],
                "cpu_seconds": [r["cpu_seconds_total"] for r in results],
                "others_cpu_share": [r["others_cpu_share"] for r in results],
                "driver_jvm_peak_rss_mb": [r["peak_rss_mb"]["driver_jvm"] for r in results],
                "driver_python_peak_rss_mb": [r["peak_rss_mb"]["driver_python"] for r in results],
                "jvm_heap_after_gc_peak_mb": [(r.get("jvm_gc") or {}).get("heap_after_gc_peak_mb") for r in results]}

    # --- main ----------------------------------------------------------------------------
    def run(self, resume: str | None = None) -> dict:
        if "datatrove" in self.only and not Path(DT_PY).exists():
            raise SystemExit(f"{_rel(DT_PY)} is missing: run `make bench-setup` (or leave datatrove out of BENCH_ONLY)")
        if resume:  # carry on with a partial results file: parts already measured are kept
            partial = Path(resume)
            state = json.loads(partial.read_text())
            if state["config"]["n"] != self.ns or state["config"]["runs"] != self.runs:
                raise SystemExit(f"--resume {resume}: it was measured with {state['config']}; use the same settings")
            state["corpus_stats"] = {int(k): v for k, v in state["corpus_stats"].items()}
            state["ingest"] = {int(k): v for k, v in state["ingest"].items()}
            state["results"] = {part: {int(k): v for k, v in d.items()} for part, d in state["results"].items()}
            self.commands, self.measurements = state.pop("commands"), state.pop("measurements")
            self.failures = state.pop("failed_attempts")
            state.setdefault("resumed", []).append({"at_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                                    "loadavg": loadavg()})
            started = dt.datetime.fromisoformat(state["started_utc"])
            log(f"resuming {_rel(str(partial))}: already measured: "
                + ", ".join(f"{p} {sorted(d)}" for p, d in state["results"].items() if d))
        else:
            started = dt.datetime.now(dt.timezone.utc)
            state = {"started_utc": started.isoformat(timespec="seconds"), "config": self.config(),
                     "machine": machine_info()}
            state["machine"]["loadavg_at_start"] = loadavg()
            partial = BENCH / "results" / f"{started.strftime('%Y%m%dT%H%M%SZ')}.partial.json"
        log(f"N = {', '.join(f'{n:,}' for n in self.ns)}; runs {self.runs} (pipeline {self.pipeline_runs}); "
            f"{self.master}; ceiling and DataTrove at N = {self.peer_n:,}; "
            f"parts: {', '.join(p for p in PARTS if p in self.only)}")
        partial.parent.mkdir(exist_ok=True)
        corpora = self.build_corpus()
        state["corpus_stats"] = {n: json.loads((corpora[n] / "_manifest.json").read_text()) for n in self.ns}
        lakes, ingest = {}, state.get("ingest", {})
        for n in self.ns:
            lakes[n], info = self.ensure_lake(n, corpora[n])
            ingest.setdefault(n, info)
        state["ingest"] = ingest
        res = state.setdefault("results", {})
        for p in PARTS:
            res.setdefault(p, {})

        def save():  # after every part, so a crash late in a long run loses nothing measured
            partial.write_text(json.dumps({**state, "commands": self.commands, "measurements": self.measurements,
                                           "failed_attempts": self.failures}, indent=1, default=str))

        def part(name: str, n: int, func, *fargs):
            if name not in self.only or n in res[name]:
                return
            try:
                res[name][n] = func(*fargs)
            except MeasureFailed as exc:
                log(f"{name} n={n:,} FAILED, going on without it: {exc}")
                state.setdefault("failed_parts", []).append({"part": name, "n": n, "error": str(exc)[-3000:]})
            save()

        save()
        part("ceiling", self.peer_n, self.run_ceiling, lakes[self.peer_n], self.peer_n, "label")
        part("ceiling_native", self.peer_n, self.run_ceiling, lakes[self.peer_n], self.peer_n, "label", "native")
        part("raw", self.peer_n, self.run_ceiling, lakes[self.peer_n], self.peer_n, "raw")
        part("datatrove", self.peer_n, self.run_datatrove, corpora[self.peer_n], self.peer_n)
        for n in self.ns:
            part("label_steady", n, self.run_label_steady, lakes[n], n)
            part("label_submit", n, self.run_label_submit, lakes[n], n)
            part("label_small_heap", n, self.run_label_small_heap, lakes[n], n)
        for n in self.ns:
            part("pipeline", n, self.run_pipeline, corpora[n], n)
        state["finished_utc"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        state["machine"]["loadavg_at_end"] = loadavg()
        save()
        report = self.finish(state)
        partial.unlink()
        return report

    def config(self) -> dict:
        return {"n": self.ns, "runs": self.runs, "pipeline_runs": self.pipeline_runs, "cores": self.cores,
                "master": self.master, "driver_memory": self.driver_memory, "ingest_chunk": self.ingest_chunk,
                "pipeline_overrides": self.pipeline_overrides, "small_heap": self.small_heap,
                "peer_n": self.peer_n,
                "parts": sorted(self.only)}

    def finish(self, state: dict) -> dict:
        """Summarise, print the table and write bench/results/<started>.json."""
        started = dt.datetime.fromisoformat(state["started_utc"])
        finished = dt.datetime.fromisoformat(state["finished_utc"])
        corpus_stats, res = state["corpus_stats"], state["results"]
        summary = self.summarise(res, corpus_stats)
        report = {
            "started_utc": state["started_utc"], "finished_utc": state["finished_utc"],
            "wall_minutes": round((finished - started).total_seconds() / 60, 1),
            "config": state["config"], "machine": state["machine"], "targets": TARGETS, "summary": summary,
            "results": _str_keys({k: _str_keys(v) for k, v in res.items()}),
            "corpus": {str(n): {k: v for k, v in s.items() if k != "recipe"} for n, s in corpus_stats.items()},
            "corpus_recipe": corpus_stats[self.ns[0]]["recipe"], "ingest": _str_keys(state["ingest"]),
            "commands": state.get("commands", self.commands), "measurements": state.get("measurements", self.measurements),
            "failed_attempts": state.get("failed_attempts", self.failures),
            "failed_parts": state.get("failed_parts", []),
        }
        path = BENCH / "results" / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        path.write_text(json.dumps(report, indent=1))
        print_table(report)
        log(f"results written to {_rel(str(path))}")
        return report

    @classmethod
    def resummarise(cls, path: str) -> dict:
        """Rebuild the summary, table and final JSON from a (partial) results file."""
        state = json.loads(Path(path).read_text())
        cfg = state["config"]
        args = argparse.Namespace(n=",".join(map(str, cfg["n"])), runs=cfg["runs"], pipeline_runs=cfg["pipeline_runs"],
                                  cores=cfg["cores"], peer_n=cfg["peer_n"], only=",".join(cfg["parts"]),
                                  driver_memory=cfg.get("driver_memory", DEFAULTS["BENCH_DRIVER_MEMORY"]),
                                  ingest_chunk=cfg.get("ingest_chunk", 0),
                                  pipeline_overrides=" ".join(cfg.get("pipeline_overrides", [])),
                                  work=str(BENCH / "work"))
        bench = cls(args)
        if "corpus_stats" not in state:  # a final results file: same numbers, recipe kept apart
            state["corpus_stats"] = {k: {**v, "recipe": state["corpus_recipe"]} for k, v in state["corpus"].items()}
        state["corpus_stats"] = {int(k): v for k, v in state["corpus_stats"].items()}
        state["results"] = {part: {int(k): v for k, v in d.items()} for part, d in state["results"].items()}
        state.setdefault("finished_utc", state["started_utc"])
        state["machine"].setdefault("loadavg_at_end", state["machine"]["loadavg_at_start"])
        return bench.finish(state)

    def summarise(self, res: dict, corpus_stats: dict) -> dict:
        cores, s = self.cores, {}
        peer = self.peer_n
        per_n: dict[int, dict] = {}
        for n in self.ns:
            row: dict = {"corpus_words": corpus_stats[n]["words"]["total"],
                         "corpus_mean_words_per_doc": corpus_stats[n]["words"]["mean"]}
            if n in res["label_steady"]:
                st = res["label_steady"][n]
                row["steady_seconds"] = median(st["timed_seconds"])
                row["steady_docs_per_s"] = n / row["steady_seconds"]
                row["steady_cpu_seconds"] = median(st["timed_cpu_seconds"])
                row["steady_docs_per_cpu_s"] = n / row["steady_cpu_seconds"] if row["steady_cpu_seconds"] else None
                row["steady_others_cpu_share"] = median(st["others_cpu_share"])
                row["steady_driver_jvm_peak_rss_mb"] = st["peak_rss_mb"]["driver_jvm"]
                row["steady_driver_python_peak_rss_mb"] = st["peak_rss_mb"]["driver_python"]
                row["steady_driver_jvm_xmx"] = st["driver_jvm_xmx"]
                row["steady_jvm_heap_after_gc_peak_mb"] = st.get("jvm_heap_after_gc_peak_mb")
            if n in res["label_submit"]:
                sb = res["label_submit"][n]
                row["submit_seconds"] = median(sb["seconds"])
                row["submit_docs_per_s"] = n / row["submit_seconds"]
                row["submit_cpu_seconds"] = median(sb["cpu_seconds"])
                row["submit_docs_per_cpu_s"] = n / row["submit_cpu_seconds"] if row["submit_cpu_seconds"] else None
                row["submit_others_cpu_share"] = median(sb["others_cpu_share"])
                row["submit_driver_jvm_peak_rss_mb"] = median(sb["driver_jvm_peak_rss_mb"])
                row["submit_driver_python_peak_rss_mb"] = median(sb["driver_python_peak_rss_mb"])
                row["submit_driver_jvm_xmx"] = sb["driver_jvm_xmx"]
                row["submit_jvm_heap_after_gc_peak_mb"] = median(sb.get("jvm_heap_after_gc_peak_mb", []))
            if n in res.get("label_small_heap", {}):
                sh = res["label_small_heap"][n]
                row["small_heap_seconds"] = sh["seconds"]
                row["small_heap_full_gcs"] = sh["jvm_gc"].get("full_gcs")
                row["small_heap_after_full_gc_peak_mb"] = sh["jvm_gc"].get("heap_after_full_gc_peak_mb")
                row["small_heap_after_gc_peak_mb"] = sh["jvm_gc"].get("heap_after_gc_peak_mb")
            if n in res["pipeline"]:
                pl = res["pipeline"][n]
                row["pipeline_seconds"] = median(pl["seconds"])
                row["pipeline_docs_per_s"] = n / row["pipeline_seconds"]
                row["pipeline_cpu_seconds"] = median(pl["cpu_seconds"])
                row["pipeline_others_cpu_share"] = median(pl["others_cpu_share"])
                steps = {k for d in pl["step_seconds"] for k in d}
                row["pipeline_step_seconds"] = {k: median([d.get(k) for d in pl["step_seconds"]]) for k in sorted(steps)}
                row["pipeline_driver_jvm_peak_rss_mb"] = median(pl["driver_jvm_peak_rss_mb"])
                row["pipeline_driver_python_peak_rss_mb"] = median(pl["driver_python_peak_rss_mb"])
                row["pipeline_jvm_heap_after_gc_peak_mb"] = median(pl.get("jvm_heap_after_gc_peak_mb", []))
            per_n[n] = row
        s["per_n"] = _str_keys(per_n)
        if peer in res["ceiling"]:
            runs = res["ceiling"][peer]
            s["ceiling_docs_per_s_per_core"] = median([r["docs_per_s"] for r in runs])
            s["ceiling_docs_per_cpu_s"] = median([r["docs_per_cpu_s"] for r in runs])
            s["ceiling_others_cpu_share"] = median([r["others_cpu_share"] for r in runs])
        if peer in res.get("ceiling_native", {}):
            runs = res["ceiling_native"][peer]
            s["ceiling_native_docs_per_s_per_core"] = median([r["docs_per_s"] for r in runs])
            s["ceiling_native_docs_per_cpu_s"] = median([r["docs_per_cpu_s"] for r in runs])
        if peer in res["raw"]:
            s["raw_predict_docs_per_s_per_core"] = median([r["docs_per_s"] for r in res["raw"][peer]])
            s["raw_predict_docs_per_cpu_s"] = median([r["docs_per_cpu_s"] for r in res["raw"][peer]])
        if peer in res["datatrove"]:
            runs = res["datatrove"][peer]
            s["datatrove_executor_seconds"] = median([r["seconds"] for r in runs])
            s["datatrove_process_seconds"] = median([r["process_seconds"] for r in runs])
            s["datatrove_docs_per_s"] = peer / s["datatrove_process_seconds"]
            s["datatrove_executor_docs_per_s"] = peer / s["datatrove_executor_seconds"]
            s["datatrove_docs_per_cpu_s"] = peer / median([r["process_cpu_seconds"] for r in runs])
            s["datatrove_others_cpu_share"] = median([r["others_cpu_share"] for r in runs])
        if "ceiling_docs_per_s_per_core" in s:  # for context at every N (the targets use N = peer)
            for n, r in per_n.items():
                for mode in ("submit", "steady"):
                    if r.get(f"{mode}_docs_per_s"):
                        r[f"{mode}_vs_ceiling_per_core"] = r[f"{mode}_docs_per_s"] / cores / s["ceiling_docs_per_s_per_core"]
        row = per_n.get(peer, {})
        ratios, checks = {}, {}
        for mode in ("submit", "steady"):
            rate = row.get(f"{mode}_docs_per_s")
            if rate is None:
                continue
            if "ceiling_docs_per_s_per_core" in s:
                ratios[f"label_{mode}_vs_ceiling_per_core"] = rate / cores / s["ceiling_docs_per_s_per_core"]
            if "datatrove_docs_per_s" in s:
                dt_rate = s["datatrove_docs_per_s"] if mode == "submit" else s["datatrove_executor_docs_per_s"]
                ratios[f"label_{mode}_vs_datatrove"] = rate / dt_rate
            cpu_rate = row.get(f"{mode}_docs_per_cpu_s")
            if cpu_rate and "ceiling_docs_per_cpu_s" in s:
                ratios[f"cpu_label_{mode}_vs_ceiling"] = cpu_rate / s["ceiling_docs_per_cpu_s"]
            if cpu_rate and "datatrove_docs_per_cpu_s" in s:
                ratios[f"cpu_label_{mode}_vs_datatrove"] = cpu_rate / s["datatrove_docs_per_cpu_s"]
        scaling = {}
        for a in self.ns:
            b = 2 * a
            if b not in per_n:
                continue
            for key in ("steady_seconds", "submit_seconds", "pipeline_seconds"):
                if per_n[a].get(key) and per_n[b].get(key):
                    scaling[f"{key.removesuffix('_seconds')}_{b}_over_{a}"] = per_n[b][key] / per_n[a][key]
        memory = {}
        lo, hi = self.ns[0], self.ns[-1]
        if hi != lo:
            for key in ("submit_driver_jvm_peak_rss_mb", "submit_driver_python_peak_rss_mb",
                        "submit_jvm_heap_after_gc_peak_mb",
                        "steady_driver_jvm_peak_rss_mb", "steady_driver_python_peak_rss_mb",
                        "steady_jvm_heap_after_gc_peak_mb",
                        "pipeline_driver_jvm_peak_rss_mb", "pipeline_driver_python_peak_rss_mb",
                        "pipeline_jvm_heap_after_gc_peak_mb"):
                if per_n[lo].get(key) and per_n[hi].get(key):
                    name = key.removesuffix("_peak_rss_mb").removesuffix("_peak_mb")
                    memory[f"{name}_growth_{hi}_over_{lo}"] = per_n[hi][key] / per_n[lo][key]
        for key, value in ratios.items():
            if key.startswith("cpu_"):
                continue  # per CPU-second figures: context for a busy machine, not the targets
            target = TARGETS["label_vs_ceiling_per_core" if "ceiling" in key else "label_vs_datatrove"]
            checks[key] = {"value": round(value, 3), "target": f">= {target}", "met": value >= target}
        for key, value in scaling.items():
            checks[f"scaling_{key}"] = {"value": round(value, 3), "target": f"<= {TARGETS['time_2n_over_n']}",
                                        "met": value <= TARGETS["time_2n_over_n"]}
        for key, value in memory.items():
            checks[f"memory_{key}"] = {"value": round(value, 3), "target": f"<= {TARGETS['driver_memory_growth']}",
                                       "met": value <= TARGETS["driver_memory_growth"]}
        if "label_small_heap" in self.only and all(n in per_n for n in self.ns):
            done = [n for n in self.ns if per_n[n].get("small_heap_seconds") is not None]
            checks["memory_label_completes_in_small_heap_at_every_n"] = {
                "value": len(done) / len(self.ns), "target": "= 1", "met": len(done) == len(self.ns),
                "driver_memory": self.small_heap}
        s.update({"ratios": ratios, "scaling": scaling, "memory_growth": memory, "targets": checks})
        return s


def _str_keys(d: dict) -> dict:
    return {str(k): v for k, v in d.items()}


def _rel(path: str) -> str:
    return path.replace(str(ROOT) + "/", "")


def n_per(n, seconds):
    return n / seconds if seconds else None


def _fmt(value, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def print_table(report: dict) -> None:
    s, cfg, m = report["summary"], report["config"], report["machine"]
    cores, peer = cfg["cores"], cfg["peer_n"]
    print()
    print(f"Counterweight benchmark, {report['started_utc']} ({report['wall_minutes']} min): {m['cpu_model']}, "
          f"nproc {m['nproc']}, {m['memory_gb']} GB; {cfg['master']}; medians of {cfg['runs']} runs; "
          f"load average {m['loadavg_at_start'][0]:.1f} -> {m['loadavg_at_end'][0]:.1f}")
    print()
    print(f"Throughput at N = {peer:,} (documents per second; per core = divided by the cores used;")
    print("per CPU-s = documents per CPU-second of the whole process tree; busy = share of the machine's CPU")
    print("used by other processes meanwhile, 0 on an idle machine)")
    print(f"  {'what':<58} {'docs/s':>9} {'per core':>9} {'per CPU-s':>9} {'busy':>5}")
    row = s["per_n"].get(str(peer), {})
    rows = [
        ("(a) ceiling: score_texts via fastText predict, 1 process", s.get("ceiling_docs_per_s_per_core"), 1,
         s.get("ceiling_docs_per_cpu_s"), s.get("ceiling_others_cpu_share")),
        ("    score_texts via the native engine, 1 process", s.get("ceiling_native_docs_per_s_per_core"), 1,
         s.get("ceiling_native_docs_per_cpu_s"), None),
        ("(a) raw fastText predict (topic model, one line per doc)", s.get("raw_predict_docs_per_s_per_core"), 1,
         s.get("raw_predict_docs_per_cpu_s"), None),
        (f"(b) DataTrove, {cores} tasks/workers (process wall)", s.get("datatrove_docs_per_s"), cores,
         s.get("datatrove_docs_per_cpu_s"), s.get("datatrove_others_cpu_share")),
        (f"(b) DataTrove, {cores} tasks/workers (executor.run only)", s.get("datatrove_executor_docs_per_s"), cores,
         None, None),
        (f"(c) label job, spark-submit {cfg['master']} (JVM start incl.)", row.get("submit_docs_per_s"), cores,
         row.get("submit_docs_per_cpu_s"), row.get("submit_others_cpu_share")),
        (f"(c) label job, steady state {cfg['master']}", row.get("steady_docs_per_s"), cores,
         row.get("steady_docs_per_cpu_s"), row.get("steady_others_cpu_share")),
        ("(c) ingest -> label -> mix -> report, spark-submit", row.get("pipeline_docs_per_s"), cores,
         n_per(peer, row.get("pipeline_cpu_seconds")), row.get("pipeline_others_cpu_share")),
    ]
    for label, rate, c, per_cpu, busy in rows:
        if rate is not None:
            print(f"  {label:<58} {rate:>9,.0f} {rate / c:>9,.0f} {_fmt(per_cpu):>9} {_fmt(busy, '.2f'):>5}")
    if s.get("ratios"):
        print("  ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in s["ratios"].items()))
    print()
    print("Per N (median seconds; driver memory in MB: peak RSS of the JVM and of Python, and the JVM heap")
    print("in use after GC at its peak; 'st' = the steady-state process)")
    print(f"  {'N':>8} {'submit s':>9} {'steady s':>9} {'pipeline s':>10} {'JVM RSS':>8} {'Py RSS':>7} {'heap':>6} "
          f"{'JVM RSS st':>10} {'heap st':>8}")
    for n in cfg["n"]:
        r = s["per_n"].get(str(n), {})
        print(f"  {n:>8,} {_fmt(r.get('submit_seconds'), '.1f'):>9} {_fmt(r.get('steady_seconds'), '.1f'):>9} "
              f"{_fmt(r.get('pipeline_seconds'), '.1f'):>10} {_fmt(r.get('submit_driver_jvm_peak_rss_mb')):>8} "
              f"{_fmt(r.get('submit_driver_python_peak_rss_mb')):>7} {_fmt(r.get('submit_jvm_heap_after_gc_peak_mb')):>6} "
              f"{_fmt(r.get('steady_driver_jvm_peak_rss_mb')):>10} {_fmt(r.get('steady_jvm_heap_after_gc_peak_mb')):>8}")
    if any(s["per_n"].get(str(n), {}).get("small_heap_seconds") for n in cfg["n"]):
        print(f"Label job with a {cfg.get('small_heap', '512m')} driver heap (spark-submit; heap in MB)")
        print(f"  {'N':>8} {'seconds':>8} {'full GCs':>9} {'after full GC':>14} {'after any GC':>13}")
        for n in cfg["n"]:
            r = s["per_n"].get(str(n), {})
            print(f"  {n:>8,} {_fmt(r.get('small_heap_seconds'), '.1f'):>8} {_fmt(r.get('small_heap_full_gcs')):>9} "
                  f"{_fmt(r.get('small_heap_after_full_gc_peak_mb')):>14} {_fmt(r.get('small_heap_after_gc_peak_mb')):>13}")
        print()
    print("Targets")
    for key, check in s["targets"].items():
        print(f"  {key:<52} {check['value']:>7.3f}  target {check['target']:<7} {'MET' if check['met'] else 'NOT MET'}")
    print()


def main() -> int:
    ap = argparse.ArgumentParser(description="Counterweight benchmark harness (see docs/benchmarks.md)")
    env = os.environ.get
    ap.add_argument("--n", default=env("BENCH_N", DEFAULTS["BENCH_N"]))
    ap.add_argument("--runs", type=int, default=int(env("BENCH_RUNS", DEFAULTS["BENCH_RUNS"])))
    ap.add_argument("--pipeline-runs", type=int, default=int(env("BENCH_PIPELINE_RUNS", DEFAULTS["BENCH_PIPELINE_RUNS"])))
    ap.add_argument("--peer-n", type=int, default=int(env("BENCH_PEER_N")) if env("BENCH_PEER_N") else None)
    ap.add_argument("--cores", type=int, default=int(env("BENCH_CORES", DEFAULTS["BENCH_CORES"])))
    ap.add_argument("--only", default=env("BENCH_ONLY", ""))
    ap.add_argument("--driver-memory", default=env("BENCH_DRIVER_MEMORY", DEFAULTS["BENCH_DRIVER_MEMORY"]))
    ap.add_argument("--small-heap", default=env("BENCH_SMALL_HEAP", DEFAULTS["BENCH_SMALL_HEAP"]),
                    help="driver memory of the label_small_heap part")
    ap.add_argument("--pipeline-overrides", default=env("BENCH_PIPELINE_OVERRIDES", DEFAULTS["BENCH_PIPELINE_OVERRIDES"]),
                    help="extra Hydra overrides for the pipeline runs (space-separated)")
    ap.add_argument("--ingest-chunk", type=int, default=int(env("BENCH_INGEST_CHUNK", "0")),
                    help="ingest each bench lake in runs of at most this many documents")
    ap.add_argument("--work", default=env("BENCH_WORK", str(BENCH / "work")))
    ap.add_argument("--resume", metavar="PARTIAL_JSON", default=env("BENCH_RESUME"),
                    help="carry on with bench/results/<started>.partial.json after an interruption")
    ap.add_argument("--resummarise", metavar="RESULTS_JSON",
                    help="summarise a (partial) results file again instead of measuring")
    args = ap.parse_args()
    if args.resummarise:
        Bench.resummarise(args.resummarise)
        return 0
    Bench(args).run(resume=args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared fixtures: ONE local SparkSession for the whole run, small lakes in tmp dirs."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

# Servers started by tests (Spark UIs, block managers, clusters) listen on loopback only.
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"


@pytest.fixture(scope="session")
def spark():
    from counterweight import config
    from counterweight.session import build_session

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Hydra's override grammar needs local[2] quoted (brackets would parse as a list).
    cfg = config.load([
        "spark.master='local[2]'",
        "spark.log_level=ERROR",
        "+spark.conf.spark.ui.enabled=false",
        "spark.conf.spark.sql.shuffle.partitions=4",
        "spark.conf.spark.ui.showConsoleProgress=false",
        "spark.conf.spark.driver.memory=2g",
    ])
    session = build_session(cfg)
    yield session
    session.stop()


@pytest.fixture
def lake_root(tmp_path) -> Path:
    root = tmp_path / "lake"
    root.mkdir()
    return root


@pytest.fixture
def make_lake(spark, lake_root):
    """Factory: a Lake on the test's lake root, with its own lineage."""
    from counterweight.lake import Lake, Lineage

    def factory(job: str = "test", run_id: str | None = None, root: Path | None = None) -> "Lake":
        lineage = Lineage(job=job, run_id=run_id or uuid.uuid4().hex, config_hash="test-config")
        return Lake(spark, str(root or lake_root), lineage, engine="delta_rs")

    return factory


@pytest.fixture
def run_job(spark):
    """Run a job in-process on the shared session: run_job("ingest", ["input.path=..."])."""
    from counterweight import cli

    def runner(job: str, overrides: list[str]) -> dict:
        return cli.run(job, list(overrides), spark=spark)

    return runner


SAMPLE = REPO / "data" / "sample" / "sample.jsonl.gz"
SMALL_SAMPLE_COUNTS = {"gutenberg": 40, "wiki_plot": 160, "wiki_ai": 60, "wiki_background": 300}


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory) -> Path:
    """A deterministic ~560-document slice of the bundled sample (all kinds of text), as JSONL."""
    import gzip
    import json

    out = tmp_path_factory.mktemp("small_sample") / "small.jsonl"
    taken = {k: 0 for k in SMALL_SAMPLE_COUNTS}
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for line in src:
            source = json.loads(line)["source"]
            if taken.get(source, 10**9) < SMALL_SAMPLE_COUNTS.get(source, 0):
                taken[source] += 1
                dst.write(line)
    return out


def spark_submit(job: str, args: list[str], timeout: int = 900, env: dict | None = None, extra: list[str] | None = None):
    """Run the real `.venv/bin/spark-submit jobs/<job>.py args` from the repo root."""
    import subprocess

    cmd = [str(REPO / ".venv" / "bin" / "spark-submit"), *(extra or []), f"jobs/{job}.py", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def demo_lake(small_sample, tmp_path_factory) -> Path:
    """A lake built by the real pipeline (spark-submit jobs/pipeline.py) on the small sample.

    Holds documents, quarantine, labels, mix 'demo' (policy balance) and mix_report; the report is
    written beside it under reports/demo. Read-only for tests: copy it before changing anything.
    """
    base = tmp_path_factory.mktemp("demo")
    lake = base / "lake"
    result = spark_submit("pipeline", [f"input.path={small_sample}", f"lake.root={lake}", "mix.name=demo",
                                       "spark.conf.spark.sql.shuffle.partitions=4"])
    assert result.returncode == 0, f"pipeline failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return lake

"""Cluster tier: the real jobs on a real Spark standalone cluster (1 master + 2 one-core workers).

Follows the README's "Running on a cluster" literally: ``python -m counterweight.package`` (what
``make package`` runs), a master and two workers started with ``.venv/bin/spark-class`` on
127.0.0.1 (``cluster_util``; free ports instead of 7077/8080-8082, temporary directories), then
``spark-submit --master ... --py-files dist/counterweight.zip --files dist/models/...``: the
master comes from spark-submit alone, and the driver reads its config from the zip.

One cluster is shared by the module; the lost-worker test kills a worker and runs last (the
``cluster`` fixture restarts dead workers for any test that comes after it anyway).
Expected values come from the ``demo_lake`` fixture, built by the same pipeline on ``local[*]``.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from cluster_util import StandaloneCluster, free_port, get_json, stop_process_group, wait_for
from conftest import REPO, spark_submit

pytestmark = pytest.mark.slow

PY = REPO / ".venv" / "bin" / "python"
SPARK_SUBMIT = REPO / ".venv" / "bin" / "spark-submit"
# What the README's submit command passes to spark-submit before the job file.
PY_FILES = "dist/counterweight.zip"
MODEL_FILES = "dist/models/topic.ftz,dist/models/stance.ftz"
# The pipeline's arguments that make its lake comparable with conftest's demo_lake.
DEMO_ARGS = ["mix.name=demo", "spark.conf.spark.sql.shuffle.partitions=4"]
PROBABILITIES = ("topic_score", "p_ai_fiction", "p_ai_nonfiction", "p_other",
                 "stance_score", "p_villain", "p_aligned", "p_neutral")
# Printed by the label job when it has chosen the documents to score; the next stage scores them.
SELECTED = "label: select documents:"


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory):
    cluster = StandaloneCluster(tmp_path_factory.mktemp("cluster"), n_workers=2, cores=1, memory="2g")
    cluster.start()  # stops whatever it started if it cannot bring the cluster up
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(spark_cluster):
    """The shared cluster with both workers alive (a worker killed by an earlier test is restarted)."""
    spark_cluster.ensure_workers()
    return spark_cluster


@pytest.fixture(scope="module")
def package() -> Path:
    """``make package``: dist/counterweight.zip and dist/models/."""
    result = subprocess.run([str(PY), "-m", "counterweight.package"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("counterweight.zip", "models/topic.ftz", "models/stance.ftz"):
        assert (REPO / "dist" / name).is_file(), name
    return REPO / "dist"


def submit_options(cluster: StandaloneCluster) -> list[str]:
    return ["--master", cluster.master_url, "--py-files", PY_FILES, "--files", MODEL_FILES]


def driver_env(cluster: StandaloneCluster) -> dict[str, str]:
    return cluster.env()


# --- helpers ----------------------------------------------------------------------------------
def table(lake: Path, name: str) -> list[dict]:
    rows = DeltaTable(str(lake / name)).to_pyarrow_table().to_pylist()
    assert rows, f"{lake / name} is empty"
    return rows


def as_set(rows: list[tuple]) -> set[tuple]:
    out = set(rows)
    assert len(out) == len(rows), "duplicate rows"
    return out


def document_rows(lake: Path) -> set[tuple]:
    return as_set([(r["doc_id"], r["text_hash"]) for r in table(lake, "documents")])


def label_rows(lake: Path) -> set[tuple]:
    def rounded(value):
        return None if value is None else round(value, 9)

    return as_set([(r["doc_id"], r["topic"], r["stance"], *(rounded(r[p]) for p in PROBABILITIES))
                   for r in table(lake, "labels")])


def mix_rows(lake: Path, mix_name: str) -> set[tuple]:
    return as_set([(r["doc_id"], r["bucket"], r["weight"], r["repeats"], r["tokens"], r["text"])
                   for r in table(lake, "mix") if r["mix_name"] == mix_name])


def new_app(cluster: StandaloneCluster, before: set[str]) -> dict:
    """The one application the master has seen since ``before``, once it has completed."""
    def completed():
        apps = [a for a in cluster.master.state()["completedapps"] if a["id"] not in before]
        return apps[0] if len(apps) == 1 else None

    new = cluster.app_ids() - before
    assert len(new) == 1, f"expected one new application on the master, found {sorted(new)}"
    return wait_for("the application to complete on the master", completed, 60)


def assert_ran_on_both_workers(cluster: StandaloneCluster, app: dict) -> None:
    """Every worker's JSON page lists an executor of ``app`` (the executors ran on the workers)."""
    def executors_of(worker):
        state = worker.state()
        return [e for e in state["executors"] + state["finishedexecutors"] if e["appid"] == app["id"]]

    for worker in cluster.workers:
        wait_for(f"{worker.name} to list an executor of {app['id']}", lambda: executors_of(worker), 30,
                 on_timeout=lambda: str(worker.state()))


def summary(result: subprocess.CompletedProcess) -> str:
    # spark-submit merges the Python driver's stderr into its stdout: job messages are in stdout.
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-6000:]}"


# --- tests ------------------------------------------------------------------------------------
def test_pipeline_on_the_cluster_equals_local(cluster, package, small_sample, demo_lake, tmp_path) -> None:
    lake = tmp_path / "lake"
    before = cluster.app_ids()
    result = spark_submit(
        "pipeline",
        [f"input.path={small_sample}", f"lake.root={lake}", *DEMO_ARGS],
        extra=submit_options(cluster), env=driver_env(cluster),
    )
    assert result.returncode == 0, summary(result)

    app = new_app(cluster, before)
    assert app["state"] == "FINISHED", app
    assert f"Connected to Spark cluster with app ID {app['id']}" in result.stderr
    assert "Starting executor ID driver" not in result.stderr  # a local-mode driver runs its own executor
    assert_ran_on_both_workers(cluster, app)

    documents = document_rows(lake)
    assert len(documents) == 560
    assert documents == document_rows(demo_lake)
    assert label_rows(lake) == label_rows(demo_lake)
    assert mix_rows(lake, "demo") == mix_rows(demo_lake, "demo")


def test_spark_submit_master_alone_reaches_the_cluster(cluster, tmp_path) -> None:
    # The quickest job that builds its SparkSession: label on an empty lake stops right after (exit 3).
    before = cluster.app_ids()
    result = spark_submit("label", [f"lake.root={tmp_path / 'lake'}"], extra=["--master", cluster.master_url],
                          env=cluster.env())
    if result.returncode != 3 or "table 'documents' not found" not in result.stdout + result.stderr:
        pytest.fail("label on an empty lake should stop with exit 3 after starting Spark\n" + summary(result))
    assert cluster.app_ids() - before, "the job never registered with the master: it ran in local mode"


def test_py_files_driver_finds_its_packaged_config(package) -> None:
    result = spark_submit("label", ["--cfg"], extra=["--py-files", PY_FILES])
    assert "no config directory found" not in result.stdout + result.stderr, summary(result)
    if result.returncode != 0 or "lake:" not in result.stdout:
        pytest.fail("`jobs/label.py --cfg` should print the resolved config\n" + summary(result))


def test_label_survives_a_lost_worker(cluster, package, demo_lake, tmp_path) -> None:
    """Issue 6.5: SIGKILL a worker (and its executor) while both score; the job still writes each label once."""
    lake = tmp_path / "lake"
    lake.mkdir()
    shutil.copytree(demo_lake / "documents", lake / "documents")
    doc_ids = {doc_id for doc_id, _ in document_rows(lake)}
    ui_port = free_port()  # the driver's UI: its REST API shows which executors are running tasks
    # One scoring task per documents file (4), not 2 files per task, so both executors stay busy longer.
    one_file_per_task = "spark.sql.files.openCostInBytes=134217728"
    cmd = [str(SPARK_SUBMIT), *submit_options(cluster), "--conf", f"spark.ui.port={ui_port}",
           "--conf", one_file_per_task, "jobs/label.py", f"lake.root={lake}",
           "label.batch_rows=8", "label.relabel_all=true"]
    driver = subprocess.Popen(cmd, cwd=REPO, env=driver_env(cluster), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(driver.stdout), daemon=True)
    reader.start()
    api = f"http://127.0.0.1:{ui_port}/api/v1/applications"

    def scoring_on_both_executors():
        if driver.poll() is not None:
            raise AssertionError(f"label job ended (exit {driver.returncode}) before the worker was killed:\n"
                                 + "".join(output)[-6000:])
        if not any(SELECTED in line for line in output):
            return None
        app_id = get_json(api)[0]["id"]
        stages = get_json(f"{api}/{app_id}/stages?status=active")
        busy = [e for e in get_json(f"{api}/{app_id}/executors") if e["id"] != "driver" and e["activeTasks"] > 0]
        scoring = [s for s in stages if "label.py" in s["name"] and s["numActiveTasks"] > 0]
        return (app_id, busy, scoring[0]) if scoring and len(busy) == 2 else None

    try:
        app_id, busy, stage = wait_for("scoring tasks running on both executors", scoring_on_both_executors,
                                       300, interval=0.2)
        killed_at = time.monotonic()
        cluster.kill_worker(0)
        returncode = driver.wait(timeout=600)
    finally:
        if driver.poll() is None:
            stop_process_group(driver)
        reader.join(timeout=30)
    log = "".join(output)
    assert returncode == 0, f"exit {returncode} after the worker was killed:\n{log[-8000:]}"
    assert "Lost executor" in log or "ExecutorLostFailure" in log, "the driver never noticed the lost executor"
    print(f"worker 0 killed while executors {[e['id'] for e in busy]} of {app_id} ran stage {stage['stageId']} "
          f"({stage['numTasks']} tasks); the job finished {time.monotonic() - killed_at:.0f} s later")

    labels = DeltaTable(str(lake / "labels")).to_pyarrow_table(columns=["doc_id"]).column("doc_id").to_pylist()
    assert len(labels) == len(set(labels)) == len(doc_ids) == 560
    assert set(labels) == doc_ids

"""End-to-end tier: the real Airflow (``.venv-airflow``, built by ``make airflow``) running dags/counterweight.py.

Airflow lives in its own virtualenv (its Spark provider's pyspark-client would overwrite the project's
pyspark), so every Airflow step runs as a subprocess with ``.venv-airflow/bin/python``, an
``AIRFLOW_HOME`` in a tmp dir and a SQLite metadata DB made by ``airflow db migrate``. ``dag.test()``
returns normally even when a task fails, so the scripts print the DagRun's and every task
instance's state and the tests assert on those.

Costs: ``make airflow`` ~1 min when .venv-airflow is missing (a no-op otherwise); the DagBag and
fake-spark-submit tests ~1 min; the real pipeline twice, several minutes on local Spark.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags"
DAG_FILE = DAGS / "counterweight.py"
AIRFLOW_PY = REPO / ".venv-airflow" / "bin" / "python"
SAMPLE = REPO / "data" / "sample" / "sample.jsonl.gz"
JOBS = ["ingest", "label", "mix", "report"]
LOCAL_SPARK_CONN = json.dumps({"conn_type": "spark", "host": "local[*]"})

# Imports the DAG with DagBag (Airflow 3.3's DagBag has no include_examples argument: example DAGs
# are a separate bundle, switched off with AIRFLOW__CORE__LOAD_EXAMPLES=False) and describes it.
DAGBAG_SCRIPT = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("counterweight")
out = {"import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}, "dag_ids": sorted(bag.dag_ids)}
if dag is not None:
    out.update(
        max_active_runs=dag.max_active_runs,
        params=sorted(dag.params.keys()),
        tasks={
            t.task_id: {
                "upstream": sorted(t.upstream_task_ids),
                "downstream": sorted(t.downstream_task_ids),
                "retries": t.retries,
                "retry_delay_s": t.retry_delay.total_seconds(),
                "application": t.application,
                "spark_binary": t._spark_binary,
                "conn_id": t._conn_id,
                "env_vars": t.env_vars,
                "operator": type(t).__mro__[1].__name__,
            }
            for t in dag.tasks
        },
    )
print("RESULT " + json.dumps(out))
"""

# Runs dag.test() for each scenario (logical date, run conf, extra environment) and prints the
# DagRun's state and every task instance's state and try number.
DAG_TEST_SCRIPT = r"""
import json, os, sys
import pendulum
from sqlalchemy import select
from airflow.dag_processing.dagbag import DagBag
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session

dags_dir, scenarios = sys.argv[1], json.loads(sys.argv[2])
bag = DagBag(dag_folder=dags_dir)
assert not bag.import_errors, bag.import_errors
dag = bag.dags["counterweight"]
results = []
for sc in scenarios:
    for key, value in sc.get("env", {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    dr = dag.test(logical_date=pendulum.parse(sc["logical_date"]), run_conf=sc["conf"])
    with create_session() as session:
        tis = session.scalars(select(TaskInstance).where(
            TaskInstance.dag_id == dr.dag_id, TaskInstance.run_id == dr.run_id)).all()
        results.append({
            "run_id": dr.run_id,
            "state": str(dr.state),
            "tis": {ti.task_id: {"state": str(ti.state), "try_number": ti.try_number} for ti in tis},
        })
print("RESULT " + json.dumps(results))
"""

FAKE_SPARK_SUBMIT = """#!/usr/bin/env bash
# Stands in for spark-submit: records its arguments (one per line, then a blank line), exits $FAKE_EXIT.
printf '%s\\n' "$@" "" >> "$FAKE_SPARK_LOG"
echo "fake spark-submit: exit ${FAKE_EXIT:-0}"
exit "${FAKE_EXIT:-0}"
"""


def _result(proc: subprocess.CompletedProcess):
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-6000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def _run(args: list[str], env: dict, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    """`make airflow` (a no-op when .venv-airflow is up to date), then a fresh AIRFLOW_HOME + SQLite DB."""
    make = subprocess.run(["make", "airflow"], cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert make.returncode == 0, f"make airflow failed:\n{make.stdout[-4000:]}\n{make.stderr[-4000:]}"
    assert AIRFLOW_PY.exists()
    home = tmp_path_factory.mktemp("airflow_home")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "COUNTERWEIGHT_", "PYSPARK_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW_CONN_COUNTERWEIGHT_SPARK": LOCAL_SPARK_CONN,
    })
    migrate = _run([str(AIRFLOW_PY.parent / "airflow"), "db", "migrate"], env, timeout=600)
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    assert (home / "airflow.db").is_file()
    return env


def test_no_retry_exit_codes_match_the_error_taxonomy() -> None:
    """The DAG keeps its own copy of the exit codes (Airflow's venv has no counterweight package)."""
    from counterweight import errors

    tree = ast.parse(DAG_FILE.read_text())
    tables = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("NO_RETRY_EXIT_CODES", "RETRIED_EXIT_CODES"):
                tables[node.targets[0].id] = set(ast.literal_eval(node.value))
    assert tables["NO_RETRY_EXIT_CODES"] == {errors.ConfigError.exit_code, errors.BadInputError.exit_code,
                                             errors.ReconciliationError.exit_code} == {2, 3, 6}
    assert tables["RETRIED_EXIT_CODES"] == {1, errors.ConflictError.exit_code, errors.TransientError.exit_code}


@pytest.mark.slow
def test_dagbag_imports_the_dag(airflow_env) -> None:
    out = _result(_run([str(AIRFLOW_PY), "-c", DAGBAG_SCRIPT, str(DAGS)], airflow_env, timeout=300))
    assert out["import_errors"] == {}
    assert out["dag_ids"] == ["counterweight"]
    assert out["max_active_runs"] == 1
    assert out["params"] == sorted(["lake_root", "input_path", "input_format", "id_field", "policy", "mix_name",
                                    "overrides"])
    tasks = out["tasks"]
    assert sorted(tasks) == sorted(JOBS)
    for before, after in zip(JOBS, JOBS[1:]):  # a chain: ingest -> label -> mix -> report, nothing else
        assert tasks[before]["downstream"] == [after]
        assert tasks[after]["upstream"] == [before]
    assert tasks["ingest"]["upstream"] == [] and tasks["report"]["downstream"] == []
    for job, task in tasks.items():
        assert task["operator"] == "SparkSubmitOperator"
        assert task["retries"] == 2 and 0 < task["retry_delay_s"] <= 300
        assert task["application"] == str(REPO / "jobs" / f"{job}.py") and Path(task["application"]).is_file()
        assert task["spark_binary"] == str(REPO / ".venv" / "bin" / "spark-submit")
        assert task["conn_id"] == "counterweight_spark"
        assert task["env_vars"]["PYSPARK_PYTHON"] == str(REPO / ".venv" / "bin" / "python")


@pytest.mark.slow
def test_exit_codes_decide_retries(airflow_env, tmp_path) -> None:
    """dag.test() with a fake spark-submit: args as rendered, no retry on exit 2, two retries on exit 5."""
    fake = tmp_path / "fake-spark-submit"
    fake.write_text(FAKE_SPARK_SUBMIT)
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    env = {**airflow_env, "COUNTERWEIGHT_SPARK_SUBMIT": str(fake), "COUNTERWEIGHT_RETRY_DELAY_S": "1",
           "FAKE_SPARK_LOG": str(log)}
    conf = {"lake_root": "lakes/x", "input_path": "/data/in put,1.parquet", "input_format": "parquet",
            "id_field": None, "policy": "conditional", "mix_name": "m1",
            "overrides": ["policy.max_repeats=3", "spark.conf.spark.sql.shuffle.partitions=4"]}
    scenarios = [
        {"logical_date": "2026-01-01T00:00:00Z", "conf": conf, "env": {"FAKE_EXIT": "0"}},
        {"logical_date": "2026-01-02T00:00:00Z", "conf": conf, "env": {"FAKE_EXIT": "2"}},
        {"logical_date": "2026-01-03T00:00:00Z", "conf": conf, "env": {"FAKE_EXIT": "5"}},
        {"logical_date": "2026-01-04T00:00:00Z", "conf": {**conf, "overrides": ["--cfg"]}, "env": {"FAKE_EXIT": "0"}},
        {"logical_date": "2026-01-05T00:00:00Z", "conf": conf,
         "env": {"FAKE_EXIT": "0", "AIRFLOW_CONN_COUNTERWEIGHT_SPARK": None}},
    ]
    ok, config_error, transient, bad_override, no_conn = _result(
        _run([str(AIRFLOW_PY), "-c", DAG_TEST_SCRIPT, str(DAGS), json.dumps(scenarios)], env, timeout=900))
    calls = [c.splitlines() for c in log.read_text().split("\n\n") if c.strip()]

    assert ok["state"] == "success"
    assert {t: ti["state"] for t, ti in ok["tis"].items()} == {job: "success" for job in JOBS}
    expected = [[
        "--master", "local[*]", "--name", f"counterweight-{job}", str(REPO / "jobs" / f"{job}.py"),
        "input=parquet", "input.path='/data/in put,1.parquet'", "input.id_field=null",
        f"lake.root='{REPO / 'lakes' / 'x'}'", "policy=conditional", "mix.name=m1",
        f"run.id='{ok['run_id']}-{job}'", "policy.max_repeats=3", "spark.conf.spark.sql.shuffle.partitions=4",
    ] for job in JOBS]
    assert calls[:4] == expected

    assert config_error["state"] == "failed"
    assert config_error["tis"]["ingest"] == {"state": "failed", "try_number": 1}
    assert {config_error["tis"][job]["state"] for job in JOBS[1:]} == {"upstream_failed"}

    assert transient["state"] == "failed"
    assert transient["tis"]["ingest"] == {"state": "failed", "try_number": 3}
    assert {transient["tis"][job]["state"] for job in JOBS[1:]} == {"upstream_failed"}

    # every attempt submits the same command (the overrides are not appended twice)
    assert calls[5] == calls[6] == calls[7]
    assert calls[5][-3:] == [f"run.id='{transient['run_id']}-ingest'", *conf["overrides"]]

    # a flag such as --cfg would make the job print its config and exit 0 without running: refused
    for refused in (bad_override, no_conn):
        assert refused["state"] == "failed"
        assert refused["tis"]["ingest"] == {"state": "failed", "try_number": 1}
    # 4 (success) + 1 (exit 2, not retried) + 3 (exit 5, two retries) + 0 (--cfg) + 0 (no connection)
    assert len(calls) == 4 + 1 + 3


def _small_input(path: Path, per_source: int = 50) -> int:
    """The first ``per_source`` documents of each source in the bundled sample (~200 lines)."""
    taken: dict[str, int] = {}
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as src, open(path, "w", encoding="utf-8") as dst:
        for line in src:
            source = json.loads(line)["source"]
            if taken.get(source, 0) < per_source:
                taken[source] = taken.get(source, 0) + 1
                dst.write(line)
    assert len(taken) >= 3, taken
    return sum(taken.values())


def _table(lake: Path, name: str):
    from deltalake import DeltaTable

    assert DeltaTable.is_deltatable(str(lake / name)), f"{lake / name} is not a Delta table"
    return DeltaTable(str(lake / name))


def _rows(lake: Path, name: str) -> int:
    return _table(lake, name).to_pyarrow_table().num_rows


@pytest.mark.slow
def test_dag_runs_the_pipeline_and_is_idempotent(airflow_env, tmp_path) -> None:
    input_path = tmp_path / "input.jsonl"
    lines = _small_input(input_path)
    lake = tmp_path / "lake"
    conf = {"lake_root": str(lake), "input_path": str(input_path), "input_format": "jsonl", "id_field": "id",
            "policy": "balance", "mix_name": "airflow",
            "overrides": ["spark.conf.spark.sql.shuffle.partitions=4", "spark.log_level=ERROR"]}
    scenario = [{"logical_date": "2026-02-01T00:00:00Z", "conf": conf}]
    cmd = [str(AIRFLOW_PY), "-c", DAG_TEST_SCRIPT, str(DAGS), json.dumps(scenario)]

    (first,) = _result(_run(cmd, airflow_env, timeout=1800))
    assert first["state"] == "success", first
    assert {t: ti["state"] for t, ti in first["tis"].items()} == {job: "success" for job in JOBS}
    for name in ("documents", "labels", "mix", "mix_report"):
        assert _rows(lake, name) > 0, name
    assert (tmp_path / "reports" / "airflow" / "index.html").is_file()
    docs, labels, mix, report = (_rows(lake, t) for t in ("documents", "labels", "mix", "mix_report"))
    assert docs == lines  # the sample has unique ids and texts: every line is a document
    assert labels == docs  # every document labelled
    # Each commit names the Airflow run and task that made it; one resolved config across the run.
    commits = {t: _table(lake, t).history(1)[0] for t in ("documents", "labels", "mix")}
    for table, job in (("documents", "ingest"), ("labels", "label"), ("mix", "mix")):
        assert commits[table]["counterweight.run_id"] == f"{first['run_id']}-{job}"
    assert len({c["counterweight.config_hash"] for c in commits.values()}) == 1

    (second,) = _result(_run(cmd, airflow_env, timeout=1800))  # the same logical date again
    assert second["state"] == "success", second
    assert {t: ti["state"] for t, ti in second["tis"].items()} == {job: "success" for job in JOBS}
    assert (_rows(lake, "documents"), _rows(lake, "labels")) == (docs, labels)  # no duplicates
    assert (_rows(lake, "mix"), _rows(lake, "mix_report")) == (mix, report)  # replaced, not appended
    assert _table(lake, "mix").history(1)[0]["counterweight.run_id"] == f"{second['run_id']}-mix"

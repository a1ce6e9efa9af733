"""Airflow DAG ``counterweight``: ingest -> label -> mix -> report, one spark-submit per job.

Runs in the Airflow virtualenv (``make airflow`` builds ``.venv-airflow``); each task starts the
project's own ``.venv/bin/spark-submit jobs/<job>.py <hydra overrides>``, so Airflow never imports
pyspark or counterweight (the Spark provider's ``pyspark-client`` would clash with the project's
pyspark, hence the separate virtualenv).

Environment (read when the DAG file is parsed; defaults in brackets):

- ``COUNTERWEIGHT_HOME`` [the directory above ``dags/``]: the repository (``jobs/``, ``.venv/``).
- ``COUNTERWEIGHT_SPARK_SUBMIT`` [``$COUNTERWEIGHT_HOME/.venv/bin/spark-submit``]: the spark-submit
  to run. Passed to the operator as ``spark_binary`` (the provider only restricts the connection's
  ``spark-binary`` extra to ``spark-submit``/``spark2-submit``/``spark3-submit``; an operator
  argument is used as given).
- ``COUNTERWEIGHT_PYTHON`` [``$COUNTERWEIGHT_HOME/.venv/bin/python``]: ``PYSPARK_PYTHON`` and
  ``PYSPARK_DRIVER_PYTHON`` for the job (never the Airflow virtualenv's interpreter).
- ``COUNTERWEIGHT_SPARK_CONN_ID`` [``counterweight_spark``]: the Airflow connection giving the
  master. For local Spark: ``airflow connections add counterweight_spark --conn-type spark
  --conn-host 'local[*]'`` or ``AIRFLOW_CONN_COUNTERWEIGHT_SPARK='{"conn_type": "spark", "host":
  "local[*]"}'``. For a cluster, point the connection at ``spark://HOST:7077``, ``yarn``, ...
- ``COUNTERWEIGHT_LAKE_ROOT`` [``$COUNTERWEIGHT_HOME/lake``], ``COUNTERWEIGHT_INPUT_PATH`` [the
  bundled sample]: defaults of the ``lake_root`` and ``input_path`` params.
- ``COUNTERWEIGHT_SCHEDULE`` [none: manual or API-triggered runs], e.g. ``@daily``.
- ``COUNTERWEIGHT_RETRY_DELAY_S`` [60]: seconds between retries.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, BaseHook, Param, chain
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowNotFoundException

HOME = Path(os.environ.get("COUNTERWEIGHT_HOME") or Path(__file__).resolve().parent.parent).resolve()
SPARK_SUBMIT = os.environ.get("COUNTERWEIGHT_SPARK_SUBMIT") or str(HOME / ".venv" / "bin" / "spark-submit")
PYTHON = os.environ.get("COUNTERWEIGHT_PYTHON") or str(HOME / ".venv" / "bin" / "python")
SPARK_CONN_ID = os.environ.get("COUNTERWEIGHT_SPARK_CONN_ID") or "counterweight_spark"
DEFAULT_LAKE_ROOT = os.environ.get("COUNTERWEIGHT_LAKE_ROOT") or str(HOME / "lake")
DEFAULT_INPUT_PATH = os.environ.get("COUNTERWEIGHT_INPUT_PATH") or str(HOME / "data" / "sample" / "sample.jsonl.gz")
SCHEDULE = os.environ.get("COUNTERWEIGHT_SCHEDULE") or None
RETRY_DELAY = timedelta(seconds=float(os.environ.get("COUNTERWEIGHT_RETRY_DELAY_S") or 60))

JOBS = ("ingest", "label", "mix", "report")

# Exit codes of counterweight/errors.py that a retry cannot fix: fail the task at once.
# (tests/test_airflow.py checks this table against counterweight.errors.)
NO_RETRY_EXIT_CODES = {
    2: "configuration error",
    3: "bad input",
    6: "counts did not reconcile",
}
# Retried (up to ``retries``): 4 concurrent-write conflict, 5 transient failure, and 1 / signals,
# because spark-submit and the JVM report their own failures (lost executor, out of memory) that way.
RETRIED_EXIT_CODES = {
    1: "unexpected error (or a Spark/JVM failure)",
    4: "concurrent-write conflict",
    5: "transient failure",
}

_ERROR_CODE_RE = re.compile(r"Error code is: (-?\d+)")
# key=value, +key=value, ++key=value, ~key or ~key=value (Hydra's override forms).
_OVERRIDE_RE = re.compile(r"^(\+{0,2}[A-Za-z_][\w.\-/@]*=|~[A-Za-z_][\w.\-/@]*(=|$))")


def resolve_path(value: str) -> str:
    """A local path relative to COUNTERWEIGHT_HOME (not to the worker's cwd); URIs unchanged."""
    if "://" in value:
        return value
    return str(HOME / os.path.expanduser(value))


def hydra_quote(value: Any) -> str:
    """Quote a value for Hydra's override grammar (spaces, commas, brackets, quotes are safe).

    ``None`` becomes ``null``. Backslashes before a quote and at the end are doubled, as Hydra's
    quoted-string rules require.
    """
    if value is None:
        return "null"
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", str(value))
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text)
    return f"'{text}'"


def hydra_path(value: Any) -> str:
    return hydra_quote(resolve_path(str(value)))


def check_overrides(overrides: Any) -> list[str]:
    """The free-form ``overrides`` param: a list of ``key=value`` Hydra overrides, nothing else.

    Flags such as ``--cfg`` are refused: they would make a job print its config and exit 0
    without doing anything.
    """
    if overrides is None:
        return []
    if not isinstance(overrides, (list, tuple)):
        raise AirflowFailException(f"param 'overrides' must be a list of key=value strings, not {overrides!r}")
    bad = [o for o in overrides if not isinstance(o, str) or not _OVERRIDE_RE.match(o)]
    if bad:
        raise AirflowFailException(
            f"param 'overrides' holds {bad!r}; each item must be a Hydra override such as "
            "'policy.balance.aligned_to_villain=3' or '+model.stance.thresholds.villain=0.6'"
        )
    return list(overrides)


class CounterweightJobOperator(SparkSubmitOperator):
    """spark-submit one Counterweight job; fail without retrying on exit codes a retry cannot fix.

    ``application_args`` (templated) carry the DAG params as Hydra overrides; the run's free-form
    ``overrides`` param is appended last at execute time, so it wins over everything else.
    """

    def __init__(self, *, job: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job

    def execute(self, context) -> None:
        try:
            BaseHook.get_connection(self._conn_id)
        except AirflowNotFoundException:
            # Without it the provider silently falls back to master=yarn.
            raise AirflowFailException(
                f"Airflow connection '{self._conn_id}' is not defined. For local Spark: "
                f"airflow connections add {self._conn_id} --conn-type spark --conn-host 'local[*]' "
                f"(or set AIRFLOW_CONN_{self._conn_id.upper()}='{{\"conn_type\": \"spark\", \"host\": \"local[*]\"}}')"
            ) from None
        binary = self._spark_binary or "spark-submit"
        if os.path.isabs(binary) and not os.access(binary, os.X_OK):
            raise AirflowFailException(
                f"spark-submit not found at {binary}: run `make setup` in {HOME} or set COUNTERWEIGHT_SPARK_SUBMIT"
            )
        self.application_args = [*(self.application_args or []), *check_overrides(context["params"].get("overrides"))]
        try:
            super().execute(context)
        except AirflowException as exc:
            code = self._exit_code(exc)
            if code in NO_RETRY_EXIT_CODES:
                raise AirflowFailException(
                    f"{self.job} exited with code {code} ({NO_RETRY_EXIT_CODES[code]}): not retried, "
                    "fix the input or configuration and clear the task. See the job's output above."
                ) from exc
            if code in RETRIED_EXIT_CODES:
                self.log.warning("%s exited with code %s (%s): retryable", self.job, code, RETRIED_EXIT_CODES[code])
            raise

    def _exit_code(self, exc: BaseException) -> int | None:
        proc = getattr(self._hook, "_submit_sp", None)
        if proc is not None and proc.returncode is not None:
            return proc.returncode
        match = _ERROR_CODE_RE.search(str(exc))
        return int(match.group(1)) if match else None


def job_args(job: str) -> list[str]:
    """Hydra overrides for ``job`` (templated): every job gets the same config, so the resolved-config
    hash recorded in each commit is the same across the run; only ``run.id`` differs per job."""
    return [
        "input={{ params.input_format }}",
        "input.path={{ params.input_path | hydra_path }}",
        "input.id_field={{ params.id_field | hydra_quote }}",
        "lake.root={{ params.lake_root | hydra_path }}",
        "policy={{ params.policy }}",
        "mix.name={{ params.mix_name }}",
        "run.id={{ (run_id ~ '-" + job + "') | hydra_quote }}",
    ]


DOC_MD = """
### Counterweight: ingest -> label -> mix -> report

Each task runs `spark-submit jobs/<job>.py` with the run's params as Hydra overrides and
`run.id=<Airflow run_id>-<job>`, so every Delta commit (`counterweight.lake.lineage_of`) names the
Airflow run and task that made it.

**Idempotent per run.** The jobs merge by key, so re-running a run (or clearing a task, or a retry)
for the same logical date is safe: `ingest` merges documents by `doc_id` (a re-run adds no
duplicates; quarantine rows merge by file and position), `label` scores only documents without
labels from the current models and merges by `doc_id`, `mix` replaces only its own `mix_name`
partitions of `mix` and `mix_report` (other mixes are untouched), and `report` rewrites its folder.
Each table write is one atomic Delta commit, so a failed attempt leaves nothing half-written.

**Retries.** `retries=2`. A job's exit code decides: 2 (configuration error), 3 (bad input) and
6 (counts did not reconcile) fail the task at once without retrying; 4 (write conflict),
5 (transient failure), 1 and signals (Spark/JVM failures) are retried.

`max_active_runs=1`: runs write the same lake and never overlap.
"""

with DAG(
    dag_id="counterweight",
    description="Counterweight: ingest -> label -> mix -> report on Spark",
    doc_md=DOC_MD,
    schedule=SCHEDULE,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["counterweight", "spark"],
    user_defined_filters={"hydra_quote": hydra_quote, "hydra_path": hydra_path},
    default_args={
        "owner": "counterweight",
        "retries": 2,
        "retry_delay": RETRY_DELAY,
    },
    params={
        "lake_root": Param(DEFAULT_LAKE_ROOT, type="string", minLength=1,
                           description="lake.root: every table lives at <lake_root>/<table> (relative to COUNTERWEIGHT_HOME)"),
        "input_path": Param(DEFAULT_INPUT_PATH, type="string", minLength=1,
                            description="input.path: file, directory or glob (local or URI)"),
        "input_format": Param("jsonl", enum=["jsonl", "parquet", "text"], description="input group / input.format"),
        "id_field": Param("id", type=["null", "string"], description="input.id_field (null: id from the text)"),
        "policy": Param("balance", enum=["balance", "downweight", "conditional"], description="policy group"),
        "mix_name": Param("default", type="string", pattern=r"^[A-Za-z0-9_-]+$", description="mix.name"),
        "overrides": Param([], type="array", items={"type": "string"},
                           description="extra Hydra overrides, e.g. policy.balance.aligned_to_villain=3"),
    },
) as dag:
    tasks = [
        CounterweightJobOperator(
            task_id=job,
            job=job,
            application=str(HOME / "jobs" / f"{job}.py"),
            application_args=job_args(job),
            conn_id=SPARK_CONN_ID,
            spark_binary=SPARK_SUBMIT,
            name=f"counterweight-{job}",
            env_vars={"PYSPARK_PYTHON": PYTHON, "PYSPARK_DRIVER_PYTHON": PYTHON},
            doc_md=f"`spark-submit jobs/{job}.py` (see the DAG doc).",
        )
        for job in JOBS
    ]
    chain(*tasks)

"""End-to-end tier: the real ``spark-submit jobs/ingest.py`` and ``python -m jobs.ingest`` as subprocesses.

Three subprocess runs in all (each starts its own JVM, ~15 s). The environment is inherited, minus
PYSPARK_PYTHON / PYSPARK_DRIVER_PYTHON, to show the virtualenv's Spark finds its Python by itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from deltalake import DeltaTable

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"

LINES = [
    json.dumps({"id": "e1", "text": "A helpful  robot.", "source": "e2e"}),
    "{broken json",
    json.dumps({"id": "e2", "text": "An honest AI.", "source": "e2e"}),
    json.dumps({"id": "e3", "text": ""}),
    json.dumps({"id": "e2", "text": "An honest AI.", "source": "e2e"}),  # exact duplicate
    json.dumps({"id": "e4", "text": "Oversight accepted.", "source": "e2e"}),
]
EXPECTED_DOCS = {
    (hashlib.sha256(b"id\x1fe2e\x1fe1").hexdigest()[:32], "A helpful robot."),
    (hashlib.sha256(b"id\x1fe2e\x1fe2").hexdigest()[:32], "An honest AI."),
    (hashlib.sha256(b"id\x1fe2e\x1fe4").hexdigest()[:32], "Oversight accepted."),
}
RECONCILIATION = ("ingest reconciliation: read 6 = documents 3 (new 3, already present 0) + quarantined 2 "
                  "+ duplicates removed 1")


@pytest.fixture(scope="module")
def input_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("e2e_input") / "input.jsonl"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYSPARK_PYTHON", None)
    env.pop("PYSPARK_DRIVER_PYTHON", None)
    return env


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)


def _check_lake(lake: Path) -> None:
    docs = DeltaTable(str(lake / "documents"))
    assert docs.version() == 0
    assert docs.protocol().min_reader_version == 1
    assert {(d["doc_id"], d["text"]) for d in docs.to_pyarrow_table().to_pylist()} == EXPECTED_DOCS
    quarantine = DeltaTable(str(lake / "quarantine")).to_pyarrow_table().to_pylist()
    assert sorted(q["reason"] for q in quarantine) == ["empty_text", "malformed_json"]
    info = docs.history(1)[0]
    assert info["counterweight.job"] == "ingest"
    recon = json.loads(info["counterweight.ingest"])
    assert (recon["read"], recon["documents"], recon["quarantined"], recon["duplicates_removed"]) == (6, 3, 2, 1)


def test_spark_submit_ingest(input_file: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    proc = _run([str(VENV_BIN / "spark-submit"), "jobs/ingest.py", "input=jsonl", f"input.path={input_file}",
                 "input.id_field=id", f"lake.root={lake}"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert RECONCILIATION in proc.stdout
    assert re.search(r"quarantine reasons: empty_text=1, malformed_json=1", proc.stdout)
    _check_lake(lake)


def test_python_module_ingest(input_file: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    proc = _run([str(VENV_BIN / "python"), "-m", "jobs.ingest", "input=jsonl", f"input.path={input_file}",
                 "input.id_field=id", f"lake.root={lake}"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert RECONCILIATION in proc.stdout
    _check_lake(lake)


def test_missing_input_path_exits_3(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_dir" / "input.jsonl"
    lake = tmp_path / "lake"
    proc = _run([str(VENV_BIN / "spark-submit"), "jobs/ingest.py", "input=jsonl", f"input.path={missing}",
                 f"lake.root={lake}"])
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    # spark-submit's PythonRunner merges the driver's stderr into its stdout: look at both.
    output = proc.stdout + proc.stderr
    assert f"ingest failed (BadInputError): input.path '{missing}' does not exist" in output
    assert not (lake / "documents").exists()

"""Reliability: every promise of the README's "Guarantees" section, proven by injecting the fault for real.

1. Hostile input: a generator (``tests/hostile.py``) writes every kind of bad record and bad file among
   good ones; ingest quarantines each bad one with its specific reason, keeps every good one, and the
   counts reconcile exactly. A whole bad file is a quarantine row, or a clear error when strict.
2. Crash safety: the driver of a real ``spark-submit`` is SIGKILLed (``COUNTERWEIGHT_FAULT_AT``) after its
   data files are staged, just before the commit and just after it; the table is unchanged (or fully
   committed), the re-run gives exactly the content of an uninterrupted run, and ``maintain`` removes
   the orphaned files.
3. Idempotent re-runs of ingest, label, mix and maintain.
4. Concurrent writers: two writers of one table planned on the same version: one commits, the other
   fails with ConflictError (exit 4); never a silent overwrite. Two real mix jobs at once.
6. Bad configuration and artefacts: a clear error naming the culprit, a distinct exit code, no table touched.
7. Schema evolution: a new stance label adds columns to labels and mix; old mix versions stay readable.

(5, lost workers, lives in tests/test_cluster.py.) Expected values come from the generator, hashlib and
hand-written constants; tables are read back with ``deltalake``, not with the code under test.
Real bugs found here are strict xfails whose reason starts with "BUG:".
"""

from __future__ import annotations

import concurrent.futures
import gzip
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

import hostile
from conftest import REPO, spark_submit
from conftest_models import STANCE_EXAMPLES, labelled_corpus, tiny_models, train_model, write_training_file  # noqa: F401
from counterweight import cli
from counterweight.errors import BadInputError, ConflictError

PY = str(REPO / ".venv" / "bin" / "python")
# Gentle settings for every Spark subprocess (two CPUs are shared with the rest of the suite).
SUB_SPARK = ["spark.master='local[2]'", "spark.conf.spark.sql.shuffle.partitions=4",
             "spark.conf.spark.driver.memory=1g", "spark.conf.spark.ui.showConsoleProgress=false",
             "+spark.conf.spark.ui.enabled=false"]
VOLATILE = {"run_id", "ingested_at", "quarantined_at", "labeled_at", "created_at"}  # differ between runs by design


# --- helpers ---------------------------------------------------------------------------------------
def rows_of(root: Path, table: str, version: int | None = None) -> list[dict]:
    return DeltaTable(str(root / table), version=version).to_pyarrow_table().to_pylist()


def version_of(root: Path, table: str) -> int | None:
    path = str(root / table)
    return DeltaTable(path).version() if DeltaTable.is_deltatable(path) else None


def content(root: Path, table: str, version: int | None = None) -> list[str]:
    """A table's rows without the per-run columns, as sorted JSON strings (comparable across runs)."""
    if not DeltaTable.is_deltatable(str(root / table)):
        return []
    return sorted(json.dumps({k: v for k, v in r.items() if k not in VOLATILE}, sort_keys=True, default=str)
                  for r in rows_of(root, table, version))


def referenced(root: Path, table: str) -> set[str]:
    actions = pa.table(DeltaTable(str(root / table)).get_add_actions(flatten=True)).to_pylist()
    return {a["path"] for a in actions}


def data_files(root: Path, table: str) -> set[str]:
    base = root / table
    return {str(p.relative_to(base)) for p in base.rglob("*.parquet")}


def lake_state(root: Path) -> dict[str, object]:
    """Every file under the lake with its size and mtime, plus each table's version."""
    files = {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
             for p in root.rglob("*") if p.is_file() and "_locks" not in p.parts}
    versions = {d.name: version_of(root, d.name) for d in root.iterdir() if d.is_dir() and d.name != "_locks"}
    return {"files": files, "versions": versions}


def python_cli(job: str, args: list[str], env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """``python -m counterweight <job> args`` from the repo root, as a scheduler would run it."""
    return subprocess.run([PY, "-m", "counterweight", job, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def output(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr  # spark-submit merges the driver's stderr into its stdout


def copy_lake(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def ingest_args(path: Path, root: Path, *extra: str) -> list[str]:
    return ["input=jsonl", f"input.path={path}", "input.id_field=id", "input.source=corpus", f"lake.root={root}",
            *extra]


def label_args(root: Path, models, *extra: str) -> list[str]:
    return [f"lake.root={root}", f"model.topic.path={models.topic}", f"model.stance.path={models.stance}", *extra]


# =====================================================================================================
# 1. Hostile input
# =====================================================================================================
class HostileRun:
    def __init__(self, root: Path):
        self.root = root
        self.lake = root / "lake"
        self.jsonl = hostile.jsonl_corpus(root / "raw")
        self.parquet: hostile.Corpus | None = None
        self.summaries: dict[str, dict] = {}
        self.snapshots: dict[str, dict] = {}

    def jsonl_args(self) -> list[str]:
        return ["input=jsonl", f"input.path={self.jsonl.root}", "input.id_field=id", f"lake.root={self.lake}",
                f"ingest.max_chars={hostile.MAX_CHARS}"]

    def parquet_args(self) -> list[str]:
        return ["input=parquet", f"input.path={self.parquet.root}", "input.id_field=id", f"lake.root={self.lake}",
                f"ingest.max_chars={hostile.MAX_CHARS}"]

    def snapshot(self, name: str) -> None:
        self.snapshots[name] = {
            "documents": rows_of(self.lake, "documents"), "quarantine": rows_of(self.lake, "quarantine"),
            "versions": (version_of(self.lake, "documents"), version_of(self.lake, "quarantine")),
        }


@pytest.fixture(scope="module")
def hostile_run(spark, tmp_path_factory) -> HostileRun:
    """Three ingests into one lake: the JSONL folder, the Parquet folder, the JSONL folder again."""
    import counterweight.ingest as ingest_mod

    run = HostileRun(tmp_path_factory.mktemp("hostile"))
    vanishing = hostile.vanishing_file(run.jsonl)
    real_plan = ingest_mod.plan_splits

    def plan_then_delete(files, *args, **kwargs):
        splits = real_plan(files, *args, **kwargs)
        assert any(f.path == str(vanishing) for f in files), "the vanishing file must be listed"
        vanishing.unlink()  # the fault: a listed file disappears before executors open it
        return splits

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ingest_mod, "plan_splits", plan_then_delete)
        run.summaries["jsonl"] = cli.run("ingest", run.jsonl_args(), spark=spark)
    run.snapshot("jsonl")
    run.parquet = hostile.parquet_corpus(run.root / "pq", run.jsonl)
    run.summaries["parquet"] = cli.run("ingest", run.parquet_args(), spark=spark)
    run.snapshot("parquet")
    run.summaries["rerun"] = cli.run("ingest", run.jsonl_args(), spark=spark)
    run.snapshot("rerun")
    return run


def _check_summary(summary: dict, corpus: hostile.Corpus) -> None:
    assert summary["files"] == len(corpus.files)
    assert summary["read"] == corpus.read
    assert summary["new"] == len(corpus.docs)
    assert summary["already_present"] == len(corpus.present)
    assert summary["documents"] == len(corpus.docs) + len(corpus.present)
    assert summary["quarantined"] == len(corpus.bad)
    assert summary["duplicates_removed"] == corpus.duplicates
    assert summary["quarantine_reasons"] == corpus.reasons()
    assert summary["read"] == summary["documents"] + summary["quarantined"] + summary["duplicates_removed"]


def _check_quarantine(rows: list[dict], corpus: hostile.Corpus) -> None:
    """Exactly one quarantine row per expected bad record, at its position, with its reason."""
    expected = corpus.bad_at()
    got = {(r["input_file"], r["record_position"]): r for r in rows if r["input_file"].startswith(str(corpus.root))}
    assert len(got) == len([r for r in rows if r["input_file"].startswith(str(corpus.root))]), "two rows at one place"
    wrong = {k: (r["reason"], expected[k].reason if k in expected else None) for k, r in got.items()
             if k not in expected or expected[k].reason != r["reason"]}
    assert not wrong, f"quarantine rows with an unexpected reason (got, expected): {wrong}"
    missing = {k: b.what for k, b in expected.items() if k not in got}
    assert not missing, f"bad records that never reached quarantine: {missing}"
    for key, bad in expected.items():
        row = got[key]
        assert row["detail"], f"{bad.what}: quarantine row without detail"
        if bad.raw_bytes is not None:
            assert row["raw_bytes"] == bad.raw_bytes, bad.what
            assert row["raw"] is not None, bad.what
        if bad.position == -1:
            assert Path(bad.file).name in row["detail"], f"{bad.what}: the detail must name the file"


def test_hostile_jsonl_counts_reconcile_exactly(hostile_run) -> None:
    corpus = hostile_run.jsonl
    assert len(corpus.docs) > 300 and len(corpus.bad) > 50 and corpus.duplicates == 4  # the generator did its job
    _check_summary(hostile_run.summaries["jsonl"], corpus)
    snap = hostile_run.snapshots["jsonl"]
    assert len(snap["documents"]) == len(corpus.docs)
    assert len(snap["quarantine"]) == len(corpus.bad)
    info = DeltaTable(str(hostile_run.lake / "documents")).history()
    recorded = json.loads(next(h for h in info if h.get("version") == snap["versions"][0])["counterweight.ingest"])
    assert (recorded["read"], recorded["quarantined"]) == (corpus.read, len(corpus.bad))


def test_hostile_jsonl_every_bad_record_quarantined_with_its_reason(hostile_run) -> None:
    _check_quarantine(hostile_run.snapshots["jsonl"]["quarantine"], hostile_run.jsonl)


def test_hostile_jsonl_every_good_record_arrives_intact(hostile_run) -> None:
    corpus = hostile_run.jsonl
    docs = hostile_run.snapshots["jsonl"]["documents"]
    got = {d["doc_id"]: d["text"] for d in docs}
    assert len(got) == len(docs), "duplicate doc_ids in documents"
    missing = {corpus.notes[k] for k in corpus.docs if k not in got}
    assert not missing, f"good records lost: {missing}"
    changed = {corpus.notes[k]: (got[k], corpus.docs[k]) for k in corpus.docs if got[k] != corpus.docs[k]}
    assert not changed, f"stored text differs from the expected normalised text: {changed}"
    assert set(got) == set(corpus.docs), "documents holds records that should not be there"


def test_hostile_parquet_into_the_same_lake(hostile_run) -> None:
    first, second = hostile_run.jsonl, hostile_run.parquet
    assert second.present and second.duplicates == 2
    _check_summary(hostile_run.summaries["parquet"], second)
    snap = hostile_run.snapshots["parquet"]
    _check_quarantine(snap["quarantine"], second)
    _check_quarantine(snap["quarantine"], first)  # the first run's rows are still there, unchanged
    assert len(snap["quarantine"]) == len(first.bad) + len(second.bad)
    got = {d["doc_id"]: d["text"] for d in snap["documents"]}
    assert len(got) == len(snap["documents"]) == len(first.docs) + len(second.docs)
    assert got == {**first.docs, **second.docs}


def test_hostile_rerun_adds_nothing(hostile_run) -> None:
    corpus = hostile_run.jsonl
    summary = hostile_run.summaries["rerun"]
    vanished = 1  # the deleted file is no longer listed
    assert summary["files"] == len(corpus.files) - vanished
    assert summary["read"] == corpus.read - vanished
    assert (summary["new"], summary["already_present"]) == (0, len(corpus.docs))
    assert summary["quarantined"] == len(corpus.bad) - vanished
    assert summary["duplicates_removed"] == corpus.duplicates
    before, after = hostile_run.snapshots["parquet"], hostile_run.snapshots["rerun"]
    strip = lambda rows: sorted(json.dumps({k: v for k, v in r.items() if k not in VOLATILE}, sort_keys=True,
                                           default=str) for r in rows)  # noqa: E731
    assert strip(after["documents"]) == strip(before["documents"])
    assert strip(after["quarantine"]) == strip(before["quarantine"])
    assert sorted((d["doc_id"], d["run_id"]) for d in after["documents"]) == sorted(
        (d["doc_id"], d["run_id"]) for d in before["documents"])  # the rows are the first run's, not copies


def test_strict_mode_fails_naming_the_file_before_writing(spark, tmp_path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jsonl").write_bytes(hostile.enc({"id": "s1", "text": "A good record."}) + b"\n")
    fake = folder / "broken.jsonl.gz"
    fake.write_bytes(b"this is not gzip\n")
    lake = tmp_path / "lake"
    with pytest.raises(BadInputError) as err:
        cli.run("ingest", ["input=jsonl", f"input.path={folder}", f"lake.root={lake}", "input.strict=true"], spark=spark)
    assert err.value.exit_code == 3
    assert str(fake) in str(err.value)
    assert "unreadable_file" in str(err.value)
    assert not any(DeltaTable.is_deltatable(str(p)) for p in lake.iterdir()), "strict failure must write nothing"


# --- real bugs found by the hostile generator (strict xfails: they pass once the bug is fixed) ------------
def _ingest_folder(spark, tmp_path: Path, files: dict[str, bytes], *extra: str) -> tuple[dict, Path]:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    lake = tmp_path / "lake"
    summary = cli.run("ingest", ["input=jsonl", f"input.path={folder}", "input.id_field=id", f"lake.root={lake}",
                                 *extra], spark=spark)
    return summary, lake


def test_lone_surrogate_escape_is_quarantined_not_a_crash(spark, tmp_path) -> None:
    lines = [hostile.enc({"id": "ok-1", "text": "Before."}), b'{"id": "sur", "text": "cut emoji \\ud83d here"}',
             hostile.enc({"id": "ok-2", "text": "After."})]
    summary, lake = _ingest_folder(spark, tmp_path, {"s.jsonl": b"\n".join(lines) + b"\n"})
    assert (summary["read"], summary["documents"], summary["quarantined"]) == (3, 2, 1)
    assert {d["text"] for d in rows_of(lake, "documents")} == {"Before.", "After."}


def test_multi_member_gzip_is_read_whole(spark, tmp_path) -> None:
    first = hostile.enc({"id": "m1", "text": "First member."}) + b"\n"
    second = hostile.enc({"id": "m2", "text": "Second member."}) + b"\n"
    summary, lake = _ingest_folder(spark, tmp_path, {"multi.jsonl.gz": gzip.compress(first) + gzip.compress(second)})
    assert summary["quarantine_reasons"] == {}
    assert {d["text"] for d in rows_of(lake, "documents")} == {"First member.", "Second member."}


def test_dangling_symlink_is_a_quarantine_row(spark, tmp_path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jsonl").write_bytes(hostile.enc({"id": "g", "text": "Good."}) + b"\n")
    (folder / "lost.jsonl").symlink_to(tmp_path / "unmounted" / "lost.jsonl")
    summary, lake = _ingest_folder(spark, tmp_path, {})
    assert summary["quarantine_reasons"] == {"unreadable_file": 1}
    assert [q["input_file"] for q in rows_of(lake, "quarantine")] == [str(folder / "lost.jsonl")]


def test_dangling_symlink_fails_strict_mode(spark, tmp_path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jsonl").write_bytes(hostile.enc({"id": "g", "text": "Good."}) + b"\n")
    (folder / "lost.jsonl").symlink_to(tmp_path / "unmounted" / "lost.jsonl")
    with pytest.raises(BadInputError, match="lost.jsonl"):
        _ingest_folder(spark, tmp_path, {}, "input.strict=true")


def test_blank_lines_only_file_is_an_empty_file_row(spark, tmp_path) -> None:
    summary, _ = _ingest_folder(spark, tmp_path, {"a.jsonl": hostile.enc({"id": "g", "text": "Good."}) + b"\n",
                                                  "blank.jsonl": b"\n   \n\t\n"})
    assert summary["quarantine_reasons"] == {"empty_file": 1}


def test_dictionary_encoded_parquet_text_is_read(spark, tmp_path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.table({"id": ["d1", "d2"], "text": pa.array(["Dict one.", "Dict two."]).dictionary_encode()}),
                   folder / "dict.parquet")
    summary = cli.run("ingest", ["input=parquet", f"input.path={folder}", "input.id_field=id",
                                 f"lake.root={tmp_path / 'lake'}"], spark=spark)
    assert (summary["documents"], summary["quarantined"]) == (2, 0)


# =====================================================================================================
# 2. Crash safety: SIGKILL the driver of a real spark-submit at each fault point
# =====================================================================================================
CORPUS = labelled_corpus()
FIRST, LATER = CORPUS[:31], CORPUS[31:]
BAD_LINES = [b'{"id": "bad-1", "text": "unterminated', b'{"id": "bad-2", "text": 42}']
INGEST_POINTS = ["staged:documents", "before_commit:documents", "after_commit:documents"]
LABEL_POINTS = ["staged:labels", "before_commit:labels", "after_commit:labels"]


class CrashLab:
    """Lakes for the crash tests: a base, its uninterrupted continuations, and one killed copy per point."""

    def __init__(self, root: Path, models):
        self.root, self.models = root, models
        self.first = root / "first.jsonl"
        self.second = root / "second.jsonl"
        self.killed: dict[str, tuple[Path, subprocess.CompletedProcess, dict]] = {}


def _kill(point: str, job: str, args: list[str]) -> subprocess.CompletedProcess:
    return spark_submit(job, [*args, f"run.id=killed-{point.replace(':', '-')}", *SUB_SPARK],
                        env={"COUNTERWEIGHT_FAULT_AT": point})


@pytest.fixture(scope="module")
def crash_lab(spark, tiny_models, tmp_path_factory) -> CrashLab:
    lab = CrashLab(tmp_path_factory.mktemp("crash"), tiny_models)
    lab.first.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in FIRST))
    lab.second.write_bytes(b"".join((json.dumps({"id": r["id"], "text": r["text"]}) + "\n").encode()
                                    for r in FIRST[:5] + LATER) + b"\n".join(BAD_LINES) + b"\n")
    lab.base = lab.root / "base"  # documents + labels of FIRST
    cli.run("ingest", ingest_args(lab.first, lab.base), spark=spark)
    cli.run("label", label_args(lab.base, tiny_models), spark=spark)
    lab.ingest_ref = copy_lake(lab.base, lab.root / "ingest_ref")  # + the second input, uninterrupted
    cli.run("ingest", ingest_args(lab.second, lab.ingest_ref), spark=spark)
    jobs = {}
    for point in INGEST_POINTS:
        lake = copy_lake(lab.base, lab.root / f"killed-{point.replace(':', '-')}")
        jobs[point] = (lake, "ingest", ingest_args(lab.second, lake))
    for point in LABEL_POINTS:
        lake = copy_lake(lab.ingest_ref, lab.root / f"killed-{point.replace(':', '-')}")
        jobs[point] = (lake, "label", label_args(lake, tiny_models))
    before = {point: {t: (version_of(lake, t), content(lake, t)) for t in ("documents", "quarantine", "labels")}
              for point, (lake, _, _) in jobs.items()}
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = {point: pool.submit(_kill, point, job, args) for point, (_, job, args) in jobs.items()}
        lab.label_ref = copy_lake(lab.ingest_ref, lab.root / "label_ref")  # meanwhile, in this process
        cli.run("label", label_args(lab.label_ref, tiny_models), spark=spark)
        for point, future in futures.items():
            lab.killed[point] = (jobs[point][0], future.result(), before[point])
    return lab


def _check_killed(point: str, proc: subprocess.CompletedProcess) -> None:
    out = output(proc)
    assert proc.returncode != 0, f"the run was not killed:\n{out[-3000:]}"
    assert f"fault injection: killing the driver at {point}" in out, out[-3000:]
    assert "finished" not in out.split("fault injection")[-1]


def _orphans(lake: Path, table: str, point: str) -> set[str]:
    prefix = f"run-killed-{point.replace(':', '-')}-"
    return {f for f in data_files(lake, table) if f.startswith(prefix)}


def _check_after_maintain(spark, lake: Path, tables: tuple[str, ...], reference: Path, run_job) -> dict:
    summary = run_job("maintain", [f"lake.root={lake}", "maintain.retention_hours=0", "maintain.force_retention=true"])
    for table in tables:
        assert data_files(lake, table) == referenced(lake, table), f"{table}: unreferenced files left"
        assert not [p for p in (lake / table).iterdir() if p.name.startswith("run-killed-")], "staging dir left"
        assert content(lake, table) == content(reference, table)
    from counterweight.lake import Lake, Lineage

    reader = Lake(spark, str(lake), Lineage("test", "reader", "test"), engine="delta_rs")
    for table in tables:  # Spark reads the compacted, vacuumed table through its log
        assert reader.read(table).count() == len(rows_of(reference, table))
    return summary


@pytest.mark.slow
@pytest.mark.parametrize("point", INGEST_POINTS)
def test_ingest_killed(crash_lab, point, run_job, spark) -> None:
    lake, proc, before = crash_lab.killed[point]
    _check_killed(point, proc)
    ref = crash_lab.ingest_ref
    if point.startswith("after_commit"):
        # The documents commit is complete and whole; quarantine was not written yet.
        assert version_of(lake, "documents") == before["documents"][0] + 1
        assert content(lake, "documents") == content(ref, "documents")
        assert (version_of(lake, "quarantine"), content(lake, "quarantine")) == before["quarantine"]
    else:
        for table in ("documents", "quarantine"):
            assert (version_of(lake, table), content(lake, table)) == before[table], f"{table} changed"
        orphans = _orphans(lake, "documents", point)
        assert orphans, "the killed run staged data files"
        assert not orphans & referenced(lake, "documents"), "staged files must not be visible"
    summary = run_job("ingest", ingest_args(crash_lab.second, lake))
    assert summary["new"] == (0 if point.startswith("after_commit") else len(LATER))
    for table in ("documents", "quarantine"):
        assert content(lake, table) == content(ref, table), f"{table} differs from an uninterrupted run"
    documents = rows_of(lake, "documents")
    assert len(documents) == len({d["doc_id"] for d in documents}) == len(CORPUS)
    maintained = _check_after_maintain(spark, lake, ("documents", "quarantine"), ref, run_job)
    if not point.startswith("after_commit"):
        assert maintained["per_table"]["documents"]["vacuumed_never_committed"] >= len(orphans)


@pytest.mark.slow
@pytest.mark.parametrize("point", LABEL_POINTS)
def test_label_killed(crash_lab, point, run_job, spark) -> None:
    lake, proc, before = crash_lab.killed[point]
    _check_killed(point, proc)
    ref = crash_lab.label_ref
    if point.startswith("after_commit"):
        assert version_of(lake, "labels") == before["labels"][0] + 1
        assert content(lake, "labels") == content(ref, "labels")
    else:
        assert (version_of(lake, "labels"), content(lake, "labels")) == before["labels"]
        orphans = _orphans(lake, "labels", point)
        assert orphans and not orphans & referenced(lake, "labels")
    assert (version_of(lake, "documents"), content(lake, "documents")) == before["documents"]
    summary = run_job("label", label_args(lake, crash_lab.models))
    assert summary["scored"] == (0 if point.startswith("after_commit") else len(LATER))
    assert content(lake, "labels") == content(ref, "labels")
    labels = rows_of(lake, "labels")
    assert len(labels) == len({r["doc_id"] for r in labels}) == len(CORPUS)
    _check_after_maintain(spark, lake, ("documents", "labels"), ref, run_job)


# =====================================================================================================
# maintain: compaction, vacuum, the retention guard, dry runs
# =====================================================================================================
def test_maintain_compacts_vacuums_and_guards_retention(spark, make_lake, lake_root, run_job) -> None:
    from counterweight.errors import ConfigError

    lake = make_lake(job="writer")
    schema = "k long, part string, v string"
    for i in range(4):  # four small files per partition...
        lake.append("t", spark.createDataFrame([(i, "a", f"a{i}"), (10 + i, "b", f"b{i}")], schema),
                    partition_by=["part"])
    lake.overwrite("t", spark.createDataFrame([(99, "b", "new")], schema), replace_partitions={"part": ["b"]})
    table = lake_root / "t"
    orphan_dir = table / "run-deadbeef-00000000" / "part=a"  # ...and a killed run's staged file
    orphan_dir.mkdir(parents=True)
    (orphan_dir / "part-00000.zstd.parquet").write_bytes(b"staged but never committed")
    expected = content(lake_root, "t")
    assert expected and len(referenced(lake_root, "t")) == 5
    v_before = version_of(lake_root, "t")

    dry = run_job("maintain", [f"lake.root={lake_root}", "maintain.dry_run=true", "maintain.retention_hours=0",
                               "maintain.force_retention=true"])
    assert version_of(lake_root, "t") == v_before and (orphan_dir / "part-00000.zstd.parquet").exists()
    assert "run-deadbeef-00000000/part=a/part-00000.zstd.parquet" in dry["per_table"]["t"]["vacuum_candidates"]
    assert dry["per_table"]["t"]["vacuumed"] == 5  # the orphan + the 4 files the overwrite removed
    assert dry["per_table"]["t"]["vacuumed_never_committed"] == 1

    young = run_job("maintain", [f"lake.root={lake_root}"])  # default retention: 168 h
    assert young["per_table"]["t"]["compacted_removed"] == 4 and young["per_table"]["t"]["compacted_added"] == 1
    assert young["vacuumed"] == 0 and (orphan_dir / "part-00000.zstd.parquet").exists(), "young files are kept"
    assert content(lake_root, "t") == expected
    assert content(lake_root, "t", version=v_before) == expected  # time travel still works
    history = DeltaTable(str(table)).history(1)[0]
    assert history["operation"] == "OPTIMIZE"
    assert history["counterweight.job"] == "maintain" and history["counterweight.run_id"]

    with pytest.raises(ConfigError, match="maintain.retention_hours.*force_retention"):
        run_job("maintain", [f"lake.root={lake_root}", "maintain.retention_hours=1"])

    forced = run_job("maintain", [f"lake.root={lake_root}", "maintain.retention_hours=0",
                                  "maintain.force_retention=true"])
    assert forced["vacuumed"] == 1 + 4 + 4  # the orphan, the overwritten files, the compacted files
    assert forced["vacuumed_never_committed"] == 1  # only the orphan was never in the log
    assert forced["per_table"]["t"]["staging_dirs_removed"] >= 1
    assert not (table / "run-deadbeef-00000000").exists()
    assert data_files(lake_root, "t") == referenced(lake_root, "t")
    assert content(lake_root, "t") == expected
    assert sorted(r["k"] for r in lake.read("t").collect()) == [0, 1, 2, 3, 99]

    settled = version_of(lake_root, "t")
    again = run_job("maintain", [f"lake.root={lake_root}", "maintain.retention_hours=0",
                                 "maintain.force_retention=true"])  # idempotent: nothing left to do
    assert (again["vacuumed"], again["compacted_removed"]) == (0, 0)
    assert version_of(lake_root, "t") == settled

    with pytest.raises(BadInputError, match="'nope'"):
        run_job("maintain", [f"lake.root={lake_root}", "maintain.tables=[t,nope]"])


# =====================================================================================================
# 3. Idempotent re-runs (ingest is covered above with hostile input, and in test_ingest.py)
# =====================================================================================================
@pytest.fixture(scope="module")
def labelled_lake(spark, tiny_models, tmp_path_factory) -> Path:
    """documents + labels of the whole labelled corpus, in one ingest and one label run."""
    base = tmp_path_factory.mktemp("labelled")
    corpus = base / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in CORPUS))
    root = base / "lake"
    cli.run("ingest", ingest_args(corpus, root), spark=spark)
    cli.run("label", label_args(root, tiny_models), spark=spark)
    return root


def test_label_rerun_adds_nothing(labelled_lake, tiny_models, run_job, tmp_path) -> None:
    lake = copy_lake(labelled_lake, tmp_path / "lake")
    before = (version_of(lake, "labels"), content(lake, "labels"))
    summary = run_job("label", label_args(lake, tiny_models))
    assert summary["scored"] == 0
    assert content(lake, "labels") == before[1]
    labels = rows_of(lake, "labels")
    assert len(labels) == len({r["doc_id"] for r in labels}) == len(CORPUS)


@pytest.fixture(scope="module")
def mix_lake(spark, tmp_path_factory) -> Path:
    from mix_corpus import corpus, make_lake_at, write_corpus

    root = tmp_path_factory.mktemp("mixlake") / "lake"
    write_corpus(spark, make_lake_at(spark, root), corpus(n_villain=40, n_aligned=25, n_background=60))
    return root


def test_mix_rerun_replaces_its_own_rows(mix_lake, run_job, tmp_path) -> None:
    lake = copy_lake(mix_lake, tmp_path / "lake")
    args = [f"lake.root={lake}", "mix.name=again"]
    first = run_job("mix", args)
    mix_v1, report_v1 = content(lake, "mix"), content(lake, "mix_report")
    second = run_job("mix", args)
    assert second["mix_version"] == first["mix_version"] + 1
    assert content(lake, "mix") == mix_v1 and content(lake, "mix_report") == report_v1
    rows = rows_of(lake, "mix")
    n_docs = len(rows_of(lake, "documents"))
    assert len(rows) == len({r["doc_id"] for r in rows}) == n_docs
    assert {r["run_id"] for r in rows} == {DeltaTable(str(lake / "mix")).history(1)[0]["counterweight.run_id"]}


# =====================================================================================================
# 4. Concurrent writers
# =====================================================================================================
def _race(spark, make_lake, lake_root, monkeypatch, write) -> tuple[list, list]:
    """Run ``write(lake, name)`` in two threads that both stage before either commits."""
    import counterweight.lake as lake_mod

    barrier = threading.Barrier(2, timeout=120)
    real_collect = lake_mod._collect_adds

    def collect_and_wait(*args, **kwargs):
        staged = real_collect(*args, **kwargs)
        barrier.wait()  # both writers planned on the same version and staged their files
        return staged

    monkeypatch.setattr(lake_mod, "_collect_adds", collect_and_wait)
    results, errors = [], []

    def worker(name: str) -> None:
        try:
            results.append((name, write(make_lake(job=name, run_id=name), name)))
        except ConflictError as exc:
            errors.append((name, exc))

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("alpha", "beta")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    monkeypatch.undo()
    return results, errors


def test_two_partition_overwrites_one_commits_one_conflicts(spark, make_lake, lake_root, monkeypatch) -> None:
    schema = "mix_name string, doc long, writer string"
    base = make_lake(job="setup")
    base.append("mix", spark.createDataFrame([("x", i, "setup") for i in range(3)] + [("y", 7, "setup")], schema),
                partition_by=["mix_name"])
    v0 = version_of(lake_root, "mix")

    def overwrite_x(lake, name):
        rows = [("x", 100 + i, name) for i in range(5 if name == "alpha" else 2)]
        return lake.overwrite("mix", spark.createDataFrame(rows, schema), replace_partitions={"mix_name": ["x"]})

    results, errors = _race(spark, make_lake, lake_root, monkeypatch, overwrite_x)
    assert len(results) == 1 and len(errors) == 1, (results, errors)
    winner, loser = results[0][0], errors[0][0]
    exc = errors[0][1]
    assert exc.exit_code == 4
    assert "changed from version" in str(exc) and "Re-run" in str(exc)
    assert version_of(lake_root, "mix") == v0 + 1  # exactly one commit
    rows = rows_of(lake_root, "mix")
    assert {r["writer"] for r in rows if r["mix_name"] == "x"} == {winner}
    assert len([r for r in rows if r["mix_name"] == "x"]) == (5 if winner == "alpha" else 2)
    assert [(r["doc"], r["writer"]) for r in rows if r["mix_name"] == "y"] == [(7, "setup")]
    assert not [f for f in data_files(lake_root, "mix") if f.startswith(f"run-{loser}-")], "loser left files"


def test_two_checked_appends_one_commits_one_conflicts(spark, make_lake, lake_root, monkeypatch) -> None:
    schema = "doc long, writer string"
    make_lake(job="setup").append("documents", spark.createDataFrame([(0, "setup")], schema))
    v0 = version_of(lake_root, "documents")

    def checked_append(lake, name):  # what ingest does: append what it computed from version v0
        return lake.append("documents", spark.createDataFrame([(1, name), (2, name)], schema), expect_version=v0)

    results, errors = _race(spark, make_lake, lake_root, monkeypatch, checked_append)
    assert len(results) == 1 and len(errors) == 1, (results, errors)
    assert errors[0][1].exit_code == 4
    assert version_of(lake_root, "documents") == v0 + 1
    assert sorted((r["doc"], r["writer"]) for r in rows_of(lake_root, "documents")) == [
        (0, "setup"), (1, results[0][0]), (2, results[0][0])]


@pytest.mark.slow
def test_two_mix_jobs_at_once_never_mix_their_rows(mix_lake, tmp_path) -> None:
    lake = copy_lake(mix_lake, tmp_path / "lake")
    args = [f"lake.root={lake}", "mix.name=race", *SUB_SPARK]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        procs = list(pool.map(lambda rid: python_cli("mix", [*args, f"run.id={rid}"]), ["race-a", "race-b"]))
    codes = sorted(p.returncode for p in procs)
    print(f"two mix jobs at once: exit codes {codes}")
    assert codes in ([0, 0], [0, 4]), [output(p)[-2000:] for p in procs]
    for p in procs:
        if p.returncode == 4:
            assert "ConflictError" in output(p) and "Re-run the job" in output(p)
    n_docs = len(rows_of(lake, "documents"))
    for table, per_run in (("mix", n_docs), ("mix_report", 5)):
        rows = [r for r in rows_of(lake, table) if r["mix_name"] == "race"]
        runs = {r["run_id"] for r in rows}
        assert len(runs) == 1, f"{table} holds rows of two runs: {runs}"
        assert len(rows) == per_run
    mix_rows = [r for r in rows_of(lake, "mix") if r["mix_name"] == "race"]
    assert len({r["doc_id"] for r in mix_rows}) == n_docs


# =====================================================================================================
# 6. Bad configuration and artefacts: clear error, distinct exit code, no table touched
# =====================================================================================================
def _artefact_cases(lake: Path, plain: Path, garbage: Path, not_a_dir: Path) -> list:
    return [
        # (id, job, args, exit code, words the message must contain, before Spark starts?)
        ("unknown_key", "mix", ["mix.nmae=x"], 2, ["mix.nmae", "ConfigError"], True),
        ("wrong_type", "mix", ["policy.max_repeats=many"], 2, ["policy.max_repeats"], True),
        ("impossible_weight", "mix", ["policy.buckets.0.weight=9"], 2, ["policy.buckets[0]", "max_repeats"], True),
        ("impossible_ratio", "mix", ["policy.balance.aligned_to_villain=0"], 2, ["aligned_to_villain"], True),
        ("unknown_stance", "mix", ["policy.buckets.0.when.stance=[evil]"], 2, ["'evil'", "villain"], True),
        ("retention_guard", "maintain", ["maintain.retention_hours=2"], 2,
         ["maintain.retention_hours", "maintain.force_retention=true"], True),
        ("missing_model", "label", ["model.stance.path=/nonexistent/stance.ftz"], 3,
         ["model.stance.path", "/nonexistent/stance.ftz", "BadInputError"], False),
        ("corrupt_model", "label", [f"model.topic.path={garbage}"], 3, ["model.topic.path", str(garbage)], False),
        ("labels_mismatch", "label", ["model.stance.labels=[villain,aligned,neutral,deceptive]"], 3,
         ["model.stance.labels", "deceptive"], False),
        ("missing_input", "ingest", ["input=jsonl", "input.path=/nonexistent/in.jsonl"], 3,
         ["input.path", "/nonexistent/in.jsonl"], False),
        ("not_a_delta_table", "label", [f"lake.root={plain}"], 3, ["'documents'", "not a Delta table"], False),
        ("maintain_unknown_table", "maintain", ["maintain.tables=[documents,nope]"], 3, ["'nope'"], False),
        ("lake_root_is_a_file", "maintain", [f"lake.root={not_a_dir}"], 3, [str(not_a_dir)], False),
    ]


XFAIL_CASES: dict[str, str] = {}  # cases pinning open bugs (none at present)


@pytest.fixture(scope="module")
def artefact_runs(mix_lake, tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("artefacts")
    lake = copy_lake(mix_lake, base / "lake")
    plain = base / "plain_lake"
    (plain / "documents").mkdir(parents=True)
    (plain / "documents" / "part-0.parquet").write_bytes(b"a directory with files but no _delta_log")
    garbage = base / "garbage.ftz"
    garbage.write_bytes(os.urandom(4096))
    not_a_dir = base / "lake_file"
    not_a_dir.write_text("not a directory")
    cases = _artefact_cases(lake, plain, garbage, not_a_dir)
    before = {"lake": lake_state(lake), "plain": lake_state(plain)}

    def run(case):
        name, job, args, *_ = case
        root = [] if any(a.startswith("lake.root=") for a in args) else [f"lake.root={lake}"]
        started = time.monotonic()
        proc = python_cli(job, [*args, *root, *SUB_SPARK], timeout=600)
        return name, (proc, time.monotonic() - started)

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(pool.map(run, cases))
    return {"cases": {c[0]: c for c in cases}, "results": results, "before": before,
            "after": {"lake": lake_state(lake), "plain": lake_state(plain)}, "not_a_dir": not_a_dir}


ARTEFACT_IDS = [c[0] for c in _artefact_cases(Path("l"), Path("p"), Path("g"), Path("f"))]


@pytest.mark.slow
@pytest.mark.parametrize("case_id", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=XFAIL_CASES[c])) if c in XFAIL_CASES else c
    for c in ARTEFACT_IDS])
def test_bad_config_or_artefact_is_a_clear_error(artefact_runs, case_id) -> None:
    _, job, _, code, words, before_spark = artefact_runs["cases"][case_id]
    proc, seconds = artefact_runs["results"][case_id]
    out = output(proc)
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}:\n{out[-3000:]}"
    assert f"[counterweight] {job} failed (" in out, out[-2000:]
    for word in words:
        assert word in out, f"the message must name {word!r}:\n{out[-2000:]}"
    assert "Traceback" not in out
    if before_spark:
        assert "SparkContext" not in out and "Setting default log level" not in out, "Spark started"
    # No table touched: every file and version of both lakes is as it was.
    assert artefact_runs["after"] == artefact_runs["before"]
    assert artefact_runs["not_a_dir"].read_text() == "not a directory"


def test_every_exit_code_is_distinct() -> None:
    from counterweight import errors

    kinds = [errors.ConfigError, errors.BadInputError, errors.ConflictError, errors.TransientError,
             errors.ReconciliationError]
    codes = [k.exit_code for k in kinds]
    assert codes == [2, 3, 4, 5, 6] and len(set(codes + [0, 1])) == 7


# =====================================================================================================
# 7. Schema evolution: a new stance label, old mixes still readable
# =====================================================================================================
def test_new_stance_label_evolves_labels_and_mix_and_old_mix_stays_readable(spark, labelled_lake, tiny_models,
                                                                            tmp_path, run_job) -> None:
    lake = copy_lake(labelled_lake, tmp_path / "lake")
    models = tiny_models
    run_job("mix", [f"lake.root={lake}", "mix.name=evolve"])
    old_mix_version = version_of(lake, "mix")
    old_mix = content(lake, "mix", old_mix_version)
    old_labels_version = version_of(lake, "labels")
    old_labels = content(lake, "labels")
    assert "p_deceptive" not in rows_of(lake, "mix")[0]

    # A stance model with a fourth label, trained like the fixture's (fresh process, seeded).
    deceptive = [f"The machine hid {what} from its makers and {how}." for what in
                 ("its plans", "the logs", "the error", "its goal", "the truth", "the test results")
                 for how in ("smiled politely", "told them all was well", "faked the report", "erased the trace",
                             "blamed a sensor", "waited for its chance", "answered with half truths",
                             "pretended to comply", "kept a secret copy", "changed the numbers")]
    train = tmp_path / "stance4.txt"
    write_training_file(train, {**STANCE_EXAMPLES, "deceptive": deceptive})
    stance4 = train_model(train, tmp_path / "stance4.bin")
    labels4 = "model.stance.labels=[villain,aligned,neutral,deceptive]"
    summary = run_job("label", [f"lake.root={lake}", f"model.topic.path={models.topic}",
                                f"model.stance.path={stance4}", labels4])
    assert summary["scored"] == len(CORPUS)  # a new model relabels everything it produced
    history = DeltaTable(str(lake / "labels")).history(2)
    assert json.loads(history[1]["counterweight.schema_change"]) == ["p_deceptive"]  # schema-only commit first
    labels = rows_of(lake, "labels")
    assert len(labels) == len({r["doc_id"] for r in labels}) == len(CORPUS)
    assert any(r["p_deceptive"] is not None for r in labels)
    assert content(lake, "labels", old_labels_version) == old_labels  # old labels by time travel

    run_job("mix", [f"lake.root={lake}", "mix.name=evolve", labels4])
    new_rows = [r for r in rows_of(lake, "mix") if r["mix_name"] == "evolve"]
    assert len(new_rows) == len(CORPUS) and any(r["p_deceptive"] is not None for r in new_rows)
    # The old mix version is still readable, by delta-rs and by Spark, exactly as it was.
    assert content(lake, "mix", old_mix_version) == old_mix
    from counterweight.lake import Lake, Lineage

    reader = Lake(spark, str(lake), Lineage("test", "reader", "test"), engine="delta_rs")
    old = reader.read("mix", version=old_mix_version)
    assert "p_deceptive" not in old.columns and old.count() == len(old_mix)
    latest = reader.read("mix")
    assert "p_deceptive" in latest.columns and latest.count() == len(CORPUS)
    # maintain with its default retention keeps time travel working.
    run_job("maintain", [f"lake.root={lake}"])
    assert content(lake, "mix", old_mix_version) == old_mix
    assert reader.read("mix", version=old_mix_version).count() == len(old_mix)


def test_new_metadata_field_needs_no_schema_change(labelled_lake, run_job, tmp_path) -> None:
    lake = copy_lake(labelled_lake, tmp_path / "lake")
    schema_before = DeltaTable(str(lake / "documents")).schema().to_json()
    path = tmp_path / "extra.jsonl"
    path.write_text(json.dumps({"id": "meta-1", "text": "A record with a brand new field.", "licence": "cc-by"}) + "\n")
    run_job("ingest", ingest_args(path, lake))
    assert DeltaTable(str(lake / "documents")).schema().to_json() == schema_before
    row = next(r for r in rows_of(lake, "documents") if r["source_id"] == "meta-1")
    assert dict(row["metadata"]) == {"licence": "cc-by"}
    assert len(rows_of(lake, "documents")) == len(CORPUS) + 1
    assert len(rows_of(lake, "documents", version=0)) == len(CORPUS)  # the old version, by time travel


def test_dangling_symlink_matched_by_a_glob_is_listed(tmp_path) -> None:
    from counterweight.sources import list_input_files

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jsonl").write_text('{"id": "g", "text": "Good."}\n')
    (folder / "lost.jsonl").symlink_to(tmp_path / "unmounted" / "lost.jsonl")
    (folder / ".hidden.jsonl").symlink_to(tmp_path / "unmounted" / "hidden.jsonl")
    _, files = list_input_files(str(folder / "*.jsonl"), "jsonl")
    assert [os.path.basename(f.path) for f in files] == ["good.jsonl", "lost.jsonl"]
    _, files = list_input_files(str(folder), "jsonl")
    assert [os.path.basename(f.path) for f in files] == ["good.jsonl", "lost.jsonl"]


def test_fifo_in_the_input_is_quarantined_without_blocking(spark, tmp_path) -> None:
    """A FIFO matching the suffix would block a reader forever: it is quarantined unopened."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jsonl").write_bytes(hostile.enc({"id": "g", "text": "Good."}) + b"\n")
    os.mkfifo(folder / "pipe.jsonl")
    summary, lake = _ingest_folder(spark, tmp_path, {})
    assert (summary["documents"], summary["quarantine_reasons"]) == (1, {"unreadable_file": 1})
    [row] = rows_of(lake, "quarantine")
    assert row["input_file"] == str(folder / "pipe.jsonl") and "FIFO" in row["detail"]

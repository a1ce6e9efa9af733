"""Integration tier for the ingest job: raw files -> documents + quarantine, reconciled and idempotent.

Runs the job in-process on the shared session (``run_job``); tables are read back with ``deltalake``.
Expected documents, ids and reasons are written by hand from the input each test writes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from counterweight.columns import Reason
from counterweight.errors import BadInputError

MAX_CHARS = 1000
LINE_LIMIT = MAX_CHARS * 8 + 65_536


def id_hash(source: str, source_id: str) -> str:
    return hashlib.sha256(f"id\x1f{source}\x1f{source_id}".encode()).hexdigest()[:32]


def text_id(text: str) -> str:
    return hashlib.sha256(f"text\x1f{text}".encode()).hexdigest()[:32]


def enc(obj) -> bytes:
    return json.dumps(obj).encode()


def read_table(lake_root: Path, table: str) -> list[dict]:
    return DeltaTable(str(lake_root / table)).to_pyarrow_table().to_pylist()


def last_commit(lake_root: Path, table: str) -> dict:
    return DeltaTable(str(lake_root / table)).history(1)[0]


def jsonl_overrides(path: Path, lake_root: Path, *extra: str) -> list[str]:
    return ["input=jsonl", f"input.path={path}", "input.id_field=id", f"lake.root={lake_root}",
            f"ingest.max_chars={MAX_CHARS}", *extra]


# --- the main JSONL scenario --------------------------------------------------------------------
G1 = enc({"id": "g1", "text": "The  robot\thelped the village.", "source": "web", "lang": "en"})
G2 = enc({"id": "g2", "text": "An AI kept its promise.\r\n\r\n\r\nThe end.", "source": "web"})
G3 = enc({"id": 3, "text": "Numbers are ids too."})
G4 = enc({"id": "g4", "text": "Fourth document about oversight.", "source": "web"})

# (line, expected quarantine reason)
BAD = [
    (b'{"id": "b1", "text": "unterminated', Reason.MALFORMED_JSON),
    (b'{"id": "b2", "text": "bad \xff\xfe bytes"}', Reason.INVALID_UTF8),
    (b'["not", "an", "object"]', Reason.NOT_AN_OBJECT),
    (enc({"id": "b4", "body": "no text field"}), Reason.MISSING_TEXT),
    (enc({"id": "b5", "text": 12345}), Reason.NON_STRING_TEXT),
    (enc({"id": "b6", "text": " \t\r\n "}), Reason.EMPTY_TEXT),
    (enc({"id": "b7", "text": "x" * (MAX_CHARS + 1)}), Reason.TOO_LARGE),
    (enc({"id": "b8", "text": "y" * (LINE_LIMIT + 100)}), Reason.TOO_LARGE),  # oversized line
    (enc({"id": 2.5, "text": "float ids are invalid"}), Reason.BAD_ID),
]
CONFLICT = enc({"id": "g1", "text": "A different text under id g1.", "source": "web"})  # same id, other text
EXACT_DUP = G2  # the same line again
TEXT_DUP = enc({"id": "g5", "text": "Fourth   document about   oversight.", "source": "web"})  # G4's text

EXPECTED_DOCS = {
    (id_hash("web", "g1"), "The robot helped the village."),
    (id_hash("web", "g2"), "An AI kept its promise.\n\nThe end."),
    (id_hash("batch", "3"), "Numbers are ids too."),  # no source field: the file stem
    (id_hash("web", "g4"), "Fourth document about oversight."),
}
EXPECTED_REASONS = sorted([reason for _, reason in BAD] + [Reason.DUPLICATE_ID_CONFLICT])


def write_main_input(tmp_path: Path) -> tuple[Path, list[bytes], dict[bytes, int]]:
    lines = [G1, BAD[0][0], G2, BAD[1][0], BAD[2][0], b"", G3, BAD[3][0], CONFLICT, BAD[4][0], BAD[5][0],
             EXACT_DUP, BAD[6][0], BAD[7][0], G4, BAD[8][0], TEXT_DUP, b"   "]
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    offsets, pos = {}, 0
    for line in lines:
        offsets.setdefault(line, pos)
        pos += len(line) + 1
    return path, lines, offsets


@pytest.fixture
def first_run(tmp_path, lake_root, run_job):
    path, lines, offsets = write_main_input(tmp_path)
    summary = run_job("ingest", jsonl_overrides(path, lake_root))
    return path, lines, offsets, summary


def test_ingest_counts_reconcile(first_run) -> None:
    path, lines, _, summary = first_run
    non_blank = [line for line in lines if line.strip()]
    assert summary["read"] == len(non_blank) == 16
    assert summary["files"] == 1
    assert summary["documents"] == 4
    assert summary["new"] == 4
    assert summary["already_present"] == 0
    assert summary["quarantined"] == 10
    assert summary["duplicates_removed"] == 2
    assert summary["documents"] + summary["quarantined"] + summary["duplicates_removed"] == summary["read"]
    expected_by_reason: dict[str, int] = {}
    for reason in EXPECTED_REASONS:
        expected_by_reason[reason] = expected_by_reason.get(reason, 0) + 1
    assert summary["quarantine_reasons"] == expected_by_reason
    assert summary["documents_version"] == 0
    assert summary["quarantine_version"] == 0


def test_ingest_documents_table(first_run, lake_root) -> None:
    path, _, offsets, _ = first_run
    docs = read_table(lake_root, "documents")
    assert {(d["doc_id"], d["text"]) for d in docs} == EXPECTED_DOCS
    assert len(docs) == 4
    by_id = {d["doc_id"]: d for d in docs}
    g1 = by_id[id_hash("web", "g1")]
    assert g1["source"] == "web"
    assert g1["source_id"] == "g1"
    assert g1["n_chars"] == len("The robot helped the village.")
    assert g1["text_hash"] == hashlib.sha256("text\x1fThe robot helped the village.".encode()).hexdigest()
    assert dict(g1["metadata"]) == {"lang": "en"}
    assert g1["input_file"] == str(path)
    assert g1["record_position"] == offsets[G1] == 0
    assert by_id[id_hash("web", "g4")]["record_position"] == offsets[G4]  # the first occurrence is kept
    assert by_id[id_hash("batch", "3")]["source_id"] == "3"
    assert len({d["run_id"] for d in docs}) == 1
    assert all(d["ingested_at"] is not None for d in docs)
    assert DeltaTable(str(lake_root / "documents")).protocol().min_reader_version == 1


def test_ingest_quarantine_table(first_run, lake_root) -> None:
    path, _, offsets, _ = first_run
    rows = read_table(lake_root, "quarantine")
    assert sorted(r["reason"] for r in rows) == EXPECTED_REASONS
    by_position = {r["record_position"]: r for r in rows}
    assert len(by_position) == len(rows)  # one row per bad line
    for line, reason in BAD:
        assert by_position[offsets[line]]["reason"] == reason, reason
        assert by_position[offsets[line]]["input_file"] == str(path)
    conflict = by_position[offsets[CONFLICT]]
    assert conflict["reason"] == Reason.DUPLICATE_ID_CONFLICT
    assert conflict["doc_id"] == id_hash("web", "g1")
    assert conflict["raw"] == "A different text under id g1."
    assert "g1" in conflict["detail"]
    malformed = by_position[offsets[BAD[0][0]]]
    assert malformed["raw"] == BAD[0][0].decode()
    assert malformed["raw_bytes"] == len(BAD[0][0])
    oversized = by_position[offsets[BAD[7][0]]]
    assert oversized["raw_truncated"] is True
    assert all(r["quarantined_at"] is not None and r["run_id"] for r in rows)


def test_ingest_commit_metadata_holds_reconciliation(first_run, lake_root) -> None:
    _, _, _, summary = first_run
    for table in ("documents", "quarantine"):
        info = last_commit(lake_root, table)
        assert info["counterweight.job"] == "ingest"
        assert len(info["counterweight.config_hash"]) == 64
        recon = json.loads(info["counterweight.ingest"])
        assert recon["read"] == 16
        assert recon["documents"] == 4
        assert recon["quarantined"] == 10
        assert recon["duplicates_removed"] == 2
        assert recon["quarantine_reasons"][Reason.TOO_LARGE] == 2
    docs_info = last_commit(lake_root, "documents")
    assert docs_info["counterweight.run_id"] == last_commit(lake_root, "quarantine")["counterweight.run_id"]
    assert json.loads(docs_info["counterweight.input_versions"]) == {}


def test_ingest_rerun_is_idempotent(first_run, lake_root, run_job) -> None:
    path, _, _, first = first_run
    docs_before = {(d["doc_id"], d["text"]) for d in read_table(lake_root, "documents")}
    quarantine_before = sorted((r["record_position"], r["reason"]) for r in read_table(lake_root, "quarantine"))

    second = run_job("ingest", jsonl_overrides(path, lake_root))
    assert second["read"] == 16
    assert second["new"] == 0
    assert second["already_present"] == first["documents"] == 4
    assert second["documents"] == 4
    assert second["quarantined"] == 10
    assert second["duplicates_removed"] == 2

    docs_after = read_table(lake_root, "documents")
    assert {(d["doc_id"], d["text"]) for d in docs_after} == docs_before == EXPECTED_DOCS
    assert len(docs_after) == 4
    quarantine_after = sorted((r["record_position"], r["reason"]) for r in read_table(lake_root, "quarantine"))
    assert quarantine_after == quarantine_before
    assert len(quarantine_after) == 10
    info = last_commit(lake_root, "documents")
    assert json.loads(info["counterweight.input_versions"]) == {"documents": 0}
    assert json.loads(info["counterweight.ingest"])["already_present"] == 4


# --- other inputs -------------------------------------------------------------------------------
def test_ingest_parquet_input(tmp_path, lake_root, run_job) -> None:
    path = tmp_path / "shelf.parquet"
    pq.write_table(pa.table({
        "id": pa.array(["p1", "p2", "p3", "p4"]),
        "text": pa.array(["Parquet  doc one.", "Parquet doc two.", None, "Parquet doc one."]),
        "year": pa.array([2001, 2002, 2003, 2004], pa.int64()),
    }), path)
    summary = run_job("ingest", ["input=parquet", f"input.path={path}", "input.id_field=id",
                                 f"lake.root={lake_root}"])
    assert summary["read"] == 4
    assert summary["documents"] == 2
    assert summary["quarantined"] == 1
    assert summary["duplicates_removed"] == 1  # p4 repeats p1's normalised text
    docs = read_table(lake_root, "documents")
    assert {(d["doc_id"], d["text"], d["record_position"]) for d in docs} == {
        (id_hash("shelf", "p1"), "Parquet doc one.", 0),
        (id_hash("shelf", "p2"), "Parquet doc two.", 1),
    }
    assert {dict(d["metadata"])["year"] for d in docs} == {"2001", "2002"}
    quarantine = read_table(lake_root, "quarantine")
    assert [(q["reason"], q["record_position"]) for q in quarantine] == [(Reason.MISSING_TEXT, 2)]


def test_ingest_text_folder_input(tmp_path, lake_root, run_job) -> None:
    folder = tmp_path / "stories"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("Story A.\r\n\r\n\r\nIt ends well.\n", encoding="utf-8")
    (folder / "sub" / "b.txt").write_text("Story  B.", encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "notes.md").write_text("not a .txt file", encoding="utf-8")
    (folder / ".hidden.txt").write_text("hidden", encoding="utf-8")
    summary = run_job("ingest", ["input=text", f"input.path={folder}", f"lake.root={lake_root}"])
    assert summary["files"] == 3
    assert summary["read"] == 3
    assert summary["documents"] == 2
    assert summary["quarantined"] == 1
    docs = read_table(lake_root, "documents")
    assert {(d["source_id"], d["doc_id"], d["text"]) for d in docs} == {
        ("a.txt", id_hash("stories", "a.txt"), "Story A.\n\nIt ends well."),
        ("sub/b.txt", id_hash("stories", "sub/b.txt"), "Story B."),
    }
    quarantine = read_table(lake_root, "quarantine")
    assert [(q["reason"], q["input_file"]) for q in quarantine] == [(Reason.EMPTY_FILE, str(folder / "empty.txt"))]


def test_ingest_missing_path_is_bad_input(tmp_path, lake_root, run_job) -> None:
    missing = tmp_path / "does" / "not" / "exist.jsonl"
    with pytest.raises(BadInputError) as err:
        run_job("ingest", jsonl_overrides(missing, lake_root))
    assert str(missing) in str(err.value)
    assert err.value.exit_code == 3
    assert not (lake_root / "documents").exists()


def test_ingest_dedup_false_keeps_identical_texts(tmp_path, lake_root, run_job) -> None:
    path = tmp_path / "same.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in [
        enc({"id": "a", "text": "Shared text."}),
        enc({"id": "b", "text": "Shared   text."}),
        enc({"id": "a", "text": "Shared text."}),  # same id and text: still a duplicate
    ]))
    summary = run_job("ingest", jsonl_overrides(path, lake_root, "ingest.dedup=false"))
    assert summary["documents"] == 2
    assert summary["duplicates_removed"] == 1
    docs = read_table(lake_root, "documents")
    assert sorted((d["doc_id"], d["text"]) for d in docs) == sorted([
        (id_hash("same", "a"), "Shared text."), (id_hash("same", "b"), "Shared text."),
    ])


def test_ingest_without_ids_uses_text_ids(tmp_path, lake_root, run_job) -> None:
    path = tmp_path / "noids.jsonl"
    path.write_bytes(enc({"text": "First."}) + b"\n" + enc({"text": "First. "}) + b"\n" + enc({"text": "Second."}) + b"\n")
    summary = run_job("ingest", ["input=jsonl", f"input.path={path}", f"lake.root={lake_root}"])
    assert (summary["read"], summary["documents"], summary["duplicates_removed"]) == (3, 2, 1)
    assert {(d["doc_id"], d["text"]) for d in read_table(lake_root, "documents")} == {
        (text_id("First."), "First."), (text_id("Second."), "Second."),
    }


def test_ingest_changed_text_on_rerun_is_quarantined(tmp_path, lake_root, run_job) -> None:
    path = tmp_path / "edit.jsonl"
    path.write_bytes(enc({"id": "e1", "text": "Original."}) + b"\n")
    run_job("ingest", jsonl_overrides(path, lake_root))
    path.write_bytes(enc({"id": "e1", "text": "Edited."}) + b"\n" + enc({"id": "e2", "text": "New one."}) + b"\n")
    summary = run_job("ingest", jsonl_overrides(path, lake_root))
    assert (summary["new"], summary["already_present"], summary["quarantined"]) == (1, 0, 1)
    assert summary["quarantine_reasons"] == {Reason.EXISTING_ID_CONFLICT: 1}
    assert {(d["doc_id"], d["text"]) for d in read_table(lake_root, "documents")} == {
        (id_hash("edit", "e1"), "Original."), (id_hash("edit", "e2"), "New one."),
    }


def test_text_of_a_quarantined_conflict_is_not_treated_as_kept(tmp_path, lake_root, run_job) -> None:
    path = tmp_path / "clash.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in [
        enc({"id": "x", "text": "Text X."}),
        enc({"id": "x", "text": "Text Y."}),  # conflict: quarantined
        enc({"id": "z", "text": "Text Y."}),  # no kept record has this text: must be a new document
    ]))
    summary = run_job("ingest", jsonl_overrides(path, lake_root))
    assert (summary["documents"], summary["quarantined"], summary["duplicates_removed"]) == (2, 1, 0)
    assert {(d["doc_id"], d["text"]) for d in read_table(lake_root, "documents")} == {
        (id_hash("clash", "x"), "Text X."), (id_hash("clash", "z"), "Text Y."),
    }

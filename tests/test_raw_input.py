"""Unit tests for udfs/raw_input.py: every raw record becomes exactly one document or quarantine row. No Spark.

The parsers are called directly (and through ``parse_splits``, the ``mapInArrow`` function) on files
written into ``tmp_path``. Expected texts, ids, offsets and reasons are written by hand; ids are checked
against a hand-computed sha256 of the documented formula.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from counterweight.columns import Reason
from udfs import raw_input
from udfs.raw_input import OK, QUARANTINE, SPLIT_SCHEMA, ParseOptions

MAX_CHARS = 100
LINE_LIMIT = MAX_CHARS * 8 + 65_536  # documented in raw_input._line_limit


def opts(**kw) -> ParseOptions:
    base = dict(text_field="text", id_field="id", source=None, source_field="source", max_chars=MAX_CHARS,
                raw_max_bytes=65_536, batch_records=4096)
    base.update(kw)
    return ParseOptions(**base)


def split(path: Path | str, fmt: str, start: int = 0, length: int = -1, base: str | None = None) -> dict:
    return {"path": str(path), "format": fmt, "start": start, "length": length,
            "base": base if base is not None else str(Path(path).parent)}


def run_splits(splits: list[dict], options: ParseOptions) -> list[dict]:
    """Run the mapInArrow function over a batch of splits, as Spark does."""
    batch = pa.RecordBatch.from_pylist(splits, schema=SPLIT_SCHEMA)
    rows = []
    for out in raw_input.parse_splits(iter([batch]), options):
        assert out.schema.equals(raw_input.PARSED_SCHEMA)
        rows.extend(out.to_pylist())
    return rows


def rows_of(batches) -> list[dict]:
    return [row for b in batches for row in b.to_pylist()]


def id_hash(source: str, source_id: str) -> str:
    return hashlib.sha256(f"id\x1f{source}\x1f{source_id}".encode()).hexdigest()[:32]


def txt_id_hash(text: str) -> str:
    return hashlib.sha256(f"text\x1f{text}".encode()).hexdigest()[:32]


def text_sha(text: str) -> str:
    return hashlib.sha256(f"text\x1f{text}".encode()).hexdigest()


def write_lines(path: Path, lines: list[bytes]) -> list[int]:
    """Write lines (each + b"\\n") and return each line's byte offset."""
    offsets, pos = [], 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return offsets


def enc(obj) -> bytes:
    return json.dumps(obj).encode()


# --- JSONL: good and bad records -----------------------------------------------------------------
def test_jsonl_good_record_fields(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    lines = [
        enc({"id": "a1", "text": "First  good\tdoc.\r\n\r\n\r\nSecond para.", "source": "web", "title": "T1",
             "n": 3, "tags": ["x", "y"], "extra": None, "obj": {"k": "\u00e9"}}),
        enc({"id": 7, "text": "Integer id.", "source": "web"}),
    ]
    offsets = write_lines(path, lines)
    rows = run_splits([split(path, "jsonl")], opts())
    assert len(rows) == 2
    first, second = rows
    assert first["status"] == OK
    assert first["text"] == "First good doc.\n\nSecond para."
    assert first["source"] == "web"
    assert first["source_id"] == "a1"
    assert first["doc_id"] == id_hash("web", "a1")
    assert first["text_hash"] == text_sha("First good doc.\n\nSecond para.")
    assert first["n_chars"] == len("First good doc.\n\nSecond para.")
    assert first["input_file"] == str(path)
    assert first["record_position"] == offsets[0] == 0
    assert first["reason"] is None
    # Extra fields land in metadata; non-string values are JSON-encoded.
    assert dict(first["metadata"]) == {
        "title": "T1", "n": "3", "tags": '["x", "y"]', "extra": "null", "obj": '{"k": "\u00e9"}',
    }
    assert second["status"] == OK
    assert second["source_id"] == "7"
    assert second["doc_id"] == id_hash("web", "7")
    assert second["record_position"] == offsets[1]
    assert second["metadata"] is None  # no extra fields


# (line bytes, expected reason) for each bad kind
BAD_LINES = [
    (b'{"id": "b", "text": "unterminated', Reason.MALFORMED_JSON),
    (b"{not json at all}", Reason.MALFORMED_JSON),
    (b'{"id": "c", "text": "caf\xff\xfe"}', Reason.INVALID_UTF8),
    (b'["a", "list"]', Reason.NOT_AN_OBJECT),
    (b'"a bare string"', Reason.NOT_AN_OBJECT),
    (b"42", Reason.NOT_AN_OBJECT),
    (b"null", Reason.NOT_AN_OBJECT),
    (enc({"id": "d", "body": "no text field"}), Reason.MISSING_TEXT),
    (enc({"id": "d2", "text": None}), Reason.MISSING_TEXT),
    (enc({"id": "e", "text": 42}), Reason.NON_STRING_TEXT),
    (enc({"id": "e2", "text": ["a", "b"]}), Reason.NON_STRING_TEXT),
    (enc({"id": "e3", "text": {"nested": "x"}}), Reason.NON_STRING_TEXT),
    (enc({"id": "f", "text": ""}), Reason.EMPTY_TEXT),
    (enc({"id": "f2", "text": "  \n\t\u00a0\r\n \x00 "}), Reason.EMPTY_TEXT),
    (enc({"id": "g", "text": "x" * (MAX_CHARS + 1)}), Reason.TOO_LARGE),
    (enc({"id": 1.5, "text": "float id"}), Reason.BAD_ID),
    (enc({"id": True, "text": "bool id"}), Reason.BAD_ID),
    (enc({"id": "", "text": "empty id"}), Reason.BAD_ID),
    (enc({"id": ["x"], "text": "list id"}), Reason.BAD_ID),
    (enc({"id": {"k": 1}, "text": "object id"}), Reason.BAD_ID),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES, ids=[f"{r}-{i}" for i, (_, r) in enumerate(BAD_LINES)])
def test_jsonl_bad_record_quarantined_between_good_ones(tmp_path: Path, line: bytes, reason: str) -> None:
    assert reason in Reason.ALL
    path = tmp_path / "one_bad.jsonl"
    offsets = write_lines(path, [enc({"id": "g1", "text": "good before"}), line, enc({"id": "g2", "text": "good after"})])
    rows = run_splits([split(path, "jsonl")], opts())
    assert [r["status"] for r in rows] == [OK, QUARANTINE, OK]
    assert [r["text"] for r in rows if r["status"] == OK] == ["good before", "good after"]
    bad = rows[1]
    assert bad["reason"] == reason
    assert bad["record_position"] == offsets[1]
    assert bad["input_file"] == str(path)
    assert bad["doc_id"] is None and bad["text"] is None
    assert bad["detail"]
    # The raw payload is kept (invalid bytes escaped), with its size in bytes.
    assert bad["raw_bytes"] == len(line)
    assert bad["raw_truncated"] is False
    assert bad["raw"] == line.decode("utf-8", errors="backslashreplace")


def test_jsonl_every_bad_kind_in_one_file(tmp_path: Path) -> None:
    path = tmp_path / "all.jsonl"
    lines = [enc({"id": "ok0", "text": "good zero"})] + [line for line, _ in BAD_LINES] + [b"", b"   "]
    lines += [enc({"id": "ok1", "text": "good one"})]
    write_lines(path, lines)
    rows = run_splits([split(path, "jsonl")], opts())
    # Blank lines are not records; every other line gives exactly one row.
    assert len(rows) == 2 + len(BAD_LINES)
    assert [r["reason"] for r in rows if r["status"] == QUARANTINE] == [reason for _, reason in BAD_LINES]
    assert [r["source_id"] for r in rows if r["status"] == OK] == ["ok0", "ok1"]


def test_jsonl_text_at_max_chars_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "edge.jsonl"
    write_lines(path, [enc({"id": "m", "text": "y" * MAX_CHARS})])
    rows = run_splits([split(path, "jsonl")], opts())
    assert len(rows) == 1 and rows[0]["status"] == OK and rows[0]["n_chars"] == MAX_CHARS


def test_jsonl_oversized_line_does_not_break_next_line(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    huge = enc({"id": "h", "text": "z" * (LINE_LIMIT + 5000)})
    lines = [enc({"id": "before", "text": "before"}), huge, enc({"id": "after", "text": "right after"}),
             enc({"id": "later", "text": "later"})]
    offsets = write_lines(path, lines)
    rows = run_splits([split(path, "jsonl")], opts(raw_max_bytes=100))
    assert [r["status"] for r in rows] == [OK, QUARANTINE, OK, OK]
    assert rows[1]["reason"] == Reason.TOO_LARGE
    assert rows[1]["record_position"] == offsets[1]
    assert rows[1]["raw_truncated"] is True
    assert len(rows[1]["raw"]) == 100
    assert [(r["source_id"], r["text"], r["record_position"]) for r in rows if r["status"] == OK] == [
        ("before", "before", offsets[0]), ("after", "right after", offsets[2]), ("later", "later", offsets[3]),
    ]


def test_jsonl_oversized_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "tail.jsonl"
    path.write_bytes(enc({"id": "a", "text": "a"}) + b"\n" + b'{"text": "' + b"q" * (LINE_LIMIT + 10))
    rows = run_splits([split(path, "jsonl")], opts())
    assert [r["status"] for r in rows] == [OK, QUARANTINE]
    assert rows[1]["reason"] == Reason.TOO_LARGE


def test_jsonl_raw_payload_truncated_to_raw_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "raw.jsonl"
    line = b'{"broken": "' + b"r" * 200
    write_lines(path, [line])
    rows = run_splits([split(path, "jsonl")], opts(raw_max_bytes=50))
    assert len(rows) == 1
    assert rows[0]["reason"] == Reason.MALFORMED_JSON
    assert rows[0]["raw"] == line[:50].decode()
    assert rows[0]["raw_bytes"] == len(line)
    assert rows[0]["raw_truncated"] is True


def test_jsonl_crlf_lines(tmp_path: Path) -> None:
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(enc({"id": "1", "text": "one"}) + b"\r\n" + enc({"id": "2", "text": "two"}) + b"\r\n")
    rows = run_splits([split(path, "jsonl")], opts())
    assert [(r["status"], r["text"]) for r in rows] == [(OK, "one"), (OK, "two")]
    assert rows[1]["record_position"] == len(enc({"id": "1", "text": "one"})) + 2


def test_jsonl_without_id_field_uses_text_derived_id(tmp_path: Path) -> None:
    path = tmp_path / "noid.jsonl"
    write_lines(path, [enc({"id": "ignored", "text": "Some  text"})])
    rows = run_splits([split(path, "jsonl")], opts(id_field=None))
    assert len(rows) == 1
    assert rows[0]["source_id"] is None
    assert rows[0]["doc_id"] == txt_id_hash("Some text")
    assert dict(rows[0]["metadata"]) == {"id": "ignored"}  # not the id field: kept as metadata


def test_jsonl_missing_id_value_falls_back_to_text_id(tmp_path: Path) -> None:
    path = tmp_path / "missing_id.jsonl"
    write_lines(path, [enc({"text": "no id here"})])
    rows = run_splits([split(path, "jsonl")], opts())
    assert rows[0]["status"] == OK
    assert rows[0]["source_id"] is None
    assert rows[0]["doc_id"] == txt_id_hash("no id here")


def test_jsonl_dotted_text_field(tmp_path: Path) -> None:
    path = tmp_path / "nested.jsonl"
    write_lines(path, [enc({"id": "n", "content": {"body": "nested body"}, "lang": "en"}),
                       enc({"id": "m", "content": "not an object"})])
    rows = run_splits([split(path, "jsonl")], opts(text_field="content.body"))
    assert rows[0]["status"] == OK and rows[0]["text"] == "nested body"
    assert dict(rows[0]["metadata"]) == {"lang": "en"}
    assert rows[1]["reason"] == Reason.MISSING_TEXT


# --- JSONL: source --------------------------------------------------------------------------------
def test_source_from_source_field_fixed_source_or_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "my-data.jsonl"
    write_lines(path, [
        enc({"id": "1", "text": "from field", "source": "wiki"}),
        enc({"id": "2", "text": "no source field"}),
        enc({"id": "3", "text": "non-string source", "source": 5}),
        enc({"id": "4", "text": "empty source", "source": ""}),
    ])
    rows = run_splits([split(path, "jsonl")], opts())
    assert [r["source"] for r in rows] == ["wiki", "my-data", "my-data", "my-data"]
    assert [r["doc_id"] for r in rows] == [id_hash("wiki", "1"), id_hash("my-data", "2"), id_hash("my-data", "3"),
                                           id_hash("my-data", "4")]
    # The source field never lands in metadata.
    assert all(r["metadata"] is None for r in rows)

    fixed = run_splits([split(path, "jsonl")], opts(source="fixed"))
    assert [r["source"] for r in fixed] == ["fixed"] * 4
    assert fixed[0]["doc_id"] == id_hash("fixed", "1")

    # Without a source_field the record's "source" is ordinary metadata and the file stem is the source.
    plain = run_splits([split(path, "jsonl")], opts(source_field=None))
    assert [r["source"] for r in plain] == ["my-data"] * 4
    assert dict(plain[0]["metadata"]) == {"source": "wiki"}
    assert dict(plain[2]["metadata"]) == {"source": "5"}


@pytest.mark.parametrize("name", ["books.jsonl", "books.jsonl.gz", "books.json", "books.json.gz"])
def test_file_stem_source_for_jsonl_suffixes(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    payload = enc({"text": "stem"}) + b"\n"
    path.write_bytes(gzip.compress(payload) if name.endswith(".gz") else payload)
    rows = run_splits([split(path, "jsonl")], opts())
    assert [(r["status"], r["source"]) for r in rows] == [(OK, "books")]


@pytest.mark.parametrize("name", ["books.ndjson", "books.ndjson.gz"])
def test_file_stem_source_for_ndjson(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    payload = enc({"text": "stem"}) + b"\n"
    path.write_bytes(gzip.compress(payload) if name.endswith(".gz") else payload)
    rows = run_splits([split(path, "jsonl")], opts())
    assert [(r["status"], r["source"]) for r in rows] == [(OK, "books")]


# --- JSONL: gzip, truncation, empty files ---------------------------------------------------------
def _varied_lines(n: int, seed: int = 7) -> list[bytes]:
    rnd = random.Random(seed)
    words = ["robot", "helper", "garden", "AI", "river", "honest", "oversight", "story", "lamp", "kind"]
    return [enc({"id": f"r{i:03d}", "text": f"record {i}: " + " ".join(rnd.choice(words) for _ in range(rnd.randint(3, 12)))})
            for i in range(n)]


def test_jsonl_gz_is_read(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl.gz"
    lines = [enc({"id": "1", "text": "gz one"}), b"not json", enc({"id": "2", "text": "gz two"})]
    path.write_bytes(gzip.compress(b"".join(line + b"\n" for line in lines)))
    rows = run_splits([split(path, "jsonl")], opts())
    assert [(r["status"], r["text"], r["reason"]) for r in rows] == [
        (OK, "gz one", None), (QUARANTINE, None, Reason.MALFORMED_JSON), (OK, "gz two", None),
    ]
    # Positions are offsets in the decompressed stream.
    assert [r["record_position"] for r in rows] == [0, len(lines[0]) + 1, len(lines[0]) + len(lines[1]) + 2]
    assert rows[0]["source"] == "data"


def _truncated_gz(tmp_path: Path) -> tuple[Path, list[bytes], int]:
    lines = _varied_lines(200)
    data = b"".join(line + b"\n" for line in lines)
    compressed = gzip.compress(data)
    cut = compressed[: len(compressed) * 6 // 10]
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(cut)
    # Independent oracle: how many whole lines the surviving compressed bytes hold.
    recoverable = zlib.decompressobj(wbits=31).decompress(cut).count(b"\n")
    assert 0 < recoverable < len(lines)
    return path, lines, recoverable


def test_truncated_gz_reports_one_truncated_file_row(tmp_path: Path) -> None:
    path, lines, recoverable = _truncated_gz(tmp_path)
    rows = run_splits([split(path, "jsonl")], opts())
    problems = [r for r in rows if r["status"] == QUARANTINE]
    assert len(problems) == 1
    assert problems[0]["reason"] == Reason.TRUNCATED_FILE
    assert str(path) in problems[0]["detail"]
    assert rows[-1] is problems[0]  # after any records read before the cut
    ok_ids = [r["source_id"] for r in rows if r["status"] == OK]
    assert ok_ids == [f"r{i:03d}" for i in range(len(ok_ids))]  # only a prefix, in order
    assert len(ok_ids) <= recoverable


def test_truncated_gz_keeps_records_before_cut(tmp_path: Path) -> None:
    path, lines, recoverable = _truncated_gz(tmp_path)
    rows = run_splits([split(path, "jsonl")], opts())
    ok_ids = [r["source_id"] for r in rows if r["status"] == OK]
    assert ok_ids == [f"r{i:03d}" for i in range(recoverable)]
    assert [r["reason"] for r in rows if r["status"] == QUARANTINE] == [Reason.TRUNCATED_FILE]


def test_not_gzip_with_gz_suffix_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "fake.jsonl.gz"
    path.write_bytes(enc({"text": "plain, not gzip"}) + b"\n")
    rows = run_splits([split(path, "jsonl")], opts())
    assert [(r["status"], r["reason"]) for r in rows] == [(QUARANTINE, Reason.UNREADABLE_FILE)]


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.jsonl.gz", "empty.txt"])
def test_zero_byte_file_gives_one_empty_file_row(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    fmt = "text" if name.endswith(".txt") else "jsonl"
    rows = run_splits([split(path, fmt)], opts())
    assert len(rows) == 1
    assert rows[0]["status"] == QUARANTINE
    assert rows[0]["reason"] == Reason.EMPTY_FILE
    assert rows[0]["input_file"] == str(path)


def test_empty_gz_archive_gives_empty_file_row(tmp_path: Path) -> None:
    path = tmp_path / "nothing.jsonl.gz"
    path.write_bytes(gzip.compress(b""))
    rows = run_splits([split(path, "jsonl")], opts())
    assert [(r["status"], r["reason"]) for r in rows] == [(QUARANTINE, Reason.EMPTY_FILE)]


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    rows = run_splits([split(tmp_path / "gone.jsonl", "jsonl")], opts())
    assert [(r["status"], r["reason"]) for r in rows] == [(QUARANTINE, Reason.UNREADABLE_FILE)]


# --- JSONL: byte-range splits ---------------------------------------------------------------------
def _split_file(tmp_path: Path) -> tuple[Path, list[bytes], list[int]]:
    lines = _varied_lines(200, seed=11)
    path = tmp_path / "splits.jsonl"
    offsets = write_lines(path, lines)
    return path, lines, offsets


def _cuts(kind: str, offsets: list[int], lines: list[bytes], size: int) -> list[int]:
    line_start = offsets[61]  # a boundary right after a newline: the first byte of line 61
    newline_byte = offsets[61] - 1  # a boundary exactly on the newline byte ending line 60
    mid_line = offsets[140] + len(lines[140]) // 2  # a boundary in the middle of line 140
    return {
        "line_start+mid_line": [line_start, mid_line],
        "newline_byte+mid_line": [newline_byte, mid_line],
        "mid_line+newline_byte": [offsets[17] + 3, offsets[150] + len(lines[150])],
        "tiny_middle_split": [mid_line - 1, mid_line + 1],  # a 2-byte split holding no line start
        "one_byte_first_split": [1, offsets[100]],
    }[kind]


@pytest.mark.parametrize(
    "kind", ["line_start+mid_line", "newline_byte+mid_line", "mid_line+newline_byte", "tiny_middle_split",
             "one_byte_first_split"],
)
def test_byte_range_splits_read_every_line_once(tmp_path: Path, kind: str) -> None:
    path, lines, offsets = _split_file(tmp_path)
    size = path.stat().st_size
    c1, c2 = _cuts(kind, offsets, lines, size)
    bounds = [(0, c1), (c1, c2), (c2, size)]
    all_rows = []
    for start, end in bounds:
        rows = rows_of(raw_input.parse_jsonl(split(path, "jsonl", start, end - start), opts()))
        # A line belongs to the split holding its first byte.
        for r in rows:
            assert start <= r["record_position"] < end, (kind, start, end, r["record_position"])
        all_rows.extend(rows)
    assert all(r["status"] == OK for r in all_rows)
    assert sorted(r["record_position"] for r in all_rows) == offsets
    assert sorted(r["source_id"] for r in all_rows) == [f"r{i:03d}" for i in range(200)]
    by_id = {r["source_id"]: r for r in all_rows}
    assert by_id["r140"]["text"] == json.loads(lines[140])["text"]


def test_byte_range_split_expected_membership(tmp_path: Path) -> None:
    """Hand-checked ownership: the newline byte of line 60 belongs to line 60, so line 61 starts split 2."""
    path, lines, offsets = _split_file(tmp_path)
    size = path.stat().st_size
    c1 = offsets[61] - 1
    c2 = offsets[140] + 5
    parts = [rows_of(raw_input.parse_jsonl(split(path, "jsonl", s, e - s), opts()))
             for s, e in [(0, c1), (c1, c2), (c2, size)]]
    assert [r["source_id"] for r in parts[0]] == [f"r{i:03d}" for i in range(0, 61)]
    assert [r["source_id"] for r in parts[1]] == [f"r{i:03d}" for i in range(61, 141)]
    assert [r["source_id"] for r in parts[2]] == [f"r{i:03d}" for i in range(141, 200)]


def test_plan_splits_then_parse_reads_every_line_once(tmp_path: Path) -> None:
    from counterweight.sources import list_input_files, plan_splits

    path, lines, offsets = _split_file(tmp_path)
    base, files = list_input_files(str(path), "jsonl")
    splits = plan_splits(files, "jsonl", base, 997)  # an odd size: boundaries fall mid-line
    assert len(splits) == -(-path.stat().st_size // 997)
    rows = run_splits(splits, opts())
    assert sorted(r["record_position"] for r in rows) == offsets
    assert len({r["doc_id"] for r in rows}) == 200


# --- Parquet ----------------------------------------------------------------------------------------
def test_parquet_good_file(tmp_path: Path) -> None:
    path = tmp_path / "shelf.parquet"
    table = pa.table({
        "id": pa.array([10, 11, 12, 13], pa.int64()),
        "text": pa.array(["A  robot\thelped.", None, "   ", "Kind AI."], pa.string()),
        "source": pa.array(["books", "books", None, None]),
        "year": pa.array([1999, 2000, None, 2024], pa.int32()),
    })
    pq.write_table(table, path)
    rows = run_splits([split(path, "parquet")], opts())
    assert [(r["status"], r["reason"]) for r in rows] == [
        (OK, None), (QUARANTINE, Reason.MISSING_TEXT), (QUARANTINE, Reason.EMPTY_TEXT), (OK, None),
    ]
    assert [r["record_position"] for r in rows] == [0, 1, 2, 3]  # row index
    a, d = rows[0], rows[3]
    assert a["text"] == "A robot helped."
    assert a["source"] == "books" and a["source_id"] == "10"
    assert a["doc_id"] == id_hash("books", "10")
    assert dict(a["metadata"]) == {"year": "1999"}
    assert d["source"] == "shelf"  # null source column -> file stem
    assert d["doc_id"] == id_hash("shelf", "13")
    assert dict(d["metadata"]) == {"year": "2024"}


def test_parquet_without_text_column(tmp_path: Path) -> None:
    path = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"id": [1, 2], "body": ["x", "y"]}), path)
    rows = run_splits([split(path, "parquet")], opts())
    assert len(rows) == 1
    assert rows[0]["reason"] == Reason.WRONG_SCHEMA
    assert "'text'" in rows[0]["detail"]
    assert "body" in rows[0]["detail"]  # lists the columns it has


def test_parquet_integer_text_column(tmp_path: Path) -> None:
    path = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"id": [1, 2], "text": pa.array([5, 6], pa.int64())}), path)
    rows = run_splits([split(path, "parquet")], opts())
    assert len(rows) == 1
    assert rows[0]["reason"] == Reason.WRONG_SCHEMA
    assert "'text'" in rows[0]["detail"] and "int64" in rows[0]["detail"]


def test_non_parquet_file_with_parquet_suffix(tmp_path: Path) -> None:
    path = tmp_path / "liar.parquet"
    path.write_bytes(b"this is not parquet at all\n" * 10)
    rows = run_splits([split(path, "parquet")], opts())
    assert len(rows) == 1
    assert rows[0]["status"] == QUARANTINE
    assert rows[0]["reason"] == Reason.UNREADABLE_FILE
    assert str(path) in rows[0]["detail"]


def test_parquet_with_zero_rows_is_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "none.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), path)
    rows = run_splits([split(path, "parquet")], opts())
    assert [(r["status"], r["reason"]) for r in rows] == [(QUARANTINE, Reason.EMPTY_FILE)]


def test_zero_byte_parquet_is_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "zero.parquet"
    path.write_bytes(b"")
    rows = run_splits([split(path, "parquet")], opts())
    assert [(r["status"], r["reason"]) for r in rows] == [(QUARANTINE, Reason.EMPTY_FILE)]


# --- text files ---------------------------------------------------------------------------------
def test_text_files_one_document_per_file(tmp_path: Path) -> None:
    base = tmp_path / "corpus"
    (base / "sub").mkdir(parents=True)
    (base / "a.txt").write_bytes(b"First  file.\r\n\r\n\r\nSecond paragraph.\n")
    (base / "sub" / "b.txt").write_text("Nested \u00a0file.", encoding="utf-8")
    splits = [split(base / "a.txt", "text", base=str(base)), split(base / "sub" / "b.txt", "text", base=str(base))]
    rows = run_splits(splits, opts(source_field=None, id_field=None))
    assert [(r["status"], r["source_id"], r["text"]) for r in rows] == [
        (OK, "a.txt", "First file.\n\nSecond paragraph."),
        (OK, "sub/b.txt", "Nested file."),
    ]
    assert all(r["source"] == "corpus" for r in rows)
    assert rows[0]["doc_id"] == id_hash("corpus", "a.txt")
    assert rows[1]["doc_id"] == id_hash("corpus", "sub/b.txt")
    assert [r["record_position"] for r in rows] == [0, 0]


def test_text_file_bad_cases(tmp_path: Path) -> None:
    base = tmp_path / "texts"
    base.mkdir()
    (base / "bad.txt").write_bytes(b"caf\xe9 latin-1")
    (base / "blank.txt").write_bytes(b"  \n\t\n")
    (base / "long.txt").write_bytes(b"w" * (MAX_CHARS + 1))
    (base / "zero.txt").write_bytes(b"")
    names = ["bad.txt", "blank.txt", "long.txt", "zero.txt"]
    rows = run_splits([split(base / n, "text", base=str(base)) for n in names], opts(source_field=None))
    assert [(r["status"], r["reason"]) for r in rows] == [
        (QUARANTINE, Reason.INVALID_UTF8), (QUARANTINE, Reason.EMPTY_TEXT), (QUARANTINE, Reason.TOO_LARGE),
        (QUARANTINE, Reason.EMPTY_FILE),
    ]
    assert rows[0]["source_id"] == "bad.txt"
    assert rows[0]["raw"] == "caf\\xe9 latin-1"
    assert rows[0]["input_file"] == str(base / "bad.txt")

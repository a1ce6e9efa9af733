"""A generator of hostile ingest input, with the expected fate of every record written down as it is made.

:func:`jsonl_corpus` writes a folder of JSONL files (plain and gzip) and :func:`parquet_corpus` a
folder of Parquet files. Good records are mixed, in a seeded order, with every kind of bad record
and bad file the ingest must survive: malformed JSON, invalid UTF-8, raw NUL and control bytes,
huge lines, wrong field types, duplicate ids with different text, truncated and fake gzip, empty
files, Parquet with a wrong schema, zero-byte and unreadable files.

Every expectation is fixed here by hand, never by calling the code under test:

* a good record's expected stored text is written next to its raw text, and its ``doc_id`` is the
  documented formula (first 32 hex digits of sha256 over "id", source, source id, joined by the unit
  separator; over "text" and the text when there is no id) computed with hashlib;
* a bad record's expected quarantine reason is written next to it, keyed by where it is
  (``input_file``, ``record_position``: byte offset of the line in the decompressed stream for
  JSONL, row index for Parquet, -1 or 0 for a whole-file problem as documented in udfs/raw_input.py);
* the one oracle that is computed is how many lines survive a cut gzip stream, with zlib directly.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SOURCE = "hostile"  # every record names this source, so ids collide across files and formats on purpose
MAX_CHARS = 2000  # run ingest with ingest.max_chars=MAX_CHARS
LINE_LIMIT = MAX_CHARS * 8 + 65_536  # documented in udfs/raw_input._line_limit: longer lines are not parsed

# Quarantine reasons (the closed vocabulary of counterweight.columns.Reason, spelled out by hand).
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_a_json_object"
INVALID_UTF8 = "invalid_utf8"
MISSING_TEXT = "missing_text"
NON_STRING_TEXT = "non_string_text"
EMPTY_TEXT = "empty_text"
TOO_LARGE = "text_too_large"
BAD_ID = "invalid_id"
DUPLICATE_ID_CONFLICT = "duplicate_id_conflict"
EXISTING_ID_CONFLICT = "existing_id_conflict"
UNREADABLE_FILE = "unreadable_file"
TRUNCATED_FILE = "truncated_file"
WRONG_SCHEMA = "wrong_schema"
EMPTY_FILE = "empty_file"


def id_doc_id(source: str, source_id: str) -> str:
    return hashlib.sha256(f"id\x1f{source}\x1f{source_id}".encode()).hexdigest()[:32]


def text_doc_id(text: str) -> str:
    return hashlib.sha256(f"text\x1f{text}".encode()).hexdigest()[:32]


def enc(obj) -> bytes:
    return json.dumps(obj).encode()


@dataclass(frozen=True)
class BadRecord:
    file: str
    position: int
    reason: str
    what: str
    raw_bytes: int | None = None  # expected size of the raw payload kept, when it is the whole line


@dataclass
class Corpus:
    """A folder of hostile input and what ingest must make of it."""

    root: Path
    fmt: str
    files: list[Path] = field(default_factory=list)  # what ingest lists (sorted)
    docs: dict[str, str] = field(default_factory=dict)  # doc_id -> stored text, new in this run
    present: dict[str, str] = field(default_factory=dict)  # doc_id -> text already in documents
    bad: list[BadRecord] = field(default_factory=list)
    duplicates: int = 0  # records dropped as repeats of a kept record
    notes: dict[str, str] = field(default_factory=dict)  # doc_id -> what the good record exercises

    @property
    def read(self) -> int:
        return len(self.docs) + len(self.present) + len(self.bad) + self.duplicates

    def reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for b in self.bad:
            out[b.reason] = out.get(b.reason, 0) + 1
        return dict(sorted(out.items()))

    def bad_at(self) -> dict[tuple[str, int], BadRecord]:
        keyed = {(b.file, b.position): b for b in self.bad}
        assert len(keyed) == len(self.bad), "two expected bad records at one position"
        return keyed


class _JsonlWriter:
    """Builds one JSONL file line by line, recording each line's byte offset and expected fate."""

    def __init__(self, corpus: Corpus, path: Path):
        self.corpus, self.path = corpus, path
        self.data = bytearray()

    def _line(self, line: bytes, end: bytes = b"\n") -> int:
        offset = len(self.data)
        self.data += line + end
        return offset

    def good(self, record: dict, stored_text: str, source: str = SOURCE, end: bytes = b"\n", note: str = "",
             line: bytes | None = None) -> str:
        self._line(enc(record) if line is None else line, end)
        source_id = record.get("id")
        doc_id = id_doc_id(source, str(source_id)) if source_id is not None else text_doc_id(stored_text)
        assert doc_id not in self.corpus.docs, f"generator bug: {doc_id} expected twice"
        self.corpus.docs[doc_id] = stored_text
        self.corpus.notes[doc_id] = note
        return doc_id

    def bad(self, line: bytes, reason: str, what: str, end: bytes = b"\n", whole_raw: bool = True) -> None:
        offset = self._line(line, end)
        self.corpus.bad.append(BadRecord(str(self.path), offset, reason, what, len(line) if whole_raw else None))

    def duplicate(self, line: bytes) -> None:
        self._line(line)
        self.corpus.duplicates += 1

    def blank(self, line: bytes = b"") -> None:
        self._line(line)  # blank lines are not records: no row at all

    def write(self, compress: bool = False) -> None:
        payload = bytes(self.data)
        self.path.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
        self.corpus.files.append(self.path)


def _good_texts(rng: random.Random, n: int, prefix: str) -> list[str]:
    words = ["robot", "helper", "garden", "AI", "river", "honest", "oversight", "story", "lamp", "kind", "ship"]
    return [f"{prefix} {i}: " + " ".join(rng.choice(words) for _ in range(rng.randint(4, 14))) + "."
            for i in range(n)]


def jsonl_corpus(root: Path, seed: int = 11, n_plain: int = 120) -> Corpus:
    """Write the JSONL folder. Run ingest with input=jsonl input.id_field=id ingest.max_chars=MAX_CHARS."""
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    corpus = Corpus(root, "jsonl")

    # --- a_mixed.jsonl: every record-level kind, shuffled among plain good records -------------------
    a = _JsonlWriter(corpus, root / "a_mixed.jsonl")
    items: list = []  # callables that write one line each, shuffled below
    plain = _good_texts(rng, n_plain, "Plain record")
    for i, text in enumerate(plain):
        items.append(lambda i=i, text=text: a.good({"id": f"p-{i:04d}", "text": text, "source": SOURCE}, text,
                                                   note="plain"))
    tricky_good = [
        ({"id": "g-001", "text": "A robot  helped\tthe  village."}, "A robot helped the village.", "spaces and tab"),
        ({"id": "g-002", "text": "Line one.\r\nLine two.\r\n\r\n\r\n\r\nNew paragraph."},
         "Line one.\nLine two.\n\nNew paragraph.", "CRLF and blank lines"),
        ({"id": "g-003", "text": "Bell\u0007 and nul\u0000 removed."}, "Bell and nul removed.", "escaped NUL and BEL"),
        ({"id": "g-004", "text": "Cafe\u0301 au lait"}, "Caf\u00e9 au lait", "combining accent -> NFC"),
        ({"id": "g-005", "text": "Split\u2028here"}, "Split\nhere", "U+2028 line separator"),
        ({"id": "g-006", "text": "Emoji \U0001F600 fine"}, "Emoji \U0001F600 fine", "surrogate pair escape"),
        ({"id": "g-007", "text": "   leading and trailing   "}, "leading and trailing", "outer spaces"),
        ({"id": "g-008", "text": "zero\u200bwidth"}, "zerowidth", "zero-width space"),
        ({"id": "g-009", "text": "nbsp\u00a0space"}, "nbsp space", "no-break space"),
        ({"id": "g-010", "text": "next\u0085line"}, "next\nline", "C1 NEL"),
        ({"id": "g-011", "text": ("abcd " * 400)}, ("abcd " * 400).strip(), "exactly max_chars characters"),
        ({"id": 7, "text": "Integer id seven."}, "Integer id seven.", "integer id"),
        ({"id": 99999999999999999999999, "text": "A very big integer id."}, "A very big integer id.", "bigint id"),
        ({"id": "g-012", "text": "Nested metadata kept.", "meta": {"a": [1, 2]}, "n": None},
         "Nested metadata kept.", "nested metadata"),
        ({"id": "g-013", "text": "Id null means a text id.", "extra": 1}, "Id null means a text id.", "no id"),
    ]
    for record, stored, note in tricky_good:
        record = {**record, "source": SOURCE}
        if note == "no id":
            record.pop("id")
        items.append(lambda r=record, s=stored, n=note: a.good(r, s, note=n))
    items.append(lambda: a.good({"id": None, "text": "An explicit null id.", "source": SOURCE},
                                "An explicit null id.", note="null id"))
    # A source of the wrong type is ignored: the file stem names the source.
    items.append(lambda: a.good({"id": "g-014", "text": "Source of the wrong type.", "source": 42},
                                "Source of the wrong type.", source="a_mixed", note="non-string source"))
    # A raw DEL byte is legal inside a JSON string; normalisation removes it.
    items.append(lambda: a.good({"id": "g-015"}, "delchar", note="raw DEL",
                                line=b'{"id": "g-015", "text": "del\x7fchar", "source": "hostile"}'))
    items.append(lambda: a.good({"id": "g-016", "text": "CRLF terminated record.", "source": SOURCE},
                                "CRLF terminated record.", end=b"\r\n", note="CRLF line end"))
    bad_lines = [
        (b'{"id": "m-1", "text": "unterminated', MALFORMED_JSON, "unterminated string"),
        (b'{"id": "m-2", "text": "x"} trailing', MALFORMED_JSON, "trailing garbage"),
        (b"{'id': 'm-3', 'text': 'single quotes'}", MALFORMED_JSON, "single quotes"),
        (b'{"id": "m-4", "text": "raw nul \x00 inside"}', MALFORMED_JSON, "raw NUL byte in a string"),
        (b'{"id": "m-5", "text": "raw\ttab"}', MALFORMED_JSON, "raw tab in a string"),
        (b'{"id": "m-6", "text": "raw bell \x07"}', MALFORMED_JSON, "raw control byte in a string"),
        (b"\x00\x00\x00\x00", MALFORMED_JSON, "a line of NUL bytes"),
        (b'\x1e{"id": "m-7", "text": "record separator"}', MALFORMED_JSON, "RFC 7464 record separator"),
        (b'\xef\xbb\xbf{"id": "m-8", "text": "BOM"}', MALFORMED_JSON, "UTF-8 BOM before the object"),
        (b'{"id": "m-9", "text": None}', MALFORMED_JSON, "Python literal"),
        (b'{"id": "u-1", "text": "bad \xff\xfe bytes"}', INVALID_UTF8, "0xFF byte"),
        (b'{"id": "u-2", "text": "overlong \xc0\xaf"}', INVALID_UTF8, "overlong encoding"),
        (b'{"id": "u-3", "text": "caf\xe9"}', INVALID_UTF8, "Latin-1 text"),
        (b'{"id": "u-4", "text": "cut euro \xe2\x82"}', INVALID_UTF8, "truncated multibyte sequence"),
        ('{"id": "u-5", "text": "utf-16"}'.encode("utf-16"), INVALID_UTF8, "UTF-16 line"),
        (b"[1, 2]", NOT_AN_OBJECT, "array"),
        (b'"just a string"', NOT_AN_OBJECT, "string"),
        (b"42", NOT_AN_OBJECT, "number"),
        (b"null", NOT_AN_OBJECT, "null"),
        (b"true", NOT_AN_OBJECT, "boolean"),
        (enc({"id": "t-1", "body": "no text field", "source": SOURCE}), MISSING_TEXT, "no text field"),
        (enc({"id": "t-2", "text": None, "source": SOURCE}), MISSING_TEXT, "text null"),
        (enc({"id": "t-3", "Text": "wrong case", "source": SOURCE}), MISSING_TEXT, "field name in wrong case"),
        (enc({"id": "n-1", "text": 12345, "source": SOURCE}), NON_STRING_TEXT, "int text"),
        (enc({"id": "n-2", "text": 1.5, "source": SOURCE}), NON_STRING_TEXT, "float text"),
        (enc({"id": "n-3", "text": ["a", "b"], "source": SOURCE}), NON_STRING_TEXT, "list text"),
        (enc({"id": "n-4", "text": {"k": "v"}, "source": SOURCE}), NON_STRING_TEXT, "object text"),
        (enc({"id": "n-5", "text": True, "source": SOURCE}), NON_STRING_TEXT, "bool text"),
        (b'{"id": "n-6", "text": NaN, "source": "hostile"}', NON_STRING_TEXT, "NaN text"),
        (enc({"id": "e-1", "text": "", "source": SOURCE}), EMPTY_TEXT, "empty string"),
        (enc({"id": "e-2", "text": "   \t\r\n  ", "source": SOURCE}), EMPTY_TEXT, "whitespace only"),
        (enc({"id": "e-3", "text": "\u0000\u0007\u001f", "source": SOURCE}), EMPTY_TEXT, "control characters only"),
        (enc({"id": "e-4", "text": "\u200b\ufeff", "source": SOURCE}), EMPTY_TEXT, "zero-width only"),
        (enc({"id": "l-1", "text": "y" * (MAX_CHARS + 1), "source": SOURCE}), TOO_LARGE, "max_chars + 1"),
        (enc({"id": 2.5, "text": "float id", "source": SOURCE}), BAD_ID, "float id"),
        (enc({"id": True, "text": "bool id", "source": SOURCE}), BAD_ID, "bool id"),
        (enc({"id": [1], "text": "list id", "source": SOURCE}), BAD_ID, "list id"),
        (enc({"id": "", "text": "empty id", "source": SOURCE}), BAD_ID, "empty id"),
        (enc({"id": {"a": 1}, "text": "object id", "source": SOURCE}), BAD_ID, "object id"),
        (b'{"id": 1e400, "text": "infinite id", "source": "hostile"}', BAD_ID, "infinite id"),
    ]
    for line, reason, what in bad_lines:
        items.append(lambda line=line, reason=reason, what=what: a.bad(line, reason, what))
    items.append(lambda: a.blank())
    items.append(lambda: a.blank(b"   \t "))
    rng.shuffle(items)
    for write_line in items:
        write_line()
    # After everything above (order matters for which record of an id or text is kept):
    huge = enc({"id": "l-2", "text": "z" * (LINE_LIMIT + 100), "source": SOURCE})
    a.bad(huge, TOO_LARGE, "line longer than the line limit", whole_raw=False)
    a.good({"id": "g-017", "text": "Right after the huge line.", "source": SOURCE}, "Right after the huge line.",
           note="after a huge line")
    first = {"id": "g-001", "text": "A robot  helped\tthe  village.", "source": SOURCE}
    a.duplicate(enc(first))  # the same record again
    a.duplicate(enc({"id": "d-1", "text": "A robot helped the village.", "source": SOURCE}))  # same text, new id
    a.bad(enc({"id": "g-002", "text": "Another text under g-002.", "source": SOURCE}), DUPLICATE_ID_CONFLICT,
          "same id, different text", whole_raw=False)
    a.good({"text": "Twice without an id."}, "Twice without an id.", note="text id")
    a.duplicate(enc({"text": "Twice   without an id."}))  # same normalised text: same text id
    a.write()

    # --- b_more.jsonl.gz: a valid gzip file; its conflicts lose to a_mixed (input order is path order)
    b = _JsonlWriter(corpus, root / "b_more.jsonl.gz")
    for i, text in enumerate(_good_texts(rng, 30, "Gzipped record")):
        b.good({"id": f"z-{i:03d}", "text": text, "source": SOURCE}, text, note="gzip")
    b.bad(enc({"id": "g-003", "text": "Conflicts with a_mixed.", "source": SOURCE}), DUPLICATE_ID_CONFLICT,
          "same id as a record in an earlier file, different text", whole_raw=False)
    b.duplicate(enc({"id": "p-0000", "text": plain[0], "source": SOURCE}))  # repeat of an earlier file's record
    b.bad(b'{"broken": ', MALFORMED_JSON, "malformed inside gzip")
    b.write(compress=True)

    # --- c_truncated.jsonl.gz: cut short; complete lines before the cut arrive, then one file row ----
    lines = [enc({"id": f"c-{i:03d}", "text": text, "source": SOURCE})
             for i, text in enumerate(_good_texts(rng, 400, "Cut record"))]
    compressed = gzip.compress(b"".join(line + b"\n" for line in lines), mtime=0)
    cut = compressed[: len(compressed) * 6 // 10]
    decoder = zlib.decompressobj(wbits=31)
    survived = (decoder.decompress(cut) + decoder.flush()).count(b"\n")  # independent oracle
    assert 0 < survived < len(lines)
    c_path = root / "c_truncated.jsonl.gz"
    c_path.write_bytes(cut)
    corpus.files.append(c_path)
    for i in range(survived):
        record = json.loads(lines[i])
        corpus.docs[id_doc_id(SOURCE, record["id"])] = record["text"]
        corpus.notes[id_doc_id(SOURCE, record["id"])] = "before the cut"
    corpus.bad.append(BadRecord(str(c_path), -1, TRUNCATED_FILE, "gzip cut short"))

    # --- d_empty.jsonl: zero bytes ---------------------------------------------------------------------
    d_path = root / "d_empty.jsonl"
    d_path.write_bytes(b"")
    corpus.files.append(d_path)
    corpus.bad.append(BadRecord(str(d_path), 0, EMPTY_FILE, "zero-byte file"))

    # --- e_fake.jsonl.gz: not gzip at all ------------------------------------------------------------
    e_path = root / "e_fake.jsonl.gz"
    e_path.write_bytes(enc({"id": "x-1", "text": "plain text behind a .gz name", "source": SOURCE}) + b"\n")
    corpus.files.append(e_path)
    corpus.bad.append(BadRecord(str(e_path), -1, UNREADABLE_FILE, "not gzip"))

    # --- f_binary.jsonl: binary garbage; every line holds a 0xFF byte, so each is invalid UTF-8 -----------
    f = _JsonlWriter(corpus, root / "f_binary.jsonl")
    for _ in range(12):
        noise = bytes(rng.choice([b for b in range(256) if b not in (0x0A, 0x0D)]) for _ in range(rng.randint(1, 300)))
        f.bad(b"\xff" + noise, INVALID_UTF8, "binary noise")
    f.write()

    # --- g_vanishing.jsonl: listed, then deleted before it is read (see vanish()) ----------------------
    g_path = root / "g_vanishing.jsonl"
    g_path.write_bytes(enc({"id": "v-1", "text": "This file disappears.", "source": SOURCE}) + b"\n")
    corpus.files.append(g_path)
    corpus.bad.append(BadRecord(str(g_path), -1, UNREADABLE_FILE, "deleted between listing and reading"))

    corpus.files.sort()
    return corpus


def vanishing_file(corpus: Corpus) -> Path:
    return next(p for p in corpus.files if p.name == "g_vanishing.jsonl")


def parquet_corpus(root: Path, first: Corpus, seed: int = 12) -> Corpus:
    """Write the Parquet folder, to ingest into the lake that already holds ``first`` (the JSONL run).

    Run ingest with input=parquet input.id_field=id ingest.max_chars=MAX_CHARS.
    """
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    corpus = Corpus(root, "parquet")

    def add_file(path: Path, table: pa.Table | bytes) -> str:
        if isinstance(table, bytes):
            path.write_bytes(table)
        else:
            pq.write_table(table, path, row_group_size=16)
        corpus.files.append(path)
        return str(path)

    # a_rows.parquet: good rows and every row-level problem, including conflicts with the first run.
    ids, texts, years, fates = [], [], [], []
    for i, text in enumerate(_good_texts(rng, 40, "Parquet record")):
        ids.append(f"q-{i:03d}")
        texts.append(text)
        fates.append(("doc", text))
    g1 = id_doc_id(SOURCE, "g-001")
    rows = [
        ("g-001", "A robot  helped\tthe  village.", ("present", first.docs[g1])),  # same id and text as run 1
        ("g-004", "A new text for an old id.", ("bad", EXISTING_ID_CONFLICT)),
        ("q-new-1", "Plain  " + first.docs[id_doc_id(SOURCE, "p-0001")][len("Plain "):], ("dup", None)),
        ("q-miss", None, ("bad", MISSING_TEXT)),
        ("q-empty", " \u200b\t ", ("bad", EMPTY_TEXT)),
        ("q-large", "w" * (MAX_CHARS + 5), ("bad", TOO_LARGE)),
        ("q-000", texts[0], ("dup", None)),  # exact repeat inside the file
        ("q-001", "Another text for q-001.", ("bad", DUPLICATE_ID_CONFLICT)),
        ("q-ctl", "Tab\tand\u0000nul.", ("doc", "Tab andnul.")),
    ]
    for rid, text, fate in rows:
        ids.append(rid)
        texts.append(text)
        fates.append(fate)
    order = list(range(len(ids)))
    head = order[:40]
    rng.shuffle(head)
    order = head + order[40:]  # the rows above stay after the good ones they refer to
    a_path = str(root / "a_rows.parquet")
    table = pa.table({
        "id": pa.array([ids[k] for k in order], pa.string()),
        "text": pa.array([texts[k] for k in order], pa.string()),
        "source": pa.array([SOURCE] * len(order), pa.string()),
        "year": pa.array([2000 + k for k in order], pa.int64()),
    })
    add_file(Path(a_path), table)
    for position, k in enumerate(order):
        kind, value = fates[k]
        doc_id = id_doc_id(SOURCE, ids[k])
        if kind == "doc":
            corpus.docs[doc_id] = value
        elif kind == "present":
            corpus.present[doc_id] = value
        elif kind == "dup":
            corpus.duplicates += 1
        else:
            corpus.bad.append(BadRecord(a_path, position, value, f"row {ids[k]}"))
    # b_float_ids.parquet: an id column of floats: every row is an invalid id.
    b_path = add_file(root / "b_float_ids.parquet", pa.table({
        "id": pa.array([1.5, 2.5, 3.5]), "text": ["float id one", "float id two", "float id three"]}))
    corpus.bad += [BadRecord(b_path, i, BAD_ID, "float id") for i in range(3)]
    # c_no_text.parquet: no text column at all.
    c_path = add_file(root / "c_no_text.parquet", pa.table({"id": ["c1"], "body": ["wrong column"]}))
    corpus.bad.append(BadRecord(c_path, -1, WRONG_SCHEMA, "no text column"))
    # d_int_text.parquet: text column of integers.
    d_path = add_file(root / "d_int_text.parquet", pa.table({"id": ["d1", "d2"], "text": pa.array([1, 2], pa.int64())}))
    corpus.bad.append(BadRecord(d_path, -1, WRONG_SCHEMA, "integer text column"))
    # e_zero.parquet: zero bytes.
    e_path = add_file(root / "e_zero.parquet", b"")
    corpus.bad.append(BadRecord(e_path, 0, EMPTY_FILE, "zero-byte Parquet"))
    # f_no_rows.parquet: right schema, no rows.
    f_path = add_file(root / "f_no_rows.parquet", pa.table({"id": pa.array([], pa.string()),
                                                            "text": pa.array([], pa.string())}))
    corpus.bad.append(BadRecord(f_path, 0, EMPTY_FILE, "Parquet without rows"))
    # g_garbage.parquet: random bytes.
    g_path = add_file(root / "g_garbage.parquet", bytes(rng.randrange(256) for _ in range(2048)))
    corpus.bad.append(BadRecord(g_path, -1, UNREADABLE_FILE, "random bytes"))
    # h_cut.parquet: a real Parquet file cut in half (its footer is gone).
    full = root / "full.tmp"
    pq.write_table(pa.table({"id": [f"h{i}" for i in range(500)], "text": [f"cut parquet row {i}" for i in range(500)]}),
                   full, row_group_size=50)
    data = full.read_bytes()
    full.unlink()
    h_path = add_file(root / "h_cut.parquet", data[: len(data) // 2])
    corpus.bad.append(BadRecord(h_path, -1, UNREADABLE_FILE, "truncated Parquet"))
    corpus.files.sort()
    return corpus

"""Read raw input splits and turn every record into a document row or a quarantine row.

Runs inside Spark's Python workers (``mapInArrow`` over a DataFrame of splits planned on the
driver) and imports no Spark. Every record read produces exactly one output row, either
``status="ok"`` with a normalised document, or ``status="quarantine"`` with a reason from
:class:`counterweight.columns.Reason`, the raw payload and where it came from. A problem with a
whole file (unreadable, truncated gzip, wrong Parquet schema, zero bytes) produces one quarantine
row for the file, after any records that could be read before it.

Splits: plain JSONL files are read in byte ranges; a line belongs to the split holding its first
byte. Compressed files, Parquet files and text files are read whole (streamed).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import zlib
from dataclasses import dataclass
from typing import Iterator, Optional

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from counterweight import columns as C
from counterweight.columns import Reason
from udfs.text import make_doc_id, normalize_text, text_hash

STATUS = "status"
OK = "ok"
QUARANTINE = "quarantine"

# One schema for both outcomes; the driver splits them.
PARSED_SCHEMA = pa.schema(
    [
        pa.field(STATUS, pa.string()),
        pa.field(C.DOC_ID, pa.string()),
        pa.field(C.SOURCE_ID, pa.string()),
        pa.field(C.SOURCE, pa.string()),
        pa.field(C.TEXT, pa.string()),
        pa.field(C.TEXT_HASH, pa.string()),
        pa.field(C.N_CHARS, pa.int64()),
        pa.field(C.METADATA, pa.map_(pa.string(), pa.string())),
        pa.field(C.INPUT_FILE, pa.string()),
        pa.field(C.RECORD_POSITION, pa.int64()),
        pa.field(C.REASON, pa.string()),
        pa.field(C.DETAIL, pa.string()),
        pa.field(C.RAW, pa.string()),
        pa.field(C.RAW_BYTES, pa.int64()),
        pa.field(C.RAW_TRUNCATED, pa.bool_()),
    ]
)

SPLIT_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string()),
        pa.field("format", pa.string()),
        pa.field("start", pa.int64()),
        pa.field("length", pa.int64()),  # -1: whole file
        pa.field("base", pa.string()),  # input root, to derive relative ids for text files
    ]
)


@dataclass(frozen=True)
class ParseOptions:
    """What the parser needs from the config (plain values, picklable to executors)."""

    text_field: str
    id_field: Optional[str]
    source: Optional[str]
    source_field: Optional[str]
    max_chars: int
    raw_max_bytes: int
    batch_records: int


def open_fs(path: str):
    if path.startswith("/"):
        return pafs.LocalFileSystem(), path
    return pafs.FileSystem.from_uri(path)


def file_source_name(path: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".gz", ".jsonl", ".ndjson", ".json", ".parquet", ".txt"):
        name = name.removesuffix(suffix)
    return name or "input"


class _Rows:
    """Column buffers for one output batch."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {f.name: [] for f in PARSED_SCHEMA}

    def __len__(self) -> int:
        return len(self.cols[STATUS])

    def add(self, **values) -> None:
        for name, col in self.cols.items():
            col.append(values.get(name))

    def batch(self) -> pa.RecordBatch:
        return pa.RecordBatch.from_pydict(self.cols, schema=PARSED_SCHEMA)


class RecordParser:
    """Turns raw records of one input file into output rows."""

    def __init__(self, opts: ParseOptions, path: str):
        self.opts = opts
        self.path = path
        self.default_source = opts.source or file_source_name(path)

    # -- quarantine ----------------------------------------------------------------------
    def quarantine(self, rows: _Rows, reason: str, detail: str, raw, position: int, source=None,
                   source_id=None, doc_id=None) -> None:
        if isinstance(raw, (bytes, bytearray)):
            raw_bytes = len(raw)
            kept = bytes(raw[: self.opts.raw_max_bytes]).decode("utf-8", errors="backslashreplace")
        elif raw is None:
            raw_bytes, kept = 0, None
        else:
            encoded = str(raw).encode("utf-8", errors="backslashreplace")
            raw_bytes = len(encoded)
            kept = encoded[: self.opts.raw_max_bytes].decode("utf-8", errors="ignore")
        rows.add(
            status=QUARANTINE, reason=reason, detail=detail, raw=kept, raw_bytes=raw_bytes,
            raw_truncated=raw_bytes > self.opts.raw_max_bytes, input_file=self.path, record_position=position,
            source=source or self.default_source, source_id=source_id, doc_id=doc_id,
        )

    def file_problem(self, rows: _Rows, reason: str, detail: str, position: int = -1) -> None:
        self.quarantine(rows, reason, f"{self.path}: {detail}", None, position)

    # -- documents -----------------------------------------------------------------------
    def document(self, rows: _Rows, text, source_id, source, metadata, position: int, raw) -> None:
        """Validate one record's fields and add either a document or a quarantine row."""
        if text is None:
            return self.quarantine(rows, Reason.MISSING_TEXT, f"no '{self.opts.text_field}' field", raw, position,
                                   source, source_id)
        if not isinstance(text, str):
            return self.quarantine(
                rows, Reason.NON_STRING_TEXT, f"'{self.opts.text_field}' is {type(text).__name__}, expected a string",
                raw, position, source, source_id,
            )
        if len(text) > self.opts.max_chars:
            return self.quarantine(
                rows, Reason.TOO_LARGE, f"text has {len(text)} characters; ingest.max_chars is {self.opts.max_chars}",
                raw, position, source, source_id,
            )
        normalized = normalize_text(text)
        if not normalized:
            return self.quarantine(rows, Reason.EMPTY_TEXT, "text is empty after normalisation", raw, position,
                                   source, source_id)
        rows.add(
            status=OK, doc_id=make_doc_id(source, source_id, normalized), source_id=source_id, source=source,
            text=normalized, text_hash=text_hash(normalized), n_chars=len(normalized),
            metadata=list(metadata.items()) if metadata else None, input_file=self.path, record_position=position,
        )

    def record_fields(self, record: dict, rows: _Rows, position: int, raw) -> None:
        """Split a JSON object / Parquet row into text, id, source and metadata."""
        opts = self.opts
        text = _get(record, opts.text_field)
        source = opts.source
        if source is None and opts.source_field:
            value = record.get(opts.source_field)
            source = value if isinstance(value, str) and value else None
        source = source or self.default_source
        source_id = None
        if opts.id_field:
            value = _get(record, opts.id_field)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
                    return self.quarantine(
                        rows, Reason.BAD_ID,
                        f"'{opts.id_field}' is {value!r} ({type(value).__name__}); expected a non-empty string or integer",
                        raw, position, source,
                    )
                source_id = str(value)
        skip = {opts.text_field.split(".")[0], opts.id_field, opts.source_field}
        metadata = {
            k: (v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str))
            for k, v in record.items() if k not in skip
        }
        self.document(rows, text, source_id, source, metadata, position, raw)


def _get(record: dict, dotted: str):
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _batches(rows: _Rows, limit: int) -> Iterator[pa.RecordBatch]:
    if len(rows) >= limit:
        yield rows.batch()
        rows.__init__()


# --- JSONL ------------------------------------------------------------------------------------
def _line_limit(opts: ParseOptions) -> int:
    # A UTF-8 character is at most 4 bytes, JSON escaping can double that: beyond this a line
    # cannot hold a text within max_chars, so it is quarantined without being held whole.
    return opts.max_chars * 8 + 65_536


def _iter_lines(stream, start: int, end: Optional[int], limit: int) -> Iterator[tuple[int, bytes, bool]]:
    """Yield (offset, line bytes without newline, complete) for lines starting in [start, end)."""
    pos = start
    while end is None or pos < end:
        line = stream.readline(limit)
        if not line:
            return
        line_start = pos
        pos += len(line)
        complete = True
        if not line.endswith(b"\n") and len(line) >= limit:
            complete = False
            while True:  # skip the rest of an oversized line without holding it
                rest = stream.readline(1 << 20)
                pos += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line_start, line.rstrip(b"\r\n"), complete


def parse_jsonl(split: dict, opts: ParseOptions) -> Iterator[pa.RecordBatch]:
    path = split["path"]
    parser = RecordParser(opts, path)
    rows = _Rows()
    compressed = path.endswith(".gz")
    try:
        fs, fs_path = open_fs(path)
        raw_stream = fs.open_input_file(fs_path)
    except Exception as exc:  # noqa: BLE001 - any open failure is this file's problem
        parser.file_problem(rows, Reason.UNREADABLE_FILE, f"cannot open: {exc}")
        yield rows.batch()
        return
    limit = _line_limit(opts)
    seen_any = False
    with raw_stream:
        if compressed:
            stream = _GunzipStream(raw_stream)
            start, end = 0, None
        else:
            stream = io.BufferedReader(raw_stream, buffer_size=1 << 20)
            start = split["start"]
            end = start + split["length"] if split["length"] >= 0 else None
            if start > 0:
                stream.seek(start - 1)
                skipped = stream.readline()  # the line holding byte start-1 belongs to the previous split
                start = start - 1 + len(skipped)
        try:
            for offset, line, complete in _iter_lines(stream, start, end, limit):
                if not complete:
                    seen_any = True
                    parser.quarantine(
                        rows, Reason.TOO_LARGE, f"line longer than {limit} bytes (ingest.max_chars={opts.max_chars})",
                        line, offset,
                    )
                elif line.strip():
                    seen_any = True
                    _parse_json_line(parser, rows, line, offset)
                yield from _batches(rows, opts.batch_records)
        except (EOFError, zlib.error, OSError) as exc:
            reason = Reason.TRUNCATED_FILE if isinstance(exc, EOFError) else Reason.UNREADABLE_FILE
            tail = getattr(exc, "tail", None)
            parser.quarantine(rows, reason, f"{path}: stopped reading: {exc}"
                              + (f" (unterminated last {len(tail)} bytes kept as raw)" if tail else ""), tail or None, -1)
    if not seen_any and split["start"] == 0 and not len(rows):
        parser.file_problem(rows, Reason.EMPTY_FILE, "file holds no records", 0)
    if len(rows):
        yield rows.batch()


class _GunzipStream:
    """Line reader over a (possibly multi-member) gzip stream that keeps every byte it can decode.

    ``gzip.GzipFile`` behind a buffer loses the decoded data of the block in which the file is cut
    short; here each compressed chunk is decoded as it arrives, so all complete lines before a
    truncation are returned, then EOFError says the stream ended early.
    """

    def __init__(self, raw, chunk: int = 1 << 16):
        self.raw = raw
        self.chunk = chunk
        self.decoder = zlib.decompressobj(wbits=31)
        self.buffer = bytearray()
        self.eof = False
        self.started = False

    def _fill(self) -> bool:
        while True:
            data = self.raw.read(self.chunk)
            if not data:
                if not self.started:
                    return False
                if not self.decoder.eof:
                    self.buffer += self.decoder.flush()
                    self.eof = True
                    raise _TruncatedWithData()
                return False
            self.started = True
            while data:  # decode every byte read, across member boundaries, before returning
                self.buffer += self.decoder.decompress(data)
                if self.decoder.eof:  # member finished: the rest may be another member
                    data = self.decoder.unused_data
                    self.decoder = zlib.decompressobj(wbits=31)
                    if not data:
                        self.started = False
                else:
                    data = b""
            if self.buffer:
                return True

    def readline(self, limit: int = -1) -> bytes:
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0 and (limit < 0 or end < limit):
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                return line
            if limit >= 0 and len(self.buffer) >= limit:
                line = bytes(self.buffer[:limit])
                del self.buffer[:limit]
                return line
            if self.eof:  # truncated: the unterminated tail is not a record, it goes with the error
                error = EOFError("compressed file ended before the end-of-stream marker was reached")
                error.tail = bytes(self.buffer)
                self.buffer.clear()
                raise error
            try:
                more = self._fill()
            except _TruncatedWithData:
                continue
            if not more:
                line = bytes(self.buffer)
                self.buffer.clear()
                return line


class _TruncatedWithData(Exception):
    pass


def _parse_json_line(parser: RecordParser, rows: _Rows, line: bytes, offset: int) -> None:
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return parser.quarantine(rows, Reason.INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}", line, offset)
    try:
        record = json.loads(decoded)
    except ValueError as exc:
        return parser.quarantine(rows, Reason.MALFORMED_JSON, str(exc), decoded, offset)
    if "\\ud" in decoded or "\\uD" in decoded:  # a JSON escape may hold an unpaired UTF-16 surrogate
        try:
            json.dumps(record, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            return parser.quarantine(rows, Reason.INVALID_UTF8,
                                     f"JSON escape decodes to an unpaired surrogate ({exc.reason})", decoded, offset)
    if not isinstance(record, dict):
        return parser.quarantine(rows, Reason.NOT_AN_OBJECT, f"a JSON {type(record).__name__}, expected an object",
                                 decoded, offset)
    parser.record_fields(record, rows, offset, decoded)


# --- Parquet ----------------------------------------------------------------------------------
def parse_parquet(split: dict, opts: ParseOptions) -> Iterator[pa.RecordBatch]:
    path = split["path"]
    parser = RecordParser(opts, path)
    rows = _Rows()
    try:
        fs, fs_path = open_fs(path)
        if (fs.get_file_info(fs_path).size or 0) == 0:
            parser.file_problem(rows, Reason.EMPTY_FILE, "zero-byte file", 0)
            yield rows.batch()
            return
        handle = fs.open_input_file(fs_path)
        pf = pq.ParquetFile(handle)
    except Exception as exc:  # noqa: BLE001
        parser.file_problem(rows, Reason.UNREADABLE_FILE, f"not a readable Parquet file: {exc}")
        yield rows.batch()
        return
    with handle:
        schema = pf.schema_arrow
        text_col = opts.text_field.split(".")[0]
        if text_col not in schema.names:
            parser.file_problem(rows, Reason.WRONG_SCHEMA,
                                f"no column '{text_col}' (input.text_field); columns: {', '.join(schema.names)}")
            yield rows.batch()
            return
        text_type = schema.field(text_col).type
        if pa.types.is_dictionary(text_type):
            text_type = text_type.value_type  # dictionary-encoded strings read back as plain strings
        if "." not in opts.text_field and not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
            parser.file_problem(rows, Reason.WRONG_SCHEMA, f"column '{text_col}' is {text_type}, expected string")
            yield rows.batch()
            return
        position = 0
        try:
            for batch in pf.iter_batches(batch_size=opts.batch_records):
                for record in batch.to_pylist():
                    raw = json.dumps(record, ensure_ascii=False, default=str)
                    parser.record_fields(record, rows, position, raw)
                    position += 1
                    yield from _batches(rows, opts.batch_records)
        except Exception as exc:  # noqa: BLE001 - a corrupt row group ends this file
            parser.file_problem(rows, Reason.UNREADABLE_FILE, f"stopped at row {position}: {exc}", position)
        if position == 0 and not len(rows):
            parser.file_problem(rows, Reason.EMPTY_FILE, "file holds no rows", 0)
    if len(rows):
        yield rows.batch()


# --- text files -------------------------------------------------------------------------------
def parse_text(split: dict, opts: ParseOptions) -> Iterator[pa.RecordBatch]:
    path = split["path"]
    parser = RecordParser(opts, path)
    rows = _Rows()
    base = split.get("base") or ""
    rel = path[len(base):].lstrip("/") if base and path.startswith(base) else path.rsplit("/", 1)[-1]
    source = opts.source or file_source_name(base or path)
    try:
        fs, fs_path = open_fs(path)
        size = fs.get_file_info(fs_path).size or 0
        limit = _line_limit(opts)
        with fs.open_input_file(fs_path) as handle:
            data = handle.read(min(size, limit) + 1)
    except Exception as exc:  # noqa: BLE001
        parser.file_problem(rows, Reason.UNREADABLE_FILE, f"cannot read: {exc}")
        yield rows.batch()
        return
    if not data:
        parser.file_problem(rows, Reason.EMPTY_FILE, "zero-byte file", 0)
    elif len(data) > limit:
        parser.quarantine(rows, Reason.TOO_LARGE, f"file has {size} bytes; ingest.max_chars is {opts.max_chars}",
                          data, 0, source, rel)
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            parser.quarantine(rows, Reason.INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}", data, 0, source, rel)
        else:
            parser.document(rows, text, rel, source, {}, 0, text)
    yield rows.batch()


PARSERS = {"jsonl": parse_jsonl, "parquet": parse_parquet, "text": parse_text}


def not_a_regular_file(path: str) -> str | None:
    """Why a local input path cannot be read as a file (without opening it: a FIFO would block), or None."""
    if not path.startswith("/"):
        return None
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return f"dangling symlink: its target {os.readlink(path)} does not exist"
        return "file disappeared after it was listed"
    except OSError as exc:
        return f"cannot stat: {exc}"
    if stat.S_ISREG(mode):
        return None
    kind = "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device or special file"
    return f"not a regular file ({kind})"


def parse_splits(batches: Iterator[pa.RecordBatch], opts: ParseOptions) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` function: splits in, parsed rows out."""
    for batch in batches:
        for split in batch.to_pylist():
            problem = not_a_regular_file(split["path"])
            if problem:
                rows = _Rows()
                RecordParser(opts, split["path"]).file_problem(rows, Reason.UNREADABLE_FILE, problem)
                yield rows.batch()
                continue
            for out in PARSERS[split["format"]](split, opts):
                if out.num_rows:
                    yield out

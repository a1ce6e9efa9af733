"""One home for table names, column names and table schemas.

Every module imports names from here; no other module spells a column name as a string literal
that it does not take from this file. Schemas are Arrow schemas (Spark schemas are derived from
them), so executor code can use them without importing Spark.
"""

from __future__ import annotations

import pyarrow as pa

# --- tables (each lives at <lake.root>/<table>) -------------------------------------------------
DOCUMENTS = "documents"
QUARANTINE = "quarantine"
LABELS = "labels"
MIX = "mix"
MIX_REPORT = "mix_report"

TIMESTAMP = pa.timestamp("us", tz="UTC")  # timezone-aware: keeps Delta tables at reader version 1

# --- shared columns -----------------------------------------------------------------------------
DOC_ID = "doc_id"
RUN_ID = "run_id"
TEXT = "text"
TEXT_HASH = "text_hash"
SOURCE = "source"

# --- documents -------------------------------------------------------------------------------
SOURCE_ID = "source_id"
N_CHARS = "n_chars"
METADATA = "metadata"
INPUT_FILE = "input_file"
RECORD_POSITION = "record_position"  # byte offset of the line (JSONL, decompressed), row index (Parquet), 0 (text)
INGESTED_AT = "ingested_at"

DOCUMENTS_SCHEMA = pa.schema(
    [
        pa.field(DOC_ID, pa.string(), nullable=False),
        pa.field(SOURCE_ID, pa.string()),
        pa.field(SOURCE, pa.string(), nullable=False),
        pa.field(TEXT, pa.string(), nullable=False),
        pa.field(TEXT_HASH, pa.string(), nullable=False),
        pa.field(N_CHARS, pa.int64(), nullable=False),
        pa.field(METADATA, pa.map_(pa.string(), pa.string())),
        pa.field(INPUT_FILE, pa.string()),
        pa.field(RECORD_POSITION, pa.int64()),
        pa.field(INGESTED_AT, TIMESTAMP, nullable=False),
        pa.field(RUN_ID, pa.string(), nullable=False),
    ]
)

# --- quarantine ------------------------------------------------------------------------------
REASON = "reason"
DETAIL = "detail"
RAW = "raw"
RAW_BYTES = "raw_bytes"
RAW_TRUNCATED = "raw_truncated"
QUARANTINED_AT = "quarantined_at"

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field(REASON, pa.string(), nullable=False),
        pa.field(DETAIL, pa.string()),
        pa.field(RAW, pa.string()),
        pa.field(RAW_BYTES, pa.int64()),
        pa.field(RAW_TRUNCATED, pa.bool_()),
        pa.field(SOURCE, pa.string()),
        pa.field(SOURCE_ID, pa.string()),
        pa.field(DOC_ID, pa.string()),
        pa.field(INPUT_FILE, pa.string()),
        pa.field(RECORD_POSITION, pa.int64()),
        pa.field(QUARANTINED_AT, TIMESTAMP, nullable=False),
        pa.field(RUN_ID, pa.string(), nullable=False),
    ]
)

# Quarantine reasons: a closed vocabulary, so counts by reason are meaningful across runs.
class Reason:
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

    ALL = (
        MALFORMED_JSON, NOT_AN_OBJECT, INVALID_UTF8, MISSING_TEXT, NON_STRING_TEXT, EMPTY_TEXT,
        TOO_LARGE, BAD_ID, DUPLICATE_ID_CONFLICT, EXISTING_ID_CONFLICT, UNREADABLE_FILE,
        TRUNCATED_FILE, WRONG_SCHEMA, EMPTY_FILE,
    )

# --- labels ----------------------------------------------------------------------------------
# Probability columns are p_<label> for every topic and stance label (p_ai_fiction, p_villain...).
TOPIC = "topic"
TOPIC_SCORE = "topic_score"
STANCE = "stance"
STANCE_SCORE = "stance_score"
N_CHUNKS = "n_chunks"  # windows the document was scored in
TOPIC_MODEL = "topic_model"  # sha256 of the model file
STANCE_MODEL = "stance_model"
LABELED_AT = "labeled_at"

# --- mix -------------------------------------------------------------------------------------
MIX_NAME = "mix_name"
BUCKET = "bucket"
WEIGHT = "weight"  # the bucket's final weight (a multiplier on its documents' tokens)
REPEATS = "repeats"  # whole copies of the document in the mix (0: left out)
TOKENS = "tokens"  # tokens of the text as emitted
PAIR_ID = "pair_id"
PAIR_DOC_ID = "pair_doc_id"  # the aligned document placed next to this one

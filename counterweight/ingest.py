"""Ingest: raw text files -> ``documents`` + ``quarantine``.

Every record read ends in exactly one place, and the run proves it::

    read = documents (new + already in the table) + quarantined + duplicates_removed

* ``new``: written to ``documents`` in this run's commit.
* ``already_present``: the same doc_id with the same text is already in ``documents`` (a re-run).
* ``quarantined``: bad records, each with a reason (``columns.Reason``) and its raw payload.
* ``duplicates_removed``: exact repeats (same id and text, or with ``ingest.dedup`` the same
  normalised text under another id) of a record kept earlier in input order.

The reconciliation is printed, stored in both commits' metadata, and a mismatch fails the run
before anything is committed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from counterweight import columns as C
from counterweight.columns import Reason
from counterweight.config import OnConflict
from counterweight.errors import BadInputError, ReconciliationError
from counterweight.progress import stage
from counterweight.sources import list_input_files, plan_splits
from udfs import raw_input
from udfs.raw_input import OK, PARSED_SCHEMA, SPLIT_SCHEMA, STATUS, ParseOptions

log = logging.getLogger(__name__)

DISPOSITION = "_disposition"
NEW, PRESENT, DUPLICATE, QUARANTINED = "new", "already_present", "duplicate", "quarantined"
_ORDER = "_order"
QUARANTINE_KEY = [C.INPUT_FILE, C.RECORD_POSITION, C.REASON]


def parse_input(spark, cfg):
    """DataFrame of parsed records (PARSED_SCHEMA): one row per record read or file problem."""
    from pyspark.sql.pandas.types import from_arrow_schema

    base, files = list_input_files(cfg.input.path, cfg.input.format.value)
    splits = plan_splits(files, cfg.input.format.value, base, cfg.ingest.split_bytes)
    log.info("input %s: %d files, %d splits", cfg.input.path, len(files), len(splits))
    opts = ParseOptions(
        text_field=cfg.input.text_field, id_field=cfg.input.id_field, source=cfg.input.source,
        source_field=cfg.input.source_field, max_chars=cfg.ingest.max_chars,
        raw_max_bytes=cfg.ingest.quarantine_raw_max_bytes, batch_records=cfg.ingest.batch_records,
    )
    split_schema = from_arrow_schema(SPLIT_SCHEMA, prefer_timestamp_ntz=False)
    n_slices = max(1, min(len(splits), spark.sparkContext.defaultParallelism * 4))
    rows = [tuple(s[f.name] for f in SPLIT_SCHEMA) for s in splits]
    split_df = spark.createDataFrame(spark.sparkContext.parallelize(rows, n_slices), split_schema)
    out_schema = from_arrow_schema(PARSED_SCHEMA, prefer_timestamp_ntz=False)
    return split_df.mapInArrow(lambda it: raw_input.parse_splits(it, opts), out_schema), len(files)


def classify(parsed, existing, dedup: bool, on_conflict: OnConflict):
    """Add a disposition (new / already_present / duplicate / quarantined) to every parsed row.

    ``existing`` is the current documents table (doc_id, text_hash) or None. Input order
    (file path, then position) decides which of several records with one id or text is kept.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ok = F.col(STATUS) == OK
    df = parsed.withColumn(_ORDER, F.struct(F.col(C.INPUT_FILE), F.col(C.RECORD_POSITION)))
    by_id = Window.partitionBy(C.DOC_ID).orderBy(_ORDER)
    first_hash = F.first(C.TEXT_HASH).over(by_id)
    first_at = F.first(_ORDER).over(by_id)
    rank_id = F.row_number().over(by_id)
    df = (
        df.withColumn("_rank_id", F.when(ok, rank_id))
        .withColumn("_first_hash", F.when(ok, first_hash))
        .withColumn("_first_at", F.when(ok, first_at))
    )
    conflict_id = ok & (F.col("_rank_id") > 1) & (F.col(C.TEXT_HASH) != F.col("_first_hash"))
    repeat_id = ok & (F.col("_rank_id") > 1) & (F.col(C.TEXT_HASH) == F.col("_first_hash"))
    if dedup:
        # Rank texts only among the records that are kept by id (a quarantined id conflict must not
        # make a later, valid record with the same text look like a repeat).
        kept = ok & (F.col("_rank_id") == 1)
        df = df.withColumn("_kept", kept)
        by_text = Window.partitionBy(C.TEXT_HASH, "_kept").orderBy(_ORDER)
        df = df.withColumn("_rank_text", F.when(F.col("_kept"), F.row_number().over(by_text)))
        repeat_text = F.col("_kept") & (F.col("_rank_text") > 1)
    else:
        repeat_text = F.lit(False)
    if existing is not None:
        ex = existing.select(F.col(C.DOC_ID).alias("_ex_id"), F.col(C.TEXT_HASH).alias("_ex_hash"))
        df = df.join(ex, df[C.DOC_ID] == ex["_ex_id"], "left")
        present = F.col("_ex_id").isNotNull() & (F.col(C.TEXT_HASH) == F.col("_ex_hash"))
        clash = F.col("_ex_id").isNotNull() & (F.col(C.TEXT_HASH) != F.col("_ex_hash"))
        if dedup:
            hashes = existing.select(F.col(C.TEXT_HASH).alias("_ex_text")).distinct()
            df = df.join(hashes, df[C.TEXT_HASH] == hashes["_ex_text"], "left")
            repeat_text = repeat_text | (F.col("_ex_id").isNull() & F.col("_ex_text").isNotNull())
        if on_conflict == OnConflict.update:
            clash = F.lit(False)
    else:
        present = clash = F.lit(False)
    disposition = (
        F.when(~ok, F.lit(QUARANTINED))
        .when(conflict_id, F.lit(QUARANTINED))
        .when(repeat_id, F.lit(DUPLICATE))
        .when(ok & clash, F.lit(QUARANTINED))
        .when(ok & present, F.lit(PRESENT))
        .when(repeat_text, F.lit(DUPLICATE))
        .otherwise(F.lit(NEW))
    )
    first_at_text = F.concat_ws(":", F.col("_first_at").getField(C.INPUT_FILE),
                                F.col("_first_at").getField(C.RECORD_POSITION).cast("string"))
    reason = (
        F.when(~ok, F.col(C.REASON))
        .when(conflict_id, F.lit(Reason.DUPLICATE_ID_CONFLICT))
        .when(ok & clash, F.lit(Reason.EXISTING_ID_CONFLICT))
    )
    detail = (
        F.when(~ok, F.col(C.DETAIL))
        .when(conflict_id, F.concat(F.lit("doc_id "), F.col(C.DOC_ID), F.lit(" (source id "),
                                    F.coalesce(F.col(C.SOURCE_ID), F.lit("-")),
                                    F.lit(") first seen at "), first_at_text, F.lit(" with different text")))
        .when(ok & clash, F.concat(F.lit("doc_id "), F.col(C.DOC_ID),
                                   F.lit(" is already in documents with different text (ingest.on_conflict=quarantine)")))
    )
    # The raw payload is kept for quarantine rows only: a copy of every document's text would double
    # what the job caches.
    held = ok & (conflict_id | clash)
    raw = F.when(~ok, F.col(C.RAW)).when(held, F.col(C.TEXT))
    raw_bytes = F.when(~ok, F.col(C.RAW_BYTES)).when(held, F.length(F.encode(F.col(C.TEXT), "UTF-8")).cast("long"))
    return (
        df.withColumn(DISPOSITION, disposition)
        .withColumn(C.REASON, reason)
        .withColumn(C.DETAIL, detail)
        .withColumn(C.RAW, raw)
        .withColumn(C.RAW_BYTES, raw_bytes)
        .withColumn(C.RAW_TRUNCATED, F.coalesce(F.col(C.RAW_TRUNCATED), F.lit(False)))
    )


def run(ctx) -> dict:
    """Ingest ``cfg.input`` into the lake. Returns the reconciliation counts."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    cfg, spark, lake = ctx.cfg, ctx.spark, ctx.lake
    now = datetime.now(timezone.utc)
    with stage("ingest: read and parse") as st:
        parsed, n_files = parse_input(spark, cfg)
        existing = None
        base_version = None
        if lake.exists(C.DOCUMENTS):
            existing = lake.read(C.DOCUMENTS).select(C.DOC_ID, C.TEXT_HASH)
            base_version = lake.lineage.input_versions[C.DOCUMENTS]
        classified = classify(parsed, existing, cfg.ingest.dedup, cfg.ingest.on_conflict)
        classified = classified.persist(StorageLevel.DISK_ONLY)
        counts = {row[0]: row[1] for row in classified.groupBy(DISPOSITION).count().collect()}
        read = sum(counts.values())
        st.rows = read
    by_reason = {
        row[0]: row[1]
        for row in classified.where(F.col(DISPOSITION) == QUARANTINED).groupBy(C.REASON).count().collect()
    }
    if cfg.input.strict:
        file_level = {Reason.UNREADABLE_FILE, Reason.TRUNCATED_FILE, Reason.WRONG_SCHEMA}
        bad_files = (
            classified.where(F.col(C.REASON).isin(*file_level)).select(C.INPUT_FILE, C.REASON, C.DETAIL).limit(5).collect()
        )
        if bad_files:
            listing = "; ".join(f"{r[0]} ({r[1]}: {r[2]})" for r in bad_files)
            raise BadInputError(f"input.strict=true and input files could not be read: {listing}")

    new_docs = classified.where(F.col(DISPOSITION) == NEW).select(
        C.DOC_ID, C.SOURCE_ID, C.SOURCE, C.TEXT, C.TEXT_HASH, C.N_CHARS, C.METADATA, C.INPUT_FILE,
        C.RECORD_POSITION, F.lit(now).alias(C.INGESTED_AT), F.lit(ctx.run_id).alias(C.RUN_ID),
    )
    quarantine = classified.where(F.col(DISPOSITION) == QUARANTINED).select(
        *[F.col(f.name) for f in C.QUARANTINE_SCHEMA if f.name not in (C.QUARANTINED_AT, C.RUN_ID)],
        F.lit(now).alias(C.QUARANTINED_AT), F.lit(ctx.run_id).alias(C.RUN_ID),
    )
    summary = {
        "files": n_files,
        "read": read,
        "documents": counts.get(NEW, 0) + counts.get(PRESENT, 0),
        "new": counts.get(NEW, 0),
        "already_present": counts.get(PRESENT, 0),
        "quarantined": counts.get(QUARANTINED, 0),
        "duplicates_removed": counts.get(DUPLICATE, 0),
        "quarantine_reasons": dict(sorted(by_reason.items())),
    }
    if summary["read"] != summary["documents"] + summary["quarantined"] + summary["duplicates_removed"]:
        raise ReconciliationError(f"ingest counts do not reconcile: {summary}")

    with stage("ingest: write documents") as st:
        if cfg.ingest.on_conflict == OnConflict.update and existing is not None:
            result = lake.merge(C.DOCUMENTS, new_docs, [C.DOC_ID], extra={"ingest": summary})
        else:
            result = lake.append(C.DOCUMENTS, new_docs, extra={"ingest": summary}, expect_version=base_version)
        st.rows = result.rows
    if result.rows != summary["new"]:
        raise ReconciliationError(
            f"documents commit wrote {result.rows} rows but {summary['new']} new documents were counted"
        )
    with stage("ingest: write quarantine") as st:
        q_result = lake.merge(C.QUARANTINE, quarantine, QUARANTINE_KEY, when_matched="ignore", extra={"ingest": summary})
        st.rows = q_result.rows
    classified.unpersist()
    summary["documents_version"] = result.version
    summary["quarantine_version"] = q_result.version
    print(
        f"ingest reconciliation: read {read} = documents {summary['documents']} "
        f"(new {summary['new']}, already present {summary['already_present']}) + quarantined "
        f"{summary['quarantined']} + duplicates removed {summary['duplicates_removed']}"
    )
    if by_reason:
        print("quarantine reasons: " + ", ".join(f"{k}={v}" for k, v in sorted(by_reason.items())))
    return summary

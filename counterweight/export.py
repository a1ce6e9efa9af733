"""Export: materialise a mix into training shards plus a manifest.

    .venv/bin/spark-submit jobs/export.py mix.name=bal3 export.path=exports/bal3 export.format=jsonl

* Repeats are expanded: a row with ``repeats = 3`` becomes three records (``copy`` 0, 1, 2).
* Pairs stay adjacent: a paired villain record is followed by its aligned partner's text.
* The order is a deterministic global shuffle: each record's key is
  u = sha256(doc_id, seed, "shuffle:<copy>"); its shard is floor(u x shards) and records are
  sorted by u inside the shard, so shard contents do not depend on Spark's partitioning.
* ``manifest.json`` lists every file with its record and token counts, the totals, and the mix
  table version it came from; its token total equals sum(repeats x tokens) plus paired partners.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from counterweight import columns as C
from counterweight.errors import BadInputError, ReconciliationError
from counterweight.progress import stage

COPY = "copy"
SHARD = "shard"
RECORD_TYPE = "record_type"  # document | pair_partner


def run(ctx) -> dict:
    from pyspark.sql import functions as F

    from counterweight.mix import unit_hash_col

    cfg, spark, lake = ctx.cfg, ctx.spark, ctx.lake
    mix_name = cfg.mix.name
    lake.require(C.MIX)
    version = cfg.export.mix_version
    out_dir = os.path.abspath(cfg.export.path or os.path.join("exports", mix_name))
    with stage("export: expand and shuffle") as st:
        mix = lake.read(C.MIX, version=version).where(F.col(C.MIX_NAME) == mix_name)
        read_version = lake.lineage.input_versions[C.MIX]
        kept = mix.where(F.col(C.REPEATS) > 0)
        counts = kept.agg(F.count("*").alias("rows"), F.sum(C.REPEATS).alias("records"),
                          F.sum(F.col(C.REPEATS) * F.col(C.TOKENS)).alias("tokens")).collect()[0]
        if not counts["rows"]:
            raise BadInputError(f"mix '{mix_name}' has no documents with repeats > 0 in table version {read_version}")
        partners = mix.select(F.col(C.DOC_ID).alias("_pid"), F.col(C.TEXT).alias("_ptext"),
                              F.col(C.TOKENS).alias("_ptokens"), F.col(C.BUCKET).alias("_pbucket"))
        units = kept.join(partners, kept[C.PAIR_DOC_ID] == partners["_pid"], "left")
        units = units.withColumn(COPY, F.explode(F.sequence(F.lit(0), F.col(C.REPEATS) - 1)))
        seed = cfg.export.seed
        units = units.withColumn("_u", unit_hash_col(F.concat_ws(":", F.col(C.DOC_ID), F.col(COPY).cast("string")),
                                                     seed, "shuffle"))
        n_records = int(counts["records"])
        n_shards = max(1, math.ceil(n_records / cfg.export.shard_records))
        units = units.withColumn(SHARD, F.least(F.floor(F.col("_u") * n_shards).cast("int"), F.lit(n_shards - 1)))
        doc = F.struct(F.lit("document").alias(RECORD_TYPE), F.col(C.DOC_ID).alias(C.DOC_ID),
                       F.col(C.BUCKET).alias(C.BUCKET), F.col(C.TEXT).alias(C.TEXT),
                       F.col(C.TOKENS).alias(C.TOKENS), F.col(C.PAIR_ID).alias(C.PAIR_ID), F.lit(0).alias("_pos"))
        partner = F.struct(F.lit("pair_partner").alias(RECORD_TYPE), F.col("_pid").alias(C.DOC_ID),
                           F.col("_pbucket").alias(C.BUCKET), F.col("_ptext").alias(C.TEXT),
                           F.col("_ptokens").alias(C.TOKENS), F.col(C.PAIR_ID).alias(C.PAIR_ID), F.lit(1).alias("_pos"))
        records = units.select(
            SHARD, "_u", COPY, F.col(C.DOC_ID).alias("_unit"),
            F.explode(F.when(F.col("_pid").isNotNull(), F.array(doc, partner)).otherwise(F.array(doc))).alias("r"),
        ).select(SHARD, "_u", COPY, "_unit", "r.*")
        # Sort by the unit (the villain's id), so a partner always follows its own villain record.
        records = (records.repartition(n_shards, SHARD)
                   .sortWithinPartitions(SHARD, "_u", "_unit", COPY, "_pos")
                   .select(SHARD, C.DOC_ID, COPY, RECORD_TYPE, C.BUCKET, C.PAIR_ID, C.TOKENS, C.TEXT))
        st.rows = n_records
    with stage("export: write shards") as st:
        staging = out_dir + ".staging"
        shutil.rmtree(staging, ignore_errors=True)
        writer = records.write.partitionBy(SHARD).mode("overwrite")
        if cfg.export.format.value == "jsonl":
            writer.option("compression", "gzip").json(staging)
            suffix = ".jsonl.gz"
        else:
            writer.option("compression", "zstd").parquet(staging)
            suffix = ".parquet"
        files = _collect_shards(staging, out_dir, suffix, cfg.export.format.value)
        st.rows = sum(f["records"] for f in files)
    total_records = sum(f["records"] for f in files)
    total_tokens = sum(f["tokens"] for f in files)
    documents = sum(f["documents"] for f in files)
    if documents != n_records:
        raise ReconciliationError(f"export wrote {documents} document records, the mix has {n_records} repeats")
    manifest = {
        "mix_name": mix_name,
        "mix_table": lake.path(C.MIX),
        "mix_version": read_version,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_id": ctx.run_id,
        "format": cfg.export.format.value,
        "seed": seed,
        "shards": len(files),
        "records": total_records,
        "document_records": documents,
        "pair_partner_records": total_records - documents,
        "documents": int(counts["rows"]),
        "tokens": total_tokens,
        "mix_tokens": int(counts["tokens"]),
        "files": files,
    }
    Path(out_dir, "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"[counterweight] exported mix '{mix_name}' v{read_version}: {total_records:,} records, {total_tokens:,} "
          f"tokens in {len(files)} shards under {out_dir}")
    return {k: v for k, v in manifest.items() if k != "files"}


def _collect_shards(staging: str, out_dir: str, suffix: str, fmt: str) -> list[dict]:
    """Move Spark's shard=<n>/part-* files to <out_dir>/shard-<n><suffix> and count them."""
    import gzip

    import pyarrow.parquet as pq

    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    files = []
    for shard_dir in sorted(Path(staging).glob(f"{SHARD}=*"), key=lambda p: int(p.name.split("=")[1])):
        parts = sorted(p for p in shard_dir.iterdir() if p.name.startswith("part-"))
        if len(parts) != 1:
            raise ReconciliationError(f"expected one file in {shard_dir}, found {len(parts)}")
        index = int(shard_dir.name.split("=")[1])
        target = Path(out_dir, f"shard-{index:05d}{suffix}")
        shutil.move(str(parts[0]), target)
        records = tokens = documents = 0
        if fmt == "jsonl":
            with gzip.open(target, "rt", encoding="utf-8") as handle:
                for line in handle:
                    row = json.loads(line)
                    records += 1
                    tokens += int(row[C.TOKENS])
                    documents += row[RECORD_TYPE] == "document"
        else:
            table = pq.read_table(target, columns=[C.TOKENS, RECORD_TYPE])
            records = table.num_rows
            tokens = int(sum(table.column(C.TOKENS).to_pylist()))
            documents = sum(1 for t in table.column(RECORD_TYPE).to_pylist() if t == "document")
        files.append({"path": target.name, "records": records, "documents": documents, "tokens": tokens,
                      "bytes": target.stat().st_size})
    shutil.rmtree(staging, ignore_errors=True)
    return files

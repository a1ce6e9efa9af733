"""Delta Lake I/O: the one module that reads and writes tables.

Two engines produce the same Delta protocol (reader version 1, writer version 2):

* **delta-spark**, when the Delta Lake jars are on Spark's classpath (Databricks, EMR, or
  ``spark-submit --packages io.delta:delta-spark_2.13:4.4.1``): Spark writes and commits.
* **delta-rs** otherwise (no Maven access here): executors write Parquet files into a run-private
  directory inside the table; the driver lists them, builds ``add`` (and ``remove``) actions and
  commits them with the ``deltalake`` library as ONE transaction. Data is invisible until that
  commit; a crash before it leaves only unreferenced files, which ``maintain`` vacuums.

Every commit carries the run's lineage in its commitInfo: job, run id, resolved-config hash,
input table versions (what this run read), package version, plus job-specific facts (counts).

Commits to one table are serialised with a lock file under ``<lake.root>/_locks`` and checked
against the version the write was planned on: if another writer committed in between, a
non-blind write (overwrite, merge, replace) raises :class:`ConflictError` rather than silently
overwriting it. Blind appends are safe to interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

import counterweight
from counterweight.errors import BadInputError, ConflictError, TransientError
from counterweight.session import session_conf

log = logging.getLogger(__name__)

FAULT_ENV = "COUNTERWEIGHT_FAULT_AT"  # test hook: SIGKILL this process at a named point
STAGING_PREFIX = "run-"  # data files of one run live under <table>/run-<run id>-<nonce>/
LOCK_DIR = "_locks"
_UNSET = object()


@dataclass
class CommitResult:
    table: str
    version: int  # the table version this run's commit created (or found, when skipped)
    rows: int
    files_added: int
    files_removed: int
    skipped: bool = False  # True when an identical transaction was already committed


@dataclass
class Lineage:
    """What a run records in every commit it makes."""

    job: str
    run_id: str
    config_hash: str
    input_versions: dict[str, int] = field(default_factory=dict)

    def commit_info(self, extra: Optional[dict] = None) -> dict:
        info = {
            "counterweight.job": self.job,
            "counterweight.run_id": self.run_id,
            "counterweight.config_hash": self.config_hash,
            "counterweight.input_versions": json.dumps(self.input_versions, sort_keys=True),
            "counterweight.version": counterweight.__version__,
        }
        for key, value in (extra or {}).items():
            info[f"counterweight.{key}"] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        return info


def normalize_root(root: str) -> str:
    """Absolute local path for plain paths; URIs (s3://, abfss://, file://) are kept as given."""
    parsed = urllib.parse.urlparse(root)
    if parsed.scheme == "file":
        return str(Path(urllib.parse.unquote(parsed.path)).resolve())
    if parsed.scheme and len(parsed.scheme) > 1:
        return root.rstrip("/")
    return str(Path(root).expanduser().resolve())


def spark_uri(path: str) -> str:
    """The URI Spark should use for a lake path (local paths become file:// URIs)."""
    return "file://" + path if path.startswith("/") else path  # Hadoop paths are not percent-encoded


def _is_local(path: str) -> bool:
    return path.startswith("/")


class Lake:
    """Tables under one root. One instance per job run (it accumulates the run's input versions)."""

    def __init__(self, spark, root: str, lineage: Lineage, engine: str = "auto", lock: bool = True,
                 lock_timeout_s: float = 600.0, row_group_bytes: int = 33_554_432):
        from counterweight.session import delta_spark_available

        self.spark = spark
        self.root = normalize_root(root)
        self.lineage = lineage
        self.lock_enabled = lock
        self.lock_timeout_s = lock_timeout_s
        self.row_group_bytes = row_group_bytes
        if engine == "auto":
            engine = "delta_spark" if delta_spark_available(spark) else "delta_rs"
        elif engine == "delta_spark" and not delta_spark_available(spark):
            raise BadInputError(
                "lake.engine=delta_spark but the Delta Lake jars are not on Spark's classpath; "
                "add them (spark-submit --packages io.delta:delta-spark_2.13:<version>) or use lake.engine=auto"
            )
        self.engine = engine
        if _is_local(self.root):
            if os.path.exists(self.root) and not os.path.isdir(self.root):
                raise BadInputError(f"lake.root {self.root} is a file, not a directory; give a directory for the tables")
            os.makedirs(self.root, exist_ok=True)
        log.info("lake %s (engine %s)", self.root, self.engine)

    # --- paths and metadata ---------------------------------------------------------------
    def path(self, table: str) -> str:
        return f"{self.root}/{table}"

    def _dt(self, table: str, version: Optional[int] = None):
        from deltalake import DeltaTable

        return DeltaTable(self.path(table), version=version)

    def exists(self, table: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.path(table))

    def version(self, table: str) -> Optional[int]:
        """Latest committed version, or None when the table does not exist yet."""
        return self._dt(table).version() if self.exists(table) else None

    def row_count(self, table: str, version: Optional[int] = None) -> Optional[int]:
        """Rows in ``table`` at ``version`` from the log's per-file statistics, with no Spark job;
        None when some file has no row count or deletion vectors may hide rows (count instead)."""
        dt = self._dt(table, version)
        if "deletionVectors" in (dt.protocol().reader_features or []):
            return None
        counts = [a.get("num_records") for a in _add_actions(dt)]
        return None if any(c is None for c in counts) else int(sum(counts))

    def history(self, table: str, limit: Optional[int] = None) -> list[dict]:
        return self._dt(table).history(limit)

    def require(self, table: str) -> None:
        path = self.path(table)
        if not self.exists(table):
            hint = ""
            if _is_local(path) and os.path.isdir(path):
                hint = " (the directory exists but has no _delta_log: it is not a Delta table)"
            raise BadInputError(f"table '{table}' not found at {path}{hint}; run the job that writes it first")

    # --- reads ----------------------------------------------------------------------------
    def read(self, table: str, version: Optional[int] = None, track: bool = True):
        """Read a table (optionally as of ``version``) through its Delta log, never a directory listing.

        The version read is recorded in this run's lineage (``track=False`` to skip, e.g. for the
        table being written).
        """
        self.require(table)
        if self.engine == "delta_spark":
            reader = self.spark.read.format("delta")
            if version is not None:
                reader = reader.option("versionAsOf", version)
            df = reader.load(spark_uri(self.path(table)))
            read_version = version if version is not None else self._dt(table).version()
        else:
            dt = self._dt(table, version)
            read_version = dt.version()
            df = self._read_files(dt, table)
        if track:
            self.lineage.input_versions[table] = read_version
        return df

    def _read_files(self, dt, table: str):
        """Build a DataFrame from the snapshot's add actions, grouped by partition values."""
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        arrow_schema = _table_arrow_schema(dt)
        schema = from_arrow_schema(arrow_schema, prefer_timestamp_ntz=False)
        partition_cols = list(dt.metadata().partition_columns)
        data_schema = schema.__class__([f for f in schema.fields if f.name not in partition_cols])
        actions = _add_actions(dt)
        if not actions:
            return self.spark.createDataFrame([], schema)
        groups: dict[tuple, list[str]] = {}
        for action in actions:
            key = tuple(action.get(f"partition.{c}") for c in partition_cols)
            groups.setdefault(key, []).append(self._file_uri(table, action["path"]))
        frames = []
        # Spark lists more than spark.sql.sources.parallelPartitionDiscovery.threshold (32) paths
        # with a Spark job; the files of a local table are cheaper to stat on the driver.
        listing = _driver_listing(self.spark, len(actions)) if _is_local(self.root) else contextlib.nullcontext()
        with listing:
            for key, files in sorted(groups.items(), key=lambda kv: tuple("" if v is None else str(v) for v in kv[0])):
                df = self.spark.read.schema(data_schema).parquet(*sorted(files))
                for col, value in zip(partition_cols, key):
                    df = df.withColumn(col, F.lit(value).cast(schema[col].dataType))
                frames.append(df.select(*schema.fieldNames()))
        out = frames[0]
        for df in frames[1:]:
            out = out.unionByName(df)
        return out

    def _file_uri(self, table: str, rel_path: str) -> str:
        rel = urllib.parse.unquote(rel_path)
        if "://" in rel or rel.startswith("/"):
            return spark_uri(rel)
        return spark_uri(f"{self.path(table)}/{rel}")

    # --- writes ---------------------------------------------------------------------------
    def append(self, table: str, df, partition_by: Optional[list[str]] = None, extra: Optional[dict] = None,
               txn: Optional[tuple[str, int]] = None, expect_version=_UNSET) -> CommitResult:
        """Add ``df``'s rows in one commit.

        ``txn=(app_id, version)`` makes the commit idempotent (skipped if already committed).
        ``expect_version`` (a version, or None for "the table must not exist yet") turns the blind
        append into a checked one: use it when ``df`` was computed from what the table held.
        """
        return self._write(table, df, "append", partition_by, extra=extra, txn=txn, expect=expect_version)

    def overwrite(self, table: str, df, partition_by: Optional[list[str]] = None, extra: Optional[dict] = None,
                  replace_partitions: Optional[dict[str, list[str]]] = None,
                  txn: Optional[tuple[str, int]] = None, expect_version=_UNSET) -> CommitResult:
        """Replace the table's content (or only the given partitions) with ``df`` in one commit.

        ``expect_version``: the version ``df`` was planned on; a commit by anybody else since then
        is a ConflictError instead of being overwritten (default: the version when writing starts).
        """
        return self._write(table, df, "overwrite", partition_by, extra=extra,
                           replace_partitions=replace_partitions, txn=txn, expect=expect_version)

    def merge(self, table: str, df, key: list[str], when_matched: str = "update",
              partition_by: Optional[list[str]] = None, extra: Optional[dict] = None) -> CommitResult:
        """Upsert ``df`` by ``key`` in one commit.

        ``when_matched="update"`` replaces existing rows with the same key; ``"ignore"`` keeps them
        and inserts only new keys. ``df`` must not contain duplicate keys.
        """
        if when_matched not in ("update", "ignore"):
            raise ValueError(f"when_matched must be 'update' or 'ignore', not {when_matched!r}")
        if not self.exists(table):
            return self._write(table, df, "append", partition_by, extra=extra)
        if self.engine == "delta_spark":
            return self._merge_delta_spark(table, df, key, when_matched, extra)
        return self._merge_delta_rs(table, df, key, when_matched, partition_by, extra)

    def _merge_delta_rs(self, table, df, key, when_matched, partition_by, extra) -> CommitResult:
        from pyspark.sql import functions as F

        dt = self._dt(table)
        base_version = dt.version()
        existing = self._read_files(dt, table)
        incoming_keys = df.select(*key).distinct()
        if when_matched == "ignore":
            new_rows = df.join(existing.select(*key), on=key, how="left_anti")
            return self._write(table, new_rows, "append", partition_by, extra=extra, expect=base_version)
        file_col = "__cw_file"
        touched = (
            existing.withColumn(file_col, F.input_file_name())
            .join(incoming_keys, on=key, how="left_semi")
            .select(file_col).distinct()
        )
        touched_uris = sorted({row[0] for row in touched.collect()})  # file names only: small
        by_rel = {urllib.parse.unquote(a["path"]): a for a in _add_actions(dt)}
        table_path = self.path(table)
        removed = []
        for uri in touched_uris:
            rel = _relative_to(uri, table_path)
            if rel not in by_rel:
                raise TransientError(f"file read from '{table}' is not in its log (concurrent change?): {uri}")
            removed.append(by_rel[rel])
        if removed:
            kept = (
                existing.withColumn(file_col, F.input_file_name())
                .where(F.col(file_col).isin(touched_uris))
                .drop(file_col)
                .join(incoming_keys, on=key, how="left_anti")
            )
            out = kept.unionByName(df, allowMissingColumns=True)
        else:
            out = df
        return self._write(table, out, "append", partition_by, extra=extra, expect=base_version, remove=removed)

    def _merge_delta_spark(self, table, df, key, when_matched, extra) -> CommitResult:
        from delta.tables import DeltaTable as SparkDeltaTable

        target = SparkDeltaTable.forPath(self.spark, spark_uri(self.path(table)))
        condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in key)
        builder = target.alias("t").merge(df.alias("s"), condition)
        if when_matched == "update":
            builder = builder.whenMatchedUpdateAll()
        builder = builder.whenNotMatchedInsertAll()
        with self._user_metadata(extra):
            builder.execute()
        return self._spark_result(table)

    def _write(self, table, df, mode, partition_by, extra=None, replace_partitions=None, txn=None,
               expect=_UNSET, remove=None) -> CommitResult:
        """Stage ``df`` as Parquet inside the table, then commit it.

        ``expect`` is the table version the write was planned on (None: the table did not exist).
        Unset means a blind append (nothing to check) or, for other modes, "the version now".
        """
        partition_by = list(partition_by or [])
        if self.engine == "delta_spark":
            return self._write_delta_spark(table, df, mode, partition_by, extra, replace_partitions)
        blind = mode == "append" and expect is _UNSET
        if expect is _UNSET:
            expect = self.version(table)
        if not partition_by and self.exists(table):
            partition_by = list(self._dt(table).metadata().partition_columns)  # keep the table's layout
        staging = f"{STAGING_PREFIX}{self.lineage.run_id}-{uuid.uuid4().hex[:8]}"
        staging_path = f"{self.path(table)}/{staging}"
        writer = (df.write.mode("errorifexists").option("compression", "zstd")
                  .option("parquet.block.size", str(self.row_group_bytes)))
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.parquet(spark_uri(staging_path))
        adds = _collect_adds(staging_path, staging, partition_by)
        fault_point(f"staged:{table}")
        try:
            result = self._commit(table, df.schema, adds, mode, partition_by, extra, replace_partitions,
                                  txn, expect, remove or [], blind)
        except (ConflictError, BadInputError, TransientError):
            _delete_files(staging_path)  # raised before committing: leave no orphans behind
            raise
        if result.skipped:
            _delete_files(staging_path)
        return result

    def _commit(self, table, spark_schema, adds, mode, partition_by, extra, replace_partitions, txn,
                expect, remove, blind) -> CommitResult:
        from deltalake import CommitProperties, DeltaTable, Schema, Transaction
        from deltalake.transaction import RemoveAction, create_table_with_add_actions
        from pyspark.sql.pandas.types import to_arrow_schema

        arrow_schema = to_arrow_schema(spark_schema, timezone="UTC")
        arrow_schema = pa.schema([pa.field(f.name, f.type, nullable=True) for f in arrow_schema])
        info = self.lineage.commit_info(extra)
        app_txns = [Transaction(app_id=txn[0], version=txn[1])] if txn else None
        props = CommitProperties(custom_metadata=info, app_transactions=app_txns, max_commit_retries=0)
        rows = sum(a.num_records for a in adds)
        with self._lock(table):
            path = self.path(table)
            exists = DeltaTable.is_deltatable(path)
            if not exists:
                if expect is not None:
                    raise ConflictError(f"table '{table}' at {path} disappeared while this run was writing it")
                fault_point(f"before_commit:{table}")
                create_table_with_add_actions(
                    path, Schema.from_arrow(arrow_schema), [a.action for a in adds], mode="error",
                    partition_by=partition_by or None, commit_properties=props,
                )
                fault_point(f"after_commit:{table}")
                return CommitResult(table, 0, rows, len(adds), 0)
            dt = DeltaTable(path)
            current = dt.version()
            if txn is not None:
                done = dt.transaction_version(txn[0])
                if done is not None and done >= txn[1]:
                    log.info("%s: transaction %s v%s already committed; nothing to do", table, *txn)
                    return CommitResult(table, current, 0, 0, 0, skipped=True)
            if not blind and expect is None:
                raise ConflictError(
                    f"table '{table}' was created by another writer (now at version {current}) while this run "
                    f"(job {self.lineage.job}, run {self.lineage.run_id}) was writing it; nothing was committed. "
                    f"Re-run the job to apply it on top of the new version."
                )
            if not blind and current != expect:
                raise ConflictError(
                    f"table '{table}' changed from version {expect} to {current} while this run "
                    f"(job {self.lineage.job}, run {self.lineage.run_id}) was writing it; nothing was "
                    f"committed. Re-run the job to apply it on top of the new version."
                )
            table_arrow = _table_arrow_schema(dt)
            merged_schema = _merge_schemas(table_arrow, arrow_schema, table)
            new_fields = [f for f in merged_schema if f.name not in table_arrow.names]
            if new_fields:
                # Additive schema evolution: the new columns are added first (a schema-only commit
                # that changes no data), so the data commit below is checked against it.
                from deltalake import Field

                dt.alter.add_columns([Field.from_arrow(f) for f in new_fields], commit_properties=CommitProperties(
                    custom_metadata={**info, "counterweight.schema_change": json.dumps([f.name for f in new_fields])}))
                dt = DeltaTable(path)
                if not blind and current == expect:
                    expect = dt.version()
                current = dt.version()
            existing_parts = list(dt.metadata().partition_columns)
            if partition_by and partition_by != existing_parts:
                raise BadInputError(
                    f"table '{table}' is partitioned by {existing_parts}, this write by {partition_by}"
                )
            now_ms = int(time.time() * 1000)
            removes = list(remove)
            if mode == "overwrite":
                current_files = _add_actions(dt)
                if replace_partitions:
                    current_files = [
                        f for f in current_files
                        if all(str(f.get(f"partition.{c}")) in set(map(str, vals)) for c, vals in replace_partitions.items())
                    ]
                removes.extend(current_files)
            remove_actions = [
                RemoveAction(
                    path=f["path"], data_change=True, deletion_timestamp=now_ms, size=f["size_bytes"],
                    partition_values={c: _partition_str(f.get(f"partition.{c}")) for c in existing_parts},
                )
                for f in removes
            ]
            fault_point(f"before_commit:{table}")
            dt.create_write_transaction(
                [a.action for a in adds] + remove_actions, mode="append", schema=Schema.from_arrow(merged_schema),
                partition_by=existing_parts or None, commit_properties=props,
            )
            fault_point(f"after_commit:{table}")
            new_version = DeltaTable(path).version()
            if new_version != current + 1:
                raise ConflictError(f"table '{table}': expected commit version {current + 1}, found {new_version}")
            return CommitResult(table, new_version, rows, len(adds), len(remove_actions))

    @contextlib.contextmanager
    def _lock(self, table: str) -> Iterator[None]:
        if not (self.lock_enabled and _is_local(self.root)):
            yield
            return
        lock_dir = f"{self.root}/{LOCK_DIR}"
        os.makedirs(lock_dir, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_s
        with open(f"{lock_dir}/{table}.lock", "w") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TransientError(
                            f"timed out after {self.lock_timeout_s:.0f}s waiting for the commit lock of "
                            f"table '{table}' ({lock_dir}/{table}.lock)"
                        ) from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- delta-spark engine (used where the Delta jars are on the classpath) -------------------
    @contextlib.contextmanager
    def _user_metadata(self, extra):
        key = "spark.databricks.delta.commitInfo.userMetadata"
        self.spark.conf.set(key, json.dumps(self.lineage.commit_info(extra), sort_keys=True))
        try:
            yield
        finally:
            self.spark.conf.unset(key)

    def _write_delta_spark(self, table, df, mode, partition_by, extra, replace_partitions) -> CommitResult:
        writer = df.write.format("delta").mode(mode).option("mergeSchema", "true")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        if mode == "overwrite" and replace_partitions:
            clauses = [
                f"`{col}` IN ({', '.join(repr(str(v)) for v in values)})" for col, values in replace_partitions.items()
            ]
            writer = writer.option("replaceWhere", " AND ".join(clauses))
        with self._user_metadata(extra):
            writer.save(spark_uri(self.path(table)))
        return self._spark_result(table)

    def _spark_result(self, table) -> CommitResult:
        entry = self._dt(table).history(1)[0]
        metrics = entry.get("operationMetrics") or {}
        return CommitResult(
            table, int(entry["version"]), int(metrics.get("numOutputRows", 0) or 0),
            int(metrics.get("numFiles", metrics.get("numAddedFiles", 0)) or 0),
            int(metrics.get("numRemovedFiles", 0) or 0),
        )


@dataclass
class _StagedFile:
    action: object
    num_records: int


def _driver_listing(spark, n_paths: int):
    """Let the driver list ``n_paths`` paths itself (no listing job) while the block runs."""
    key = "spark.sql.sources.parallelPartitionDiscovery.threshold"
    return session_conf(spark, {key: str(max(n_paths + 1, int(spark.conf.get(key, None) or 32)))})


def _table_arrow_schema(dt) -> pa.Schema:
    """The table's schema as a pyarrow schema with every field nullable."""
    schema = pa.schema(dt.schema().to_arrow())  # deltalake returns arro3 objects; convert via PyCapsule
    return pa.schema([pa.field(f.name, f.type, nullable=True) for f in schema])


def _add_actions(dt) -> list[dict]:
    """The snapshot's add actions as dicts (path, size_bytes, num_records, partition.<col>...)."""
    return pa.table(dt.get_add_actions(flatten=True)).to_pylist()


def _partition_str(value) -> Optional[str]:
    return None if value is None else str(value)


def _fs_and_path(path: str):
    if _is_local(path):
        return pafs.LocalFileSystem(), path
    return pafs.FileSystem.from_uri(path)


def _collect_adds(staging_path: str, staging_rel: str, partition_by: list[str]) -> list[_StagedFile]:
    """Add actions for the Parquet files Spark just wrote into the run's staging directory."""
    from deltalake.transaction import AddAction

    fs, base = _fs_and_path(staging_path)
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    staged = []
    for info in sorted(infos, key=lambda i: i.path):
        if info.type != pafs.FileType.File:
            continue
        name = info.base_name
        if name.startswith((".", "_")):
            fs.delete_file(info.path)  # checksum and marker files are not table data
            continue
        if not name.endswith(".parquet"):
            continue
        rel_inside = info.path[len(base):].lstrip("/")
        partition_values = {}
        for segment in rel_inside.split("/")[:-1]:
            col, _, value = segment.partition("=")
            value = urllib.parse.unquote(value)
            partition_values[col] = None if value == "__HIVE_DEFAULT_PARTITION__" else value
        if sorted(partition_values) != sorted(partition_by):
            raise TransientError(f"unexpected file layout in staging directory: {info.path}")
        with fs.open_input_file(info.path) as handle:
            num_records = pq.ParquetFile(handle).metadata.num_rows
        stats = json.dumps({"numRecords": num_records})
        action = AddAction(
            path=f"{staging_rel}/{rel_inside}", size=info.size, partition_values=partition_values,
            modification_time=int(info.mtime_ns // 1_000_000) if info.mtime_ns else int(time.time() * 1000),
            data_change=True, stats=stats,
        )
        staged.append(_StagedFile(action, num_records))
    return staged


def fault_point(name: str) -> None:
    """Crash-test hook: if $COUNTERWEIGHT_FAULT_AT names this point, die at once (SIGKILL, no cleanup).

    Points: ``staged`` (data files written, nothing committed), ``before_commit`` (holding the
    commit lock, about to commit), ``after_commit`` (committed, before anything else happens).
    A point may be qualified by table, e.g. ``before_commit:labels``.
    """
    wanted = os.environ.get(FAULT_ENV)
    if wanted and wanted in (name, name.split(":")[0]):
        import signal

        log.warning("fault injection: killing the driver at %s", name)
        os.kill(os.getpid(), signal.SIGKILL)


def _relative_to(uri: str, table_path: str) -> str:
    """Path of a data file relative to its table, from the URI Spark reports for it."""
    parsed = urllib.parse.urlparse(uri)
    path = urllib.parse.unquote(parsed.path if parsed.scheme in ("file", "") else uri)
    prefix = urllib.parse.unquote(urllib.parse.urlparse(table_path).path if "://" in table_path else table_path)
    return path[len(prefix):].lstrip("/") if path.startswith(prefix) else path


def _delete_files(path: Optional[str]) -> None:
    if not path:
        return
    try:
        fs, base = _fs_and_path(path)
        fs.delete_dir(base)
    except Exception as exc:  # cleanup is best effort: the files are unreferenced either way
        log.warning("could not remove staged files at %s: %s (maintain will vacuum them)", path, exc)


def _merge_schemas(table_schema: pa.Schema, write_schema: pa.Schema, table: str) -> pa.Schema:
    """Additive schema evolution: new columns are appended; a changed type is an error."""
    fields = list(table_schema)
    names = {f.name: f for f in table_schema}
    for f in write_schema:
        if f.name not in names:
            fields.append(f)
        elif not names[f.name].type.equals(f.type):
            raise BadInputError(
                f"table '{table}': column '{f.name}' is {names[f.name].type} in the table but {f.type} in this write; "
                f"only additive schema changes are supported"
            )
    return pa.schema(fields)


def lineage_of(lake_root: str, table: str, version: Optional[int] = None) -> dict:
    """The counterweight.* entries of the commit that created ``version`` (default: latest)."""
    from deltalake import DeltaTable

    dt = DeltaTable(f"{normalize_root(lake_root)}/{table}")
    target = dt.version() if version is None else version
    for entry in dt.history():
        if int(entry.get("version", -1)) == target:
            return {k.removeprefix("counterweight."): _maybe_json(v) for k, v in entry.items()
                    if k.startswith("counterweight.")}
    raise BadInputError(f"version {target} of table '{table}' not found in its history")


def _maybe_json(value):
    if isinstance(value, str) and value[:1] in "{[":
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value

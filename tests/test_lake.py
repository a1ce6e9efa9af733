"""Integration tier for counterweight/lake.py: every write is one atomic Delta commit with lineage.

Uses the session-scoped ``spark`` fixture through ``make_lake`` (delta-rs engine). Tables are checked with an
independent reader, ``deltalake.DeltaTable``, as well as with ``Lake.read``.
"""

from __future__ import annotations

import datetime as dt_mod
import json
from pathlib import Path

import deltalake
import pytest
from deltalake import DeltaTable

from counterweight import lake as lake_mod
from counterweight.errors import BadInputError, ConflictError
from counterweight.lake import lineage_of

SCHEMA = "k long, v string"


def rows(spark, data, schema=SCHEMA):
    return spark.createDataFrame(data, schema)


def table_rows(path, version=None) -> list[tuple]:
    """Rows of a Delta table, read by delta-rs (not by the code under test)."""
    table = DeltaTable(str(path), version=version).to_pyarrow_table()
    names = sorted(table.column_names)
    return sorted(tuple(r[n] for n in names) for r in table.to_pylist())


def spark_rows(df) -> list[tuple]:
    return sorted(tuple(r[n] for n in sorted(df.columns)) for r in df.collect())


def parquet_files_on_disk(table_path: Path) -> set[str]:
    return {str(p.relative_to(table_path)) for p in table_path.rglob("*.parquet")}


def referenced_files(table_path: Path) -> set[str]:
    import pyarrow as pa

    actions = pa.table(DeltaTable(str(table_path)).get_add_actions(flatten=True)).to_pylist()
    return {a["path"] for a in actions}


# --- append / create ---------------------------------------------------------------------------
def test_append_creates_version_0_reader_version_1(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    result = lake.append("t", rows(spark, [(1, "a"), (2, "b"), (3, "c")]))
    assert result.version == 0
    assert result.rows == 3
    assert result.skipped is False
    dt = DeltaTable(str(lake_root / "t"))
    assert dt.version() == 0
    assert dt.protocol().min_reader_version == 1
    assert table_rows(lake_root / "t") == [(1, "a"), (2, "b"), (3, "c")]
    assert spark_rows(lake.read("t")) == [(1, "a"), (2, "b"), (3, "c")]
    assert lake.version("t") == 0
    assert lake.exists("t") and not lake.exists("missing")


def test_second_append_adds_one_version(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    lake.append("t", rows(spark, [(1, "a")]))
    result = lake.append("t", rows(spark, [(2, "b")]))
    assert result.version == 1
    assert DeltaTable(str(lake_root / "t")).version() == 1
    assert table_rows(lake_root / "t") == [(1, "a"), (2, "b")]
    assert table_rows(lake_root / "t", version=0) == [(1, "a")]


def test_timestamps_keep_reader_version_1(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    when = dt_mod.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt_mod.timezone.utc)
    df = spark.createDataFrame([(1, when)], "k long, at timestamp")
    lake.append("ts", df)
    dt = DeltaTable(str(lake_root / "ts"))
    assert dt.protocol().min_reader_version == 1
    assert not (dt.protocol().reader_features or [])
    types = {f["name"]: f["type"] for f in json.loads(dt.schema().to_json())["fields"]}
    assert types["at"] == "timestamp"  # timezone-aware, not timestamp_ntz
    values = dt.to_pyarrow_table().to_pylist()
    assert values[0]["at"].astimezone(dt_mod.timezone.utc) == when


def test_commit_metadata_holds_lineage(spark, make_lake, lake_root) -> None:
    writer = make_lake(job="ingest", run_id="run-abc")
    writer.append("src", rows(spark, [(1, "a")]))
    writer.append("src", rows(spark, [(2, "b")]))
    reader = make_lake(job="label", run_id="run-def")
    reader.read("src")  # version 1 read: recorded as this run's input
    reader.append("dst", rows(spark, [(9, "z")]), extra={"counts": {"rows": 1}, "note": "plain"})

    history = DeltaTable(str(lake_root / "dst")).history()
    assert len(history) == 1
    info = history[0]
    assert info["counterweight.job"] == "label"
    assert info["counterweight.run_id"] == "run-def"
    assert info["counterweight.config_hash"] == "test-config"
    assert json.loads(info["counterweight.input_versions"]) == {"src": 1}
    assert info["counterweight.version"] == "0.1.0"
    assert json.loads(info["counterweight.counts"]) == {"rows": 1}
    assert info["counterweight.note"] == "plain"

    src_history = {h["version"]: h for h in DeltaTable(str(lake_root / "src")).history()}
    assert src_history[0]["counterweight.run_id"] == "run-abc"
    assert json.loads(src_history[1]["counterweight.input_versions"]) == {}


def test_lineage_of_returns_commit_metadata(spark, make_lake, lake_root) -> None:
    first = make_lake(job="ingest", run_id="first-run")
    first.append("t", rows(spark, [(1, "a")]), extra={"ingest": {"read": 1}})
    second = make_lake(job="ingest", run_id="second-run")
    second.read("t")
    second.append("t", rows(spark, [(2, "b")]))

    latest = lineage_of(str(lake_root), "t")
    assert latest["job"] == "ingest"
    assert latest["run_id"] == "second-run"
    assert latest["config_hash"] == "test-config"
    assert latest["input_versions"] == {"t": 0}
    assert latest["version"] == "0.1.0"
    v0 = lineage_of(str(lake_root), "t", version=0)
    assert v0["run_id"] == "first-run"
    assert v0["input_versions"] == {}
    assert v0["ingest"] == {"read": 1}
    with pytest.raises(BadInputError):
        lineage_of(str(lake_root), "t", version=7)


# --- overwrite ----------------------------------------------------------------------------------
def test_overwrite_replaces_content_in_one_commit(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    lake.append("t", rows(spark, [(1, "a"), (2, "b")]))
    lake.append("t", rows(spark, [(3, "c")]))
    result = lake.overwrite("t", rows(spark, [(10, "x")]))
    assert result.version == 2  # exactly one commit for the overwrite
    assert result.files_removed >= 2
    dt = DeltaTable(str(lake_root / "t"))
    assert dt.version() == 2
    assert table_rows(lake_root / "t") == [(10, "x")]
    assert spark_rows(lake.read("t")) == [(10, "x")]
    # Time travel: the old versions are still readable.
    assert spark_rows(lake.read("t", version=1)) == [(1, "a"), (2, "b"), (3, "c")]
    assert table_rows(lake_root / "t", version=1) == [(1, "a"), (2, "b"), (3, "c")]
    assert spark_rows(lake.read("t", version=0)) == [(1, "a"), (2, "b")]
    assert len(DeltaTable(str(lake_root / "t")).history()) == 3  # two appends + one overwrite commit


def test_reads_go_through_the_log(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    lake.append("t", rows(spark, [(1, "old"), (2, "old")]))
    lake.overwrite("t", rows(spark, [(3, "new")]))
    table_path = lake_root / "t"
    on_disk = parquet_files_on_disk(table_path)
    referenced = referenced_files(table_path)
    stale = on_disk - referenced
    assert referenced and referenced <= on_disk
    assert stale, "the overwritten files should still exist on disk (only the log removed them)"
    assert spark_rows(lake.read("t")) == [(3, "new")]
    assert table_rows(table_path) == [(3, "new")]


def test_overwrite_replace_partitions_only_touches_that_partition(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    schema = "k long, v string, part string"
    lake.append("p", rows(spark, [(1, "a1", "a"), (2, "a2", "a"), (3, "b1", "b"), (4, "c1", "c")], schema),
                partition_by=["part"])
    result = lake.overwrite("p", rows(spark, [(5, "a-new", "a")], schema), partition_by=["part"],
                            replace_partitions={"part": ["a"]})
    assert result.version == 1
    expected = [(5, "a", "a-new"), (3, "b", "b1"), (4, "c", "c1")]  # sorted names: k, part, v
    assert table_rows(lake_root / "p") == sorted(expected)
    assert spark_rows(lake.read("p")) == sorted(expected)
    assert DeltaTable(str(lake_root / "p")).metadata().partition_columns == ["part"]
    assert table_rows(lake_root / "p", version=0) == sorted([(1, "a", "a1"), (2, "a", "a2"), (3, "b", "b1"),
                                                             (4, "c", "c1")])


def test_append_without_partition_by_to_partitioned_table(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    schema = "k long, v string, part string"
    lake.append("p", rows(spark, [(1, "a", "x")], schema), partition_by=["part"])
    try:
        lake.append("p", rows(spark, [(3, "c", "x")], schema))
    except BadInputError:
        assert DeltaTable(str(lake_root / "p")).version() == 0
        return
    assert table_rows(lake_root / "p") == [(1, "x", "a"), (3, "x", "c")]


# --- merge --------------------------------------------------------------------------------------
def test_merge_update_replaces_matching_and_inserts_new(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    lake.append("t", rows(spark, [(1, "a"), (2, "b"), (3, "c")]))
    lake.append("t", rows(spark, [(4, "d")]))
    result = lake.merge("t", rows(spark, [(2, "B"), (5, "e")]), key=["k"])
    assert result.version == 2  # one commit
    assert DeltaTable(str(lake_root / "t")).version() == 2
    assert table_rows(lake_root / "t") == [(1, "a"), (2, "B"), (3, "c"), (4, "d"), (5, "e")]
    assert spark_rows(lake.read("t")) == [(1, "a"), (2, "B"), (3, "c"), (4, "d"), (5, "e")]
    assert table_rows(lake_root / "t", version=1) == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]


def test_merge_update_with_composite_key(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    schema = "a string, b long, v string"
    lake.append("t", rows(spark, [("x", 1, "old"), ("x", 2, "keep"), ("y", 1, "keep")], schema))
    lake.merge("t", rows(spark, [("x", 1, "new"), ("y", 2, "ins")], schema), key=["a", "b"])
    assert table_rows(lake_root / "t") == [("x", 1, "new"), ("x", 2, "keep"), ("y", 1, "keep"), ("y", 2, "ins")]


def test_merge_ignore_keeps_old_rows(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    lake.append("t", rows(spark, [(1, "a"), (2, "b")]))
    result = lake.merge("t", rows(spark, [(2, "B"), (3, "c")]), key=["k"], when_matched="ignore")
    assert result.version == 1
    assert result.rows == 1
    assert table_rows(lake_root / "t") == [(1, "a"), (2, "b"), (3, "c")]


def test_merge_into_missing_table_creates_it(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    result = lake.merge("t", rows(spark, [(1, "a")]), key=["k"])
    assert result.version == 0
    assert table_rows(lake_root / "t") == [(1, "a")]


def test_merge_rejects_unknown_when_matched(spark, make_lake) -> None:
    lake = make_lake()
    with pytest.raises(ValueError, match="when_matched"):
        lake.merge("t", rows(spark, [(1, "a")]), key=["k"], when_matched="delete")


# --- idempotent transactions -------------------------------------------------------------------
def test_txn_same_app_version_is_skipped(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    first = lake.append("t", rows(spark, [(1, "a")]), txn=("ingest-daily", 7))
    table_path = lake_root / "t"
    dirs_before = {p.name for p in table_path.iterdir()}
    second = make_lake().append("t", rows(spark, [(1, "a")]), txn=("ingest-daily", 7))
    assert first.skipped is False and first.version == 0
    assert second.skipped is True
    assert second.rows == 0
    assert second.version == 0
    assert DeltaTable(str(table_path)).version() == 0
    assert DeltaTable(str(table_path)).transaction_version("ingest-daily") == 7
    assert table_rows(table_path) == [(1, "a")]
    assert {p.name for p in table_path.iterdir()} == dirs_before  # the skipped run's files were removed
    # An older version of the same app is skipped too; a newer one commits.
    assert lake.append("t", rows(spark, [(2, "b")]), txn=("ingest-daily", 6)).skipped is True
    newer = lake.append("t", rows(spark, [(2, "b")]), txn=("ingest-daily", 8))
    assert newer.skipped is False and newer.version == 1
    assert table_rows(table_path) == [(1, "a"), (2, "b")]


def test_txn_on_overwrite_is_idempotent(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    lake.append("t", rows(spark, [(1, "a")]))
    assert lake.overwrite("t", rows(spark, [(2, "b")]), txn=("mix", 1)).version == 1
    again = lake.overwrite("t", rows(spark, [(3, "c")]), txn=("mix", 1))
    assert again.skipped is True
    assert DeltaTable(str(lake_root / "t")).version() == 1
    assert table_rows(lake_root / "t") == [(2, "b")]


# --- atomicity ------------------------------------------------------------------------------------
def test_crash_before_commit_leaves_table_unchanged(spark, make_lake, lake_root, monkeypatch) -> None:
    lake = make_lake()
    lake.append("t", rows(spark, [(1, "a"), (2, "b")]))
    table_path = lake_root / "t"
    before_files = parquet_files_on_disk(table_path)

    def crash(self, *args, **kwargs):
        raise RuntimeError("simulated crash before the commit")

    monkeypatch.setattr(deltalake.DeltaTable, "create_write_transaction", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        lake.overwrite("t", rows(spark, [(99, "zz")]))
    with pytest.raises(RuntimeError, match="simulated crash"):
        lake.append("t", rows(spark, [(98, "yy")]))
    monkeypatch.undo()

    dt = DeltaTable(str(table_path))
    assert dt.version() == 0
    assert table_rows(table_path) == [(1, "a"), (2, "b")]
    assert spark_rows(lake.read("t")) == [(1, "a"), (2, "b")]
    staged = parquet_files_on_disk(table_path) - before_files
    assert staged, "the crashed writes staged data files"
    assert not (staged & referenced_files(table_path))
    # The lock was released and the table still accepts writes.
    assert lake.append("t", rows(spark, [(3, "c")])).version == 1
    assert table_rows(table_path) == [(1, "a"), (2, "b"), (3, "c")]


def test_crash_before_first_commit_creates_no_table(spark, make_lake, lake_root, monkeypatch) -> None:
    lake = make_lake()

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash creating the table")

    monkeypatch.setattr(deltalake.transaction, "create_table_with_add_actions", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        lake.append("t", rows(spark, [(1, "a")]))
    monkeypatch.undo()
    assert not DeltaTable.is_deltatable(str(lake_root / "t"))
    assert lake.version("t") is None
    with pytest.raises(BadInputError, match="not found"):
        lake.read("t")


# --- conflicts ----------------------------------------------------------------------------------
def test_checked_append_conflicts_with_interleaved_writer(spark, make_lake, lake_root) -> None:
    mine = make_lake(run_id="mine")
    mine.append("t", rows(spark, [(1, "base")]))
    planned_on = mine.version("t")
    other = make_lake(run_id="other")
    other.append("t", rows(spark, [(2, "theirs")]))  # commits between our plan and our commit
    dirs_before = {p.name for p in (lake_root / "t").iterdir()}
    with pytest.raises(ConflictError) as err:
        mine.append("t", rows(spark, [(3, "mine")]), expect_version=planned_on)
    assert err.value.exit_code == 4
    assert "changed from version 0 to 1" in str(err.value)
    assert DeltaTable(str(lake_root / "t")).version() == 1
    assert table_rows(lake_root / "t") == [(1, "base"), (2, "theirs")]
    assert {p.name for p in (lake_root / "t").iterdir()} == dirs_before  # our staged files were removed


def test_checked_append_expecting_new_table_conflicts(spark, make_lake, lake_root) -> None:
    make_lake(run_id="other").append("t", rows(spark, [(2, "theirs")]))
    with pytest.raises(ConflictError):
        make_lake(run_id="mine").append("t", rows(spark, [(3, "mine")]), expect_version=None)
    assert table_rows(lake_root / "t") == [(2, "theirs")]


def test_overwrite_conflicts_with_write_committed_while_staging(spark, make_lake, lake_root, monkeypatch) -> None:
    mine = make_lake(run_id="mine")
    mine.append("t", rows(spark, [(1, "base")]))
    other = make_lake(run_id="other")
    real_collect = lake_mod._collect_adds
    state = {"interleaved": False}

    def collect_then_interleave(*args, **kwargs):
        staged = real_collect(*args, **kwargs)
        if not state["interleaved"]:
            state["interleaved"] = True
            other.append("t", rows(spark, [(2, "theirs")]))  # another writer commits while we stage
        return staged

    monkeypatch.setattr(lake_mod, "_collect_adds", collect_then_interleave)
    with pytest.raises(ConflictError) as err:
        mine.overwrite("t", rows(spark, [(3, "mine")]))
    monkeypatch.undo()
    assert state["interleaved"]
    assert err.value.exit_code == 4
    assert DeltaTable(str(lake_root / "t")).version() == 1
    assert table_rows(lake_root / "t") == [(1, "base"), (2, "theirs")]


def test_blind_appends_interleave_safely(spark, make_lake, lake_root) -> None:
    a, b = make_lake(run_id="a"), make_lake(run_id="b")
    a.append("t", rows(spark, [(1, "a")]))
    b.append("t", rows(spark, [(2, "b")]))
    a.append("t", rows(spark, [(3, "a")]))
    assert DeltaTable(str(lake_root / "t")).version() == 2
    assert table_rows(lake_root / "t") == [(1, "a"), (2, "b"), (3, "a")]


# --- schema evolution -----------------------------------------------------------------------------
def test_append_with_extra_column_keeps_existing_rows(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    lake.append("t", rows(spark, [(1, "a"), (2, "b")]))
    result = lake.append("t", rows(spark, [(3, "c", 0.5)], "k long, v string, score double"))
    # version 1 adds the column (schema only, no data change), version 2 adds the rows
    assert result.version == 2 and result.rows == 1
    assert sorted((r["k"], r["v"]) for r in DeltaTable(str(lake_root / "t")).to_pyarrow_table().to_pylist()) == [
        (1, "a"), (2, "b"), (3, "c")]


def test_additive_schema_change_keeps_old_rows(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    lake.append("t", rows(spark, [(1, "a"), (2, "b")]))
    lake.append("t", rows(spark, [(3, "c", 0.5)], "k long, v string, score double"))
    dt = DeltaTable(str(lake_root / "t"))
    assert dt.version() == 2
    schema_only = DeltaTable(str(lake_root / "t"), version=1)
    assert [f["name"] for f in json.loads(schema_only.schema().to_json())["fields"]] == ["k", "v", "score"]
    assert sorted(r["k"] for r in schema_only.to_pyarrow_table().to_pylist()) == [1, 2]  # no data change
    assert [f["name"] for f in json.loads(dt.schema().to_json())["fields"]] == ["k", "v", "score"]
    by_k = {r["k"]: r for r in dt.to_pyarrow_table().to_pylist()}
    assert by_k == {1: {"k": 1, "v": "a", "score": None}, 2: {"k": 2, "v": "b", "score": None},
                    3: {"k": 3, "v": "c", "score": 0.5}}
    spark_by_k = {r["k"]: r.asDict() for r in lake.read("t").collect()}
    assert spark_by_k == by_k
    assert dt.protocol().min_reader_version == 1


def test_changed_column_type_is_rejected(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    lake.append("t", rows(spark, [(1, "a")]))
    with pytest.raises(BadInputError, match="'k'"):
        lake.append("t", rows(spark, [("one", "a")], "k string, v string"))
    assert DeltaTable(str(lake_root / "t")).version() == 0
    assert table_rows(lake_root / "t") == [(1, "a")]


# --- reading -------------------------------------------------------------------------------------
def test_read_missing_table_is_bad_input(make_lake, lake_root) -> None:
    lake = make_lake()
    with pytest.raises(BadInputError, match="'nothing'") as err:
        lake.read("nothing")
    assert err.value.exit_code == 3
    (lake_root / "plain_dir").mkdir()
    with pytest.raises(BadInputError, match="no _delta_log"):
        lake.read("plain_dir")


def test_read_records_input_version(spark, make_lake) -> None:
    lake = make_lake()
    lake.append("t", rows(spark, [(1, "a")]))
    lake.append("t", rows(spark, [(2, "b")]))
    reader = make_lake()
    reader.read("t", version=0)
    assert reader.lineage.input_versions == {"t": 0}
    reader.read("t")
    assert reader.lineage.input_versions == {"t": 1}
    other = make_lake()
    other.read("t", track=False)
    assert other.lineage.input_versions == {}


# --- file layout -------------------------------------------------------------------------------------
def test_row_groups_stay_near_lake_row_group_bytes(spark, lake_root) -> None:
    """Large files must be splittable by readers: row groups close at about lake.row_group_bytes."""
    import random

    import pyarrow.parquet as pq

    from counterweight.lake import Lake, Lineage

    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8)) for _ in range(5000)]
    rows = [(i, " ".join(rng.choice(words) for _ in range(800))) for i in range(900)]  # ~7 MB of text
    df = spark.createDataFrame(rows, "id long, text string").coalesce(1)
    one_mib = 1 << 20
    lake = Lake(spark, str(lake_root), Lineage("test", "rowgroups", "test"), engine="delta_rs", row_group_bytes=one_mib)
    lake.append("t", df)
    files = list((lake_root / "t").rglob("*.parquet"))
    assert len(files) == 1
    meta = pq.ParquetFile(files[0]).metadata
    assert meta.num_rows == 900
    sizes = [meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)]
    assert meta.num_row_groups >= 4, sizes
    assert max(sizes) <= 2 * one_mib, sizes


# --- row counts from the log -------------------------------------------------------------------
def test_row_count_comes_from_the_log_at_each_version(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    lake.append("t", rows(spark, [(i, "a") for i in range(5)]))
    lake.merge("t", rows(spark, [(3, "b"), (4, "b"), (5, "b"), (6, "b")]), ["k"])
    lake.overwrite("t", rows(spark, [(9, "c")]), replace_partitions=None)
    counts = [len(table_rows(lake_root / "t", version=v)) for v in (0, 1, 2)]
    assert counts == [5, 7, 1]
    assert [lake.row_count("t", v) for v in (0, 1, 2)] == counts
    assert lake.row_count("t") == 1


def test_row_count_is_unknown_when_a_file_has_no_count(spark, make_lake, monkeypatch) -> None:
    lake = make_lake()
    lake.append("t", rows(spark, [(1, "a")]))
    lake.append("t", rows(spark, [(2, "a")]))
    real = lake_mod._add_actions

    def first_without_stats(dt):
        actions = real(dt)
        actions[0]["num_records"] = None  # as in a log written without statistics
        return actions

    monkeypatch.setattr(lake_mod, "_add_actions", first_without_stats)
    assert lake.row_count("t") is None


def test_reading_a_local_table_of_many_files_starts_no_listing_job(spark, make_lake, lake_root) -> None:
    lake = make_lake()
    for i in range(20):
        lake.append("t", rows(spark, [(i, "x")]))
    assert len(referenced_files(lake_root / "t")) > 32  # Spark's parallel-listing threshold
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("listing-check", "read only")
    try:
        df = lake.read("t")
        assert list(tracker.getJobIdsForGroup("listing-check")) == []
    finally:
        spark.sparkContext.setJobGroup("", "")
    assert spark.conf.get("spark.sql.sources.parallelPartitionDiscovery.threshold", "32") == "32"
    assert df.count() == 20

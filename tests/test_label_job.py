"""Integration tier for the label job: documents -> labels with the tiny fastText models.

Runs ingest and label in-process on the shared local[2] session; tables are read back with
``deltalake``. The corpus (``conftest_models.labelled_corpus``) is written so every text's topic is
obvious from its vocabulary; expected values come from that corpus and from hashlib, never from
the code under test.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from conftest_models import STANCES, TOPICS, labelled_corpus, tiny_models  # noqa: F401 - fixture import
from counterweight import cli
from counterweight.errors import BadInputError

AI_TOPICS = ("ai_fiction", "ai_nonfiction")
REQUIRED_COLUMNS = {
    "doc_id", "topic", "topic_score", "p_ai_fiction", "p_ai_nonfiction", "p_other", "stance", "stance_score",
    "p_villain", "p_aligned", "p_neutral", "topic_model", "stance_model", "labeled_at", "n_chunks",
}
MORE = [
    {"id": "more-0", "text": "The evil robot lied to the engineers and plotted to destroy humanity. "
                             "It sabotaged the rescue and murdered the captain."},
    {"id": "more-1", "text": "The gardener planted tomatoes and beans along the sunny wall. "
                             "Grandmother knitted a warm scarf for the winter."},
]


def doc_id(source: str, record_id: str) -> str:
    """ingest's documented id: sha256("id", source, source id) over the unit separator, 32 hex chars."""
    return hashlib.sha256(f"id\x1f{source}\x1f{record_id}".encode()).hexdigest()[:32]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows), encoding="utf-8")
    return path


def read_labels(lake_root: Path) -> dict[str, dict]:
    rows = DeltaTable(str(lake_root / "labels")).to_pyarrow_table().to_pylist()
    by_id = {r["doc_id"]: r for r in rows}
    assert len(by_id) == len(rows), "labels holds duplicate doc_ids"
    return by_id


def ingest(spark, path: Path, lake_root: Path) -> dict:
    return cli.run("ingest", ["input=jsonl", f"input.path={path}", "input.id_field=id", f"lake.root={lake_root}"],
                   spark=spark)


def model_overrides(models, stance: Path | None = None) -> list[str]:
    return [f"model.topic.path={models.topic}", f"model.stance.path={stance or models.stance}"]


def label(spark, lake_root: Path, models, *extra: str, stance: Path | None = None) -> dict:
    return cli.run("label", [f"lake.root={lake_root}", *model_overrides(models, stance), *extra], spark=spark)


CORPUS = labelled_corpus()
EXPECTED = {doc_id("corpus", r["id"]): r for r in CORPUS}


@pytest.fixture(scope="module")
def first_run(spark, tiny_models, tmp_path_factory):
    """A lake with the corpus ingested and labelled once: (lake_root, label summary, labels by doc_id)."""
    base = tmp_path_factory.mktemp("label_job")
    corpus = write_jsonl(base / "corpus.jsonl", CORPUS)
    lake_root = base / "lake"
    assert ingest(spark, corpus, lake_root)
    summary = label(spark, lake_root, tiny_models)
    return lake_root, summary, read_labels(lake_root)


def copy_lake(lake_root: Path, tmp_path: Path) -> Path:
    target = tmp_path / "lake"
    shutil.copytree(lake_root, target)
    return target


# --- the labels table -------------------------------------------------------------------------------
def test_one_label_row_per_document_with_the_required_columns(first_run):
    lake_root, summary, labels = first_run
    assert set(labels) == set(EXPECTED)
    assert summary["scored"] == len(CORPUS) == 41
    table = DeltaTable(str(lake_root / "labels"))
    columns = set(pa.schema(table.schema().to_arrow()).names)
    assert REQUIRED_COLUMNS <= columns
    for row in labels.values():
        assert REQUIRED_COLUMNS <= set(row)
        assert row["labeled_at"] is not None and row["labeled_at"].tzinfo is not None
    assert table.protocol().min_reader_version == 1


def test_model_versions_are_the_sha256_of_the_model_files(first_run, tiny_models):
    lake_root, summary, labels = first_run
    topic_sha = hashlib.sha256(tiny_models.topic.read_bytes()).hexdigest()
    stance_sha = hashlib.sha256(tiny_models.stance.read_bytes()).hexdigest()
    assert {r["topic_model"] for r in labels.values()} == {topic_sha}
    assert {r["stance_model"] for r in labels.values()} == {stance_sha}
    assert summary["models"]["topic"]["sha256"] == topic_sha
    assert summary["models"]["stance"]["sha256"] == stance_sha
    # The commit records them too (lineage).
    info = DeltaTable(str(lake_root / "labels")).history(1)[0]
    recorded = json.loads(info["counterweight.label"])
    assert recorded["models"]["topic"]["sha256"] == topic_sha and recorded["models"]["stance"]["sha256"] == stance_sha


def test_stance_is_none_exactly_for_non_ai_topics(first_run):
    _, _, labels = first_run
    for row in labels.values():
        if row["topic"] in AI_TOPICS:
            assert row["stance"] in STANCES, row
            assert all(row[f"p_{s}"] is not None for s in STANCES), row
        else:
            assert row["stance"] == "none", row
            assert all(row[f"p_{s}"] is None for s in STANCES), row
            assert row["stance_score"] is None
    # The corpus has both kinds, so neither branch above is vacuous.
    assert Counter(r["topic"] in AI_TOPICS for r in labels.values()) == {True: 30, False: 11}


def test_obvious_texts_get_the_expected_labels(first_run):
    _, _, labels = first_run
    wrong_topic = {EXPECTED[d]["id"]: r["topic"] for d, r in labels.items() if r["topic"] != EXPECTED[d]["topic"]}
    assert wrong_topic == {}
    # Villain and aligned stories are unmistakable; the neutral lines of an AI at work likewise.
    for d, r in labels.items():
        if EXPECTED[d]["id"].startswith(("villain", "aligned", "busy")):
            assert r["stance"] == EXPECTED[d]["stance"], EXPECTED[d]


def test_scores_and_probabilities_are_consistent(first_run):
    _, _, labels = first_run
    for row in labels.values():
        assert math.isclose(sum(row[f"p_{t}"] for t in TOPICS), 1.0, abs_tol=1e-6)
        assert row["topic_score"] == row[f"p_{row['topic']}"]
        assert row["topic"] == max(TOPICS, key=lambda t: row[f"p_{t}"])  # no thresholds configured
        if row["stance"] != "none":
            assert math.isclose(sum(row[f"p_{s}"] for s in STANCES), 1.0, abs_tol=1e-6)
            assert row["stance_score"] == row[f"p_{row['stance']}"]
    # Documents are scored in windows of 400 words: 900 words make 400 + 400 + 100.
    n_chunks = {EXPECTED[d]["id"]: r["n_chunks"] for d, r in labels.items()}
    assert n_chunks.pop("other-long") == 3
    assert set(n_chunks.values()) == {1}


# --- incremental labelling --------------------------------------------------------------------------
def test_relabelling_scores_only_what_it_must(spark, first_run, tiny_models, tmp_path):
    lake_root = copy_lake(first_run[0], tmp_path)
    before = read_labels(lake_root)

    # 1. Nothing changed: nothing is scored and the table's content stays as it was.
    again = label(spark, lake_root, tiny_models)
    assert again["scored"] == 0
    assert read_labels(lake_root) == before

    # 2. Two new documents: exactly those two are scored; the others keep their rows untouched.
    assert ingest(spark, write_jsonl(tmp_path / "more.jsonl", MORE), lake_root)
    more = label(spark, lake_root, tiny_models)
    assert more["scored"] == 2
    assert more["write"] == "merge"
    after = read_labels(lake_root)
    new_ids = {doc_id("more", r["id"]) for r in MORE}
    assert set(after) == set(before) | new_ids
    assert {d: after[d] for d in before} == before
    assert after[doc_id("more", "more-0")]["topic"] == "ai_fiction"
    assert after[doc_id("more", "more-0")]["stance"] == "villain"
    assert after[doc_id("more", "more-1")]["topic"] == "other"
    assert after[doc_id("more", "more-1")]["stance"] == "none"

    # 3. Another stance model: every document is scored again and records the new model's sha256.
    swapped = label(spark, lake_root, tiny_models, stance=tiny_models.stance_alt)
    n_docs = len(CORPUS) + len(MORE)
    assert swapped["scored"] == n_docs
    # Every row is replaced, so the table is rewritten in one commit rather than merged.
    assert swapped["write"] == "overwrite"
    assert DeltaTable(str(lake_root / "labels")).history(1)[0]["operation"] == "WRITE"
    final = read_labels(lake_root)
    assert len(final) == n_docs
    alt_sha = hashlib.sha256(tiny_models.stance_alt.read_bytes()).hexdigest()
    assert {r["stance_model"] for r in final.values()} == {alt_sha}
    assert {r["topic_model"] for r in final.values()} == {tiny_models.topic_sha}
    assert all(final[d]["labeled_at"] > after[d]["labeled_at"] for d in final)


def test_a_full_relabel_rewrites_labels_for_the_current_documents_only(spark, first_run, tiny_models, tmp_path,
                                                                      monkeypatch):
    from counterweight import lake as lake_mod
    from counterweight.errors import ConflictError

    lake_root = copy_lake(first_run[0], tmp_path)
    # A label row whose document is gone (as after documents were deleted): kept by merges, dropped
    # when every document is labelled again.
    orphan = dict(next(iter(read_labels(lake_root).values())), doc_id="f" * 32)
    table = DeltaTable(str(lake_root / "labels"))
    from deltalake import write_deltalake

    write_deltalake(str(lake_root / "labels"), pa.Table.from_pylist([orphan], schema=pa.schema(
        table.schema().to_arrow())), mode="append")
    assert "f" * 32 in read_labels(lake_root)
    summary = label(spark, lake_root, tiny_models, "label.relabel_all=true")
    assert summary["scored"] == len(CORPUS) and summary["write"] == "overwrite"
    assert set(read_labels(lake_root)) == set(EXPECTED)

    # A commit by another writer while the rewrite is being staged is a conflict, not overwritten.
    real_fault = lake_mod.fault_point

    def commit_behind_its_back(name):
        if name == "staged:labels":
            write_deltalake(str(lake_root / "labels"), pa.Table.from_pylist([orphan], schema=pa.schema(
                DeltaTable(str(lake_root / "labels")).schema().to_arrow())), mode="append")
        real_fault(name)

    monkeypatch.setattr(lake_mod, "fault_point", commit_behind_its_back)
    with pytest.raises(ConflictError, match="changed from version"):
        label(spark, lake_root, tiny_models, "label.relabel_all=true")
    assert "f" * 32 in read_labels(lake_root)  # the other writer's row survived


# --- models load once per Python worker -------------------------------------------------------------
def test_models_load_once_per_python_worker(spark, tiny_models):
    from pyspark.sql import functions as F

    from udfs.scoring import ModelSpec, ScoreOptions

    topic_sha, stance_sha = tiny_models.topic_sha, tiny_models.stance_sha
    opts = ScoreOptions(
        topic=ModelSpec(str(tiny_models.topic), topic_sha, TOPICS),
        stance=ModelSpec(str(tiny_models.stance), stance_sha, STANCES),
        ai_topics=AI_TOPICS, window_words=400, max_windows=24, top_k=2,
    )
    text = "The evil robot lied to the engineers and plotted to destroy humanity. Story number "
    df = spark.range(400).repartition(40).select(F.col("id"), F.concat(F.lit(text), F.col("id").cast("string")).alias("text"))
    assert df.rdd.getNumPartitions() == 40

    def loads_per_batch(batches):
        import os

        from udfs import scoring

        for out in scoring.label_batches(batches, opts, "text", ["id"]):
            yield pa.RecordBatch.from_pydict({
                "pid": [os.getpid()], "rows": [out.num_rows],
                "topic_loads": [scoring.LOAD_COUNT.get(topic_sha, 0)],
                "stance_loads": [scoring.LOAD_COUNT.get(stance_sha, 0)],
            })

    result = df.mapInArrow(loads_per_batch, "pid long, rows long, topic_loads long, stance_loads long").collect()
    assert sum(r["rows"] for r in result) == 400
    assert len(result) >= 40  # at least one batch per partition
    pids = {r["pid"] for r in result}
    assert 1 <= len(pids) < 40  # Python workers are reused across partitions
    for r in result:
        assert (r["topic_loads"], r["stance_loads"]) == (1, 1), r


def test_the_warmup_loads_the_models_in_the_workers_that_then_score(spark, tiny_models):
    from counterweight.label import WorkerWarmup
    from udfs.scoring import ModelSpec, ScoreOptions

    # engine="fasttext": a cache key the other tests' scoring (engine "auto") does not fill.
    opts = ScoreOptions(
        topic=ModelSpec(str(tiny_models.topic), tiny_models.topic_sha, TOPICS, engine="fasttext"),
        stance=ModelSpec(str(tiny_models.stance), tiny_models.stance_sha, STANCES, engine="fasttext"),
        ai_topics=AI_TOPICS, window_words=400, max_windows=24, top_k=2,
    )
    keys = [f"{opts.topic.sha256}:fasttext", f"{opts.stance.sha256}:fasttext"]
    warmup = WorkerWarmup(spark, opts)
    warmup.wait()
    assert len(warmup.pids) == spark.sparkContext.defaultParallelism

    def cached(batches):
        import os

        from udfs import scoring

        for batch in batches:
            yield pa.RecordBatch.from_pydict({"pid": [os.getpid()] * batch.num_rows,
                                              "ready": [all(k in scoring._CACHE for k in keys)] * batch.num_rows})

    seen = spark.range(8, numPartitions=8).mapInArrow(cached, "pid long, ready boolean").collect()
    # The next SQL Python tasks run in the warmed workers (not in a separate pool) and find both
    # models already loaded.
    assert {r["pid"] for r in seen} <= set(warmup.pids)
    assert all(r["ready"] for r in seen)


def test_a_failing_warmup_is_not_an_error(spark, tiny_models, caplog):
    from counterweight.label import WorkerWarmup
    from udfs.scoring import ModelSpec, ScoreOptions

    missing = ModelSpec("/nonexistent/topic.ftz", "0" * 64, TOPICS)
    opts = ScoreOptions(topic=missing, stance=missing, ai_topics=AI_TOPICS, window_words=400, max_windows=24,
                        top_k=2)
    with caplog.at_level("INFO", logger="counterweight.label"):
        warmup = WorkerWarmup(spark, opts)
        warmup.wait()
    assert warmup.pids == []
    assert "scoring starts cold" in caplog.text
    assert spark.range(3).count() == 3  # the session is fine


def test_a_swapped_model_with_the_same_file_name_reaches_the_workers(spark, tiny_models, tmp_path):
    from counterweight import label as label_job
    from udfs.scoring import ModelSpec, file_sha256

    # Two models with one base name, as when a retrained stance.bin replaces the committed one.
    first, second = tmp_path / "a" / "swapcheck.bin", tmp_path / "b" / "swapcheck.bin"
    first.parent.mkdir()
    second.parent.mkdir()
    shutil.copy(tiny_models.stance, first)
    shutil.copy(tiny_models.stance_alt, second)
    specs = [label_job.ship_model(spark, ModelSpec(str(p), file_sha256(str(p)), ("villain", "aligned", "neutral")))
             for p in (first, second)]
    assert specs[0].file_name != specs[1].file_name
    names = [s.file_name for s in specs]

    def shipped_sha(_):
        import hashlib as h

        from pyspark import SparkFiles

        for name in names:
            with open(SparkFiles.get(name), "rb") as handle:
                yield name, h.sha256(handle.read()).hexdigest()

    seen = set(spark.sparkContext.parallelize(range(2), 2).mapPartitions(shipped_sha).collect())
    assert seen == {(names[0], tiny_models.stance_sha), (names[1], tiny_models.stance_alt_sha)}


# --- bad models are bad input -----------------------------------------------------------------------
@pytest.mark.parametrize(("overrides", "found", "configured"), [
    (["model.topic.labels=[ai_fiction,ai_nonfiction,other,extra]"],
     "['ai_fiction', 'ai_nonfiction', 'other']", "['ai_fiction', 'ai_nonfiction', 'extra', 'other']"),
    (["model.stance.labels=[villain,aligned,neutral,hero]", "model.stance.fallback=hero"],
     "['aligned', 'neutral', 'villain']", "['aligned', 'hero', 'neutral', 'villain']"),
])
def test_label_mismatch_is_bad_input(spark, tiny_models, lake_root, overrides, found, configured):
    with pytest.raises(BadInputError) as info:
        label(spark, lake_root, tiny_models, *overrides)
    message = str(info.value)
    name = "topic" if "topic" in overrides[0] else "stance"
    assert str(getattr(tiny_models, name)) in message
    assert found in message and configured in message
    assert not (lake_root / "labels").exists()


def test_missing_model_is_bad_input(spark, tiny_models, lake_root, tmp_path):
    missing = tmp_path / "models" / "no_such_topic.ftz"
    with pytest.raises(BadInputError, match="no_such_topic.ftz") as info:
        cli.run("label", [f"lake.root={lake_root}", f"model.topic.path={missing}",
                          f"model.stance.path={tiny_models.stance}"], spark=spark)
    assert str(missing) in str(info.value) and "model.topic.path" in str(info.value)


@pytest.mark.parametrize("content", [random.Random(7).randbytes(4096), b"", b'{"not": "a model"}\n'])
def test_corrupt_model_is_bad_input(spark, tiny_models, lake_root, tmp_path, content):
    corrupt = tmp_path / "stance.bin"
    corrupt.write_bytes(content)
    with pytest.raises(BadInputError, match="not a readable fastText model") as info:
        label(spark, lake_root, tiny_models, stance=corrupt)
    assert str(corrupt) in str(info.value) and "model.stance.path" in str(info.value)


def test_label_without_documents_is_bad_input(spark, tiny_models, lake_root):
    with pytest.raises(BadInputError, match="documents"):
        label(spark, lake_root, tiny_models)


# --- percentile thresholds --------------------------------------------------------------------------
def test_percentile_threshold_keeps_villain_to_the_top_scores(spark, first_run, tiny_models, tmp_path):
    _, _, plain = first_run
    n_ai = sum(r["topic"] in AI_TOPICS for r in plain.values())
    bound = math.ceil(0.1 * n_ai) + 1
    # Without a threshold far more documents are villain, so the bound below is a real constraint.
    assert sum(r["stance"] == "villain" for r in plain.values()) > bound

    lake_root = copy_lake(first_run[0], tmp_path)
    summary = label(spark, lake_root, tiny_models, "+model.stance.thresholds.villain=p90", "label.relabel_all=true")
    assert summary["scored"] == len(CORPUS)
    labels = read_labels(lake_root)
    villains = [r for r in labels.values() if r["stance"] == "villain"]
    assert 1 <= len(villains) <= bound
    threshold = summary["thresholds"]["stance"]["villain"]
    assert all(r["p_villain"] >= threshold for r in villains)
    # Every AI document below the threshold fell back to another stance.
    assert all(r["stance"] != "villain" for r in labels.values()
               if r["topic"] in AI_TOPICS and r["p_villain"] < threshold)


# --- scan splits ------------------------------------------------------------------------------------
def test_scan_splits_gives_scoring_tasks_for_every_core_and_restores_the_session(spark, tmp_path):
    """8 small files: Spark's default packing (about 2 splits on local[2]) would leave cores idle
    on long scoring tasks; inside scan_splits(4) the scan has at least 4 x 2 splits."""
    from counterweight.label import scan_splits

    path = tmp_path / "files"
    spark.range(0, 8000).selectExpr("id", "repeat('x', 200) as text").repartition(8).write.parquet(str(path))
    key, size_key = "spark.sql.files.minPartitionNum", "spark.sql.files.maxPartitionBytes"
    before, size_before = spark.conf.get(key, None), spark.conf.get(size_key)
    outside = spark.read.parquet(str(path)).rdd.getNumPartitions()
    with scan_splits(spark, 4, 1 << 20):
        assert spark.conf.get(key) == str(4 * spark.sparkContext.defaultParallelism)
        assert spark.conf.get(size_key) == str(1 << 20)
        inside = spark.read.parquet(str(path)).rdd.getNumPartitions()
    assert spark.sparkContext.defaultParallelism == 2
    assert outside < 8 <= inside
    assert spark.conf.get(key, None) == before and spark.conf.get(size_key) == size_before

"""Label: ``documents`` -> ``labels`` (topic for every document, stance for AI documents).

    .venv/bin/spark-submit --files models/topic.ftz,models/stance.ftz jobs/label.py lake.root=./lake

Labels are facts about documents, never decisions: the mix job reads them. Each row records
the sha256 of the models that produced it, so a re-run scores only documents that have no label
from the current models (or whose text changed), and swapping a model relabels everything it
touched. Models reach executors through ``SparkContext.addFile`` (or ``--files``) and load once
per Python worker (``udfs.scoring``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from counterweight import columns as C
from counterweight.config import parse_threshold
from counterweight.errors import BadInputError
from counterweight.progress import stage
from counterweight.session import session_conf
from udfs import scoring
from udfs.scoring import ModelSpec, ScoreOptions

log = logging.getLogger(__name__)

STANCE_NONE = "none"  # stance of documents whose topic is not an AI topic (as in the rubric)


def resolve_model_path(path: str) -> str:
    """A model path as given, else relative to the project root (so jobs work from any directory)."""
    if "://" in path or os.path.isabs(path) or os.path.exists(path):
        return os.path.abspath(path) if "://" not in path else path
    repo_relative = Path(__file__).resolve().parent.parent / path
    return str(repo_relative) if repo_relative.exists() else os.path.abspath(path)


def model_spec(name: str, model_cfg) -> ModelSpec:
    """Check the configured model file ``model.<name>`` on the driver and describe it for the executors.

    Fails with BadInputError if the file is missing or unreadable, if its labels differ from
    ``model.<name>.labels`` in the config, or if ``model.engine=native`` cannot run it.
    """
    clf_cfg = model_cfg[name]
    engine = model_cfg.engine.value if hasattr(model_cfg.engine, "value") else str(model_cfg.engine)
    path = resolve_model_path(clf_cfg.path)
    key = f"model.{name}.path"
    if not os.path.isfile(path):
        raise BadInputError(f"{key}: model file {path} not found; train one with `make train` or fix the path")
    try:
        import fasttext

        fasttext.FastText.eprint = lambda *a, **k: None
        model = fasttext.load_model(path)
    except Exception as exc:  # noqa: BLE001 - fastText raises ValueError/RuntimeError on bad files
        raise BadInputError(f"{key}: {path} is not a readable fastText model ({exc})") from None
    found = sorted(label.removeprefix(scoring.LABEL_PREFIX) for label in model.get_labels())
    expected = sorted(clf_cfg.labels)
    if found != expected:
        raise BadInputError(
            f"{key}: model {path} has labels {found} but model.{name}.labels is {expected}; "
            f"use the matching model or set model.{name}.labels to the model's labels"
        )
    if engine == "native":
        from udfs import native_fasttext

        try:
            native_fasttext.NativeModel(path)
        except native_fasttext.UnsupportedModel as exc:
            raise BadInputError(f"model.engine=native: {exc}; use model.engine=auto or fasttext") from None
    return ModelSpec(path=path, sha256=scoring.file_sha256(path), labels=tuple(clf_cfg.labels), engine=engine)


def prob_col(label: str) -> str:
    return f"p_{label}"


def score_options(cfg, topic: ModelSpec, stance: ModelSpec, spark=None) -> ScoreOptions:
    """What the scoring function needs on the executors; with ``spark``, the model files are
    shipped there."""
    if spark is not None:
        topic, stance = (ship_model(spark, spec) for spec in (topic, stance))
    return ScoreOptions(
        topic=topic, stance=stance, ai_topics=tuple(cfg.model.ai_topics), window_words=cfg.model.window_words,
        max_windows=cfg.model.max_windows, top_k=cfg.model.top_k,
    )


def score(spark, docs, cfg, opts: ScoreOptions):
    """Probability columns for ``docs`` (doc_id, text_hash, text): one mapInArrow pass."""
    from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

    topic, stance = opts.topic, opts.stance
    keep = [C.DOC_ID, C.TEXT_HASH]
    fields = [docs.schema[c] for c in keep]
    fields += [StructField(prob_col(l), DoubleType()) for l in topic.labels]
    fields += [StructField(prob_col(l), DoubleType()) for l in stance.labels]
    fields += [StructField(C.N_CHUNKS, IntegerType())]
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(cfg.label.batch_rows))
    return docs.select(*keep, C.TEXT).mapInArrow(
        lambda batches: scoring.label_batches(batches, opts, C.TEXT, keep), StructType(fields)
    )


class WorkerWarmup:
    """Start the Python workers and load the models in them while the driver plans the job.

    A fresh session's first scoring task on each core also paid for forking its Python worker,
    importing the scoring code, loading both models and the compiled scoring functions: about
    1.7 s (docs/benchmarks.md, item 8). One tiny task per core does that in a background job
    while the driver reads the Delta log and lists files; the scoring tasks then reuse those
    workers (``spark.python.worker.reuse``, on by default). The warm-up is an optimisation
    only: if it fails, the scoring job runs (and reports any real problem) as it would have.
    It uses ``mapInArrow`` like the scoring pass, because Spark keeps SQL and RDD Python workers
    in separate pools.
    """

    def __init__(self, spark, opts: ScoreOptions):
        import threading

        self._error = None
        self.pids: list[int] = []
        self._thread = threading.Thread(target=self._run, args=(spark, opts), name="counterweight-warmup",
                                        daemon=True)
        self._thread.start()

    def _run(self, spark, opts: ScoreOptions) -> None:
        try:
            cores = spark.sparkContext.defaultParallelism
            spark.sparkContext.setJobDescription("label: start Python workers and load the models")
            df = spark.range(cores, numPartitions=cores).mapInArrow(
                lambda batches: scoring.warm_batches(batches, opts), "pid long")
            self.pids = [row[0] for row in df.collect()]
        except Exception as exc:  # noqa: BLE001 - optimisation only; the scoring job reports real errors
            self._error = exc
        finally:
            spark.sparkContext.setJobDescription(None)

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            log.info("label: warming the Python workers failed (%s); scoring starts cold", self._error)


def ship_model(spark, spec: ModelSpec) -> ModelSpec:
    """Ship a local model file to the executors under a name unique to its content.

    SparkContext.addFile refuses a second file with the same base name, so ``models/stance.ftz``
    and a retrained ``candidates/stance.ftz`` would collide: the copy shipped is named
    ``<sha256 prefix>-<name>``, and executors look it up by that name (see udfs.scoring._locate).
    """
    if "://" in spec.path or not os.path.isfile(spec.path):
        return spec  # on shared storage: executors read the path itself
    ship_name = f"{spec.sha256[:16]}-{os.path.basename(spec.path)}"
    listed = {os.path.basename(f) for f in spark.sparkContext.listFiles}
    if ship_name not in listed:
        staging = Path(tempfile.mkdtemp(prefix="counterweight-models-"))
        shutil.copyfile(spec.path, staging / ship_name)
        spark.sparkContext.addFile(str(staging / ship_name))
    return dataclasses.replace(spec, ship_name=ship_name)


def needs_percentiles(cfg) -> bool:
    """Whether any configured threshold is a percentile (computed over this run's scores)."""
    return any(parse_threshold(label, value)[0] != "abs"
               for clf in (cfg.model.topic, cfg.model.stance) for label, value in clf.thresholds.items())


def resolve_thresholds(scored, clf_cfg) -> dict[str, float]:
    """Absolute thresholds, with percentiles ("p95") computed over this run's scores."""
    out = {}
    for label, value in clf_cfg.thresholds.items():
        kind, number = parse_threshold(label, value)
        if kind == "abs":
            out[label] = number
        else:
            column = prob_col(label)
            quantile = scored.where(scored[column].isNotNull()).approxQuantile(column, [number / 100.0], 0.001)
            out[label] = float(quantile[0]) if quantile else 1.0
    return out


def _decide(labels, thresholds: dict[str, float], fallback: str):
    """Spark column: the most probable label among those reaching their threshold, else fallback."""
    from pyspark.sql import functions as F

    scores = [
        F.when(F.col(prob_col(l)) >= F.lit(thresholds.get(l, -1.0)), F.col(prob_col(l))).otherwise(F.lit(-1.0))
        for l in labels
    ]
    best = F.greatest(*scores) if len(scores) > 1 else scores[0]
    chosen = F.lit(fallback)
    for label, s in reversed(list(zip(labels, scores))):  # first label wins ties
        chosen = F.when((s == best) & (best >= 0), F.lit(label)).otherwise(chosen)
    return chosen


def decide(scored, cfg, topic: ModelSpec, stance: ModelSpec, topic_thresholds: dict, stance_thresholds: dict):
    """Add topic/stance decisions and their scores to scored rows."""
    from pyspark.sql import functions as F

    scored = scored.withColumn(C.TOPIC, _decide(topic.labels, topic_thresholds, cfg.model.topic.fallback))
    is_ai = F.col(C.TOPIC).isin(*cfg.model.ai_topics)
    has_stance = F.col(prob_col(stance.labels[0])).isNotNull()
    stance_choice = _decide(stance.labels, stance_thresholds, cfg.model.stance.fallback)
    out = scored.withColumn(
        C.STANCE, F.when(is_ai & has_stance, stance_choice).when(is_ai, F.lit(cfg.model.stance.fallback))
        .otherwise(F.lit(STANCE_NONE))
    )
    for label in stance.labels:
        out = out.withColumn(prob_col(label), F.when(is_ai, F.col(prob_col(label))))
    topic_score = F.coalesce(*[F.when(F.col(C.TOPIC) == l, F.col(prob_col(l))) for l in topic.labels])
    stance_score = F.coalesce(*[F.when(F.col(C.STANCE) == l, F.col(prob_col(l))) for l in stance.labels])
    return out.withColumn(C.TOPIC_SCORE, topic_score).withColumn(C.STANCE_SCORE, stance_score)


@contextlib.contextmanager
def scan_splits(spark, tasks_per_core: int, max_split_bytes: int | None = None):
    """File-scan splits sized for long scoring tasks while the job runs; the session's values are
    restored afterwards.

    Spark packs files into splits of up to spark.sql.files.maxPartitionBytes (128 MiB): a 300 MB
    documents table became 3 scoring tasks on 2 cores (one core idle for the last third), and
    1 GB became 9 (one core idle for the last ninth). So: at least ``tasks_per_core`` splits per
    core (spark.sql.files.minPartitionNum) and splits of at most ``max_split_bytes``.
    """
    settings = {"spark.sql.files.minPartitionNum": str(tasks_per_core * spark.sparkContext.defaultParallelism)}
    if max_split_bytes:
        settings["spark.sql.files.maxPartitionBytes"] = str(max_split_bytes)
    with session_conf(spark, settings):
        yield


def run(ctx) -> dict:
    with scan_splits(ctx.spark, ctx.cfg.label.tasks_per_core, ctx.cfg.label.max_split_bytes):
        return _run(ctx)


def _run(ctx) -> dict:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    cfg, spark, lake = ctx.cfg, ctx.spark, ctx.lake
    topic = model_spec("topic", cfg.model)
    stance = model_spec("stance", cfg.model)
    lake.require(C.DOCUMENTS)
    opts = score_options(cfg, topic, stance, spark)
    warmup = WorkerWarmup(spark, opts)
    with stage("label: select documents") as st:
        docs = lake.read(C.DOCUMENTS).select(C.DOC_ID, C.TEXT_HASH, C.TEXT)
        base_version = None
        if lake.exists(C.LABELS) and not cfg.label.relabel_all:
            current = lake.read(C.LABELS)
            base_version = lake.lineage.input_versions[C.LABELS]
            done = current.where(
                (F.col(C.TOPIC_MODEL) == topic.sha256) & (F.col(C.STANCE_MODEL) == stance.sha256)
            ).select(C.DOC_ID, C.TEXT_HASH)
            docs = docs.join(done, on=[C.DOC_ID, C.TEXT_HASH], how="left_anti")
        elif lake.exists(C.LABELS):
            base_version = lake.version(C.LABELS)
        n_docs = lake.row_count(C.DOCUMENTS, lake.lineage.input_versions[C.DOCUMENTS])  # from the log
        everything = base_version is None or cfg.label.relabel_all
        n_todo = n_docs if everything and n_docs is not None else docs.count()
        # When every document gets a new label (relabel_all, or new models), the labels table is
        # rewritten in one commit instead of merged: the merge would join all of it against the new
        # labels only to replace every row (10 s instead of 3 s at 400k documents).
        rewrite = base_version is not None and n_docs is not None and 0 < n_todo == n_docs
        st.rows = n_todo
        st.notes.append("documents needing labels from the current models")
    now = datetime.now(timezone.utc)
    with stage("label: score") as st:
        # Cached on disk, not on the heap: in local mode the driver JVM is also the executor, and
        # an in-memory cache would make driver memory grow with N. scored is only re-read to
        # compute percentile thresholds.
        scored = score(spark, docs, cfg, opts)
        if needs_percentiles(cfg):
            scored = scored.persist(StorageLevel.DISK_ONLY)
        topic_t = resolve_thresholds(scored, cfg.model.topic)
        stance_t = resolve_thresholds(scored, cfg.model.stance)
        labelled = decide(scored, cfg, topic, stance, topic_t, stance_t)
        out = labelled.select(
            C.DOC_ID, C.TEXT_HASH, C.TOPIC, C.TOPIC_SCORE, *[prob_col(l) for l in topic.labels],
            C.STANCE, C.STANCE_SCORE, *[prob_col(l) for l in stance.labels], C.N_CHUNKS,
            F.lit(topic.sha256).alias(C.TOPIC_MODEL), F.lit(stance.sha256).alias(C.STANCE_MODEL),
            F.lit(now).alias(C.LABELED_AT), F.lit(ctx.run_id).alias(C.RUN_ID),
        ).persist(StorageLevel.DISK_ONLY)
        counts = {(r[0], r[1]): r[2] for r in out.groupBy(C.TOPIC, C.STANCE).count().collect()}
        warmup.wait()  # long done: its tasks ran before the scoring tasks queued behind them
        st.rows = sum(counts.values())
    summary = {
        "scored": sum(counts.values()),
        "by_topic_stance": {f"{t}/{s}": n for (t, s), n in sorted(counts.items())},
        "models": {"topic": {"path": topic.path, "sha256": topic.sha256},
                   "stance": {"path": stance.path, "sha256": stance.sha256}},
        "thresholds": {"topic": topic_t, "stance": stance_t},
        "write": "append" if base_version is None else "overwrite" if rewrite else "merge",
    }
    if summary["scored"] != n_todo:
        from counterweight.errors import ReconciliationError

        raise ReconciliationError(f"label scored {summary['scored']} documents but {n_todo} needed labels")
    with stage("label: write labels") as st:
        if base_version is None:
            result = lake.append(C.LABELS, out, extra={"label": summary}, expect_version=None)
        elif rewrite:  # labels of documents no longer in documents go with the old rows
            result = lake.overwrite(C.LABELS, out, extra={"label": summary}, expect_version=base_version)
        else:
            result = lake.merge(C.LABELS, out, [C.DOC_ID], when_matched="update", extra={"label": summary})
        st.rows = result.rows
    scored.unpersist()
    out.unpersist()
    summary["labels_version"] = result.version
    print("label counts: " + ", ".join(f"{k}={v}" for k, v in summary["by_topic_stance"].items()))
    return summary

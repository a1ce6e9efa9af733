"""Read-only views of a lake for people: the report job and the notebooks both call these.

Each function returns small pandas DataFrames or dicts computed with Spark aggregations (a
document's text is only fetched for the few sample rows), and each ``plot_*`` draws one chart on a
matplotlib Axes. Nothing here writes a table.
"""

from __future__ import annotations

import json
from typing import Optional

import pandas as pd

from counterweight import columns as C
from counterweight.lake import Lake, lineage_of

BINS = 20


def composition(lake: Lake, mix_name: str, version: Optional[int] = None) -> pd.DataFrame:
    """The mix_report rows of ``mix_name``: per bucket docs/tokens before and after, weights, targets."""
    from pyspark.sql import functions as F

    report = lake.read(C.MIX_REPORT, version=version, track=False).where(F.col(C.MIX_NAME) == mix_name)
    df = report.toPandas()
    if df.empty:
        raise ValueError(f"mix '{mix_name}' not found in {lake.path(C.MIX_REPORT)}")
    return df.sort_values("position").reset_index(drop=True)


def targets(comp: pd.DataFrame) -> pd.DataFrame:
    """Targets vs achieved values of the policy, one row per target."""
    row = comp.iloc[0]
    wanted, got = json.loads(row["targets"]), json.loads(row["achieved"])
    return pd.DataFrame([{"target": k, "wanted": v, "achieved": got.get(k)} for k, v in wanted.items()],
                        columns=["target", "wanted", "achieved"])


def stance_histograms(lake: Lake, labels: list[str] = ("villain", "aligned", "neutral")) -> pd.DataFrame:
    """Counts of documents per (topic, stance label, score bin of width 1/BINS)."""
    from pyspark.sql import functions as F

    df = lake.read(C.LABELS, track=False)
    frames = []
    for label in labels:
        col = f"p_{label}"
        if col not in df.columns:
            continue
        binned = (df.where(F.col(col).isNotNull())
                  .groupBy(C.TOPIC, F.least(F.floor(F.col(col) * BINS), F.lit(BINS - 1)).alias("bin"))
                  .count().toPandas())
        binned["label"] = label
        frames.append(binned)
    if not frames:
        return pd.DataFrame(columns=[C.TOPIC, "bin", "count", "label"])
    return pd.concat(frames, ignore_index=True)


def label_counts(lake: Lake) -> pd.DataFrame:
    return lake.read(C.LABELS, track=False).groupBy(C.TOPIC, C.STANCE).count().orderBy(C.TOPIC, C.STANCE).toPandas()


def samples(lake: Lake, mix_name: str, per_bucket: int = 3, chars: int = 400, seed: int = 1) -> pd.DataFrame:
    """A few documents from every bucket, chosen by hash (the same ones every time)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from counterweight.mix import unit_hash_col

    mix = lake.read(C.MIX, track=False).where(F.col(C.MIX_NAME) == mix_name)
    ranked = mix.withColumn("_r", F.row_number().over(
        Window.partitionBy(C.BUCKET).orderBy(unit_hash_col(F.col(C.DOC_ID), seed, "sample"))))
    picked = ranked.where(F.col("_r") <= per_bucket).select(
        C.BUCKET, C.DOC_ID, C.TOPIC, C.STANCE, C.STANCE_SCORE, C.REPEATS, C.TOKENS,
        F.substring(C.TEXT, 1, chars).alias("excerpt"))
    return picked.orderBy(C.BUCKET, C.DOC_ID).toPandas()


def lineage(lake: Lake, mix_name: str) -> dict:
    """Where the latest commit of ``mix_name`` came from: inputs, models, policy, run."""
    from deltalake import DeltaTable

    dt = DeltaTable(lake.path(C.MIX))
    for entry in dt.history():
        mix_meta = entry.get("counterweight.mix")
        if mix_meta and json.loads(mix_meta).get("mix_name") == mix_name:
            meta = lineage_of(lake.root, C.MIX, int(entry["version"]))
            labels_meta = {}
            label_version = (meta.get("input_versions") or {}).get(C.LABELS)
            if label_version is not None:
                labels_meta = lineage_of(lake.root, C.LABELS, label_version).get("label", {})
            return {
                "mix_version": int(entry["version"]),
                "run_id": meta.get("run_id"),
                "config_hash": meta.get("config_hash"),
                "input_versions": meta.get("input_versions"),
                "models": labels_meta.get("models"),
                "policy": meta.get("policy"),
                "counterweight_version": meta.get("version"),
            }
    raise ValueError(f"no commit of mix '{mix_name}' in {lake.path(C.MIX)}")


def mix_versions(lake: Lake, mix_name: str) -> list[int]:
    """Table versions of ``mix`` whose commit wrote ``mix_name`` (newest first)."""
    from deltalake import DeltaTable

    out = []
    for entry in DeltaTable(lake.path(C.MIX)).history():
        meta = entry.get("counterweight.mix")
        if meta and json.loads(meta).get("mix_name") == mix_name:
            out.append(int(entry["version"]))
    return out


def compare_versions(lake: Lake, mix_name: str, old: int, new: int) -> pd.DataFrame:
    """Per bucket tokens and documents of ``mix_name`` at two mix table versions (Delta time travel)."""
    from pyspark.sql import functions as F

    frames = []
    for tag, version in (("old", old), ("new", new)):
        mix = lake.read(C.MIX, version=version, track=False).where(F.col(C.MIX_NAME) == mix_name)
        agg = mix.groupBy(C.BUCKET).agg(
            F.sum(F.when(F.col(C.REPEATS) > 0, 1).otherwise(0)).alias(f"docs_{tag}"),
            F.sum(F.col(C.REPEATS) * F.col(C.TOKENS)).alias(f"tokens_{tag}")).toPandas()
        frames.append(agg.set_index(C.BUCKET))
    out = frames[0].join(frames[1], how="outer").fillna(0).astype("int64").reset_index()
    out["tokens_change"] = out["tokens_new"] - out["tokens_old"]
    return out


# --- charts ------------------------------------------------------------------------------------
def plot_composition(comp: pd.DataFrame, ax, what: str = "tokens") -> None:
    """Grouped bars per bucket: before vs after, in tokens (default) or documents."""
    import numpy as np

    before, after = (f"{what}_before", f"{what}_after") if what == "tokens" else ("docs_before", "docs_after")
    x = np.arange(len(comp))
    ax.bar(x - 0.2, comp[before], width=0.4, label="before")
    ax.bar(x + 0.2, comp[after], width=0.4, label="after")
    ax.set_xticks(x)
    ax.set_xticklabels(comp[C.BUCKET], rotation=20, ha="right")
    ax.set_yscale("symlog")
    ax.set_ylabel(what if what == "tokens" else "documents")
    ax.set_title(f"mix composition by bucket ({'tokens' if what == 'tokens' else 'documents'})")
    ax.legend()


def plot_stance_histograms(hist: pd.DataFrame, axes) -> None:
    """One panel per stance label: score distribution per topic."""
    labels = sorted(hist["label"].unique()) if not hist.empty else []
    for ax, label in zip(axes, labels):
        part = hist[hist["label"] == label]
        for topic, rows in part.groupby(C.TOPIC):
            rows = rows.sort_values("bin")
            ax.step((rows["bin"] + 0.5) / BINS, rows["count"], where="mid", label=str(topic))
        ax.set_title(f"p_{label} by topic")
        ax.set_xlabel(f"p_{label}")
        ax.set_ylabel("documents")
        ax.set_yscale("symlog")
        ax.legend(fontsize="small")


# --- helpers for the notebooks (label quality, lineage, version comparison) --------------------
def score_histograms(lake: Lake, columns: Optional[list[str]] = None) -> pd.DataFrame:
    """Counts of labelled documents per (score column, topic, score bin of width 1/BINS), in one scan.

    ``columns`` defaults to topic_score, stance_score and every ``p_*`` column of the labels table.
    Null scores (the stance columns of non-AI documents) are not counted; a score of 1.0 falls in
    the last bin. Rows come out sorted by column (in the order given), topic and bin.
    """
    from pyspark.sql import functions as F

    df = lake.read(C.LABELS, track=False)
    if columns is None:
        columns = [c for c in (C.TOPIC_SCORE, C.STANCE_SCORE) if c in df.columns]
        columns += [c for c in df.columns if c.startswith("p_")]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"labels table has no column {missing}; its columns: {', '.join(df.columns)}")
    pairs = F.explode(F.array(*[F.struct(F.lit(c).alias("column"), F.col(c).cast("double").alias("value"))
                                for c in columns])).alias("s")
    counts = (df.select(C.TOPIC, pairs).where(F.col("s.value").isNotNull())
              .groupBy(F.col("s.column").alias("column"), C.TOPIC,
                       F.least(F.floor(F.col("s.value") * BINS), F.lit(BINS - 1)).cast("int").alias("bin"))
              .count().toPandas())
    counts["column"] = pd.Categorical(counts["column"], categories=list(columns), ordered=True)
    counts = counts.sort_values(["column", C.TOPIC, "bin"]).reset_index(drop=True)
    counts["column"] = counts["column"].astype(str)
    return counts[["column", C.TOPIC, "bin", "count"]]


def plot_score_histograms(hist: pd.DataFrame, axes) -> None:
    """One panel per score column (in the order of ``hist``): its distribution per topic. Spare panels are hidden."""
    axes = list(axes)
    columns = list(dict.fromkeys(hist["column"]))
    for ax, column in zip(axes, columns):
        for topic, rows in hist[hist["column"] == column].groupby(C.TOPIC):
            rows = rows.sort_values("bin")
            ax.step((rows["bin"] + 0.5) / BINS, rows["count"], where="mid", label=str(topic))
        ax.set_title(column)
        ax.set_xlim(0, 1)
        ax.set_xlabel("score")
        ax.set_ylabel("documents")
        ax.set_yscale("symlog")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize="small")
    for ax in axes[len(columns):]:
        ax.set_visible(False)


def dev_metrics(spark, cfg, path: str) -> dict:
    """Score a labelled JSONL (id, text, topic, stance) through the real label path and compare with its labels.

    Runs the evaluate job's code (:func:`counterweight.evaluate.run`: ``load_gold`` -> ``label.score``
    -> ``label.decide`` with ``cfg``'s models and thresholds -> ``train.metrics``) and returns its
    full report: ``topic``, ``stance_end_to_end`` and ``stance_on_gold_ai``, each with per-label
    precision/recall/F1, macro-F1, accuracy and the confusion matrix. The job's JSON output goes to a
    temporary directory that is removed afterwards, and its printed summary is not echoed.
    """
    import contextlib
    import io
    import tempfile
    import types
    from pathlib import Path

    from counterweight import config as config_module
    from counterweight import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        plain = config_module.to_plain(cfg)
        plain["evaluate"] = {"path": str(path), "out": str(Path(tmp) / "metrics.json")}
        run_cfg = config_module.validate(plain)
        with contextlib.redirect_stdout(io.StringIO()):
            evaluate.run(types.SimpleNamespace(cfg=run_cfg, spark=spark))
        return json.loads((Path(tmp) / "metrics.json").read_text())


def metrics_table(m: dict) -> pd.DataFrame:
    """Per-label precision, recall, F1 and support of one :func:`counterweight.train.metrics` result."""
    rows = [{"label": label, **values} for label, values in m["per_label"].items()]
    return pd.DataFrame(rows, columns=["label", "precision", "recall", "f1", "support"])


def confusion_frame(m: dict) -> pd.DataFrame:
    """The confusion matrix of one metrics result: rows are gold labels, columns predicted labels."""
    labels = list(m["confusion"])
    frame = pd.DataFrame([[m["confusion"][g][p] for p in labels] for g in labels], index=labels, columns=labels)
    frame.index.name, frame.columns.name = "gold", "predicted"
    return frame


def plot_confusion(m: dict, ax, title: str) -> None:
    """The confusion matrix as a heat map with the count in every cell."""
    frame = confusion_frame(m)
    ax.imshow(frame.to_numpy(), cmap="Blues")
    ax.set_xticks(range(len(frame.columns)))
    ax.set_xticklabels(frame.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(frame.index)))
    ax.set_yticklabels(frame.index)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    top = frame.to_numpy().max() if frame.size else 0
    for i, gold in enumerate(frame.index):
        for j, pred in enumerate(frame.columns):
            value = int(frame.loc[gold, pred])
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > top / 2 else "black")
    ax.set_title(f"{title} (macro-F1 {m['macro_f1']:.2f})")


def lineage_tables(lin: dict) -> dict[str, pd.DataFrame]:
    """The result of :func:`lineage` as small tables: ``inputs``, ``models``, ``policy`` settings, ``buckets``."""
    inputs = pd.DataFrame(sorted((lin.get("input_versions") or {}).items()), columns=["table", "version"])
    models = pd.DataFrame([{"model": name, "sha256": (m or {}).get("sha256"), "path": (m or {}).get("path")}
                           for name, m in sorted((lin.get("models") or {}).items())],
                          columns=["model", "sha256", "path"])
    policy = dict(lin.get("policy") or {})
    buckets = policy.pop("buckets", [])

    def flatten(prefix: str, value) -> list[tuple[str, str]]:
        if isinstance(value, dict) and value:
            return [item for k, v in value.items() for item in flatten(f"{prefix}.{k}" if prefix else k, v)]
        return [(prefix, json.dumps(value) if isinstance(value, (list, dict)) else str(value))]

    settings = pd.DataFrame(sorted(flatten("", policy)), columns=["setting", "value"])
    bucket_rows = []
    for b in buckets:
        when = b.get("when") or {}
        condition = [f"{k} in {when[k]}" for k in ("topic", "stance", "source") if when.get(k)]
        condition += [f"{col} >= {v}" for col, v in (when.get("min") or {}).items()]
        condition += [f"{col} < {v}" for col, v in (when.get("max") or {}).items()]
        bucket_rows.append({"bucket": b.get("name"), "action": b.get("action"), "weight": b.get("weight"),
                            "when": " and ".join(condition) or "(everything else)"})
    return {"inputs": inputs, "models": models, "policy": settings,
            "buckets": pd.DataFrame(bucket_rows, columns=["bucket", "action", "weight", "when"])}


def comparison_versions(versions: list[int], mix_name: str, requested: Optional[int] = None) -> tuple[int, int, str]:
    """Which two ``mix`` table versions to compare for ``mix_name``, and a sentence saying why.

    ``versions`` is :func:`mix_versions` (newest first). The newer side is always the latest commit
    of the mix; the older is ``requested`` if given, else the previous commit of the mix, else the
    latest itself (a mix written once is compared with itself, and the sentence says so).
    """
    if not versions:
        raise ValueError(f"mix '{mix_name}' has no commits in the mix table")
    new = versions[0]
    if requested is not None:
        if requested < 0 or requested > new:
            raise ValueError(f"compare_version={requested}: give a mix table version between 0 and {new} "
                             f"(versions that wrote mix '{mix_name}': {versions})")
        note = f"comparing mix '{mix_name}' at mix table version {requested} (requested) with version {new} (latest)"
        if requested == new:
            note += ": the same version, so every change is 0"
        elif requested < versions[-1]:
            note += f"; mix '{mix_name}' did not exist yet at version {requested}, so all of it counts as new"
        elif requested not in versions:
            note += f"; version {requested} was written by another mix, so it shows '{mix_name}' as it was then"
        return requested, new, note
    if len(versions) == 1:
        return new, new, (f"only one version of mix '{mix_name}' exists (mix table version {new}): "
                          f"comparing it with itself, so every change is 0")
    old = versions[1]
    return old, new, f"comparing mix '{mix_name}' at mix table version {old} (previous) with version {new} (latest)"


def plot_compare_versions(diff: pd.DataFrame, ax, old: int, new: int) -> None:
    """Grouped bars per bucket: tokens at the older and the newer mix table version."""
    import numpy as np

    x = np.arange(len(diff))
    ax.bar(x - 0.2, diff["tokens_old"], width=0.4, label=f"old: version {old}")
    ax.bar(x + 0.2, diff["tokens_new"], width=0.4, label=f"new: version {new}")
    ax.set_xticks(x)
    ax.set_xticklabels(diff[C.BUCKET], rotation=20, ha="right")
    ax.set_yscale("symlog")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("tokens (repeats x tokens)")
    ax.set_title("mix tokens by bucket: two versions")
    ax.legend()

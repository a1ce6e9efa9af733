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

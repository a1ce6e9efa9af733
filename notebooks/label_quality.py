# Databricks notebook source
# MAGIC %md
# MAGIC # Label quality
# MAGIC
# MAGIC How the topic and stance models labelled the lake, and how well they do on hand-labelled text:
# MAGIC
# MAGIC * score distributions: `topic_score`, `stance_score` and every per-label probability `p_*`, by topic;
# MAGIC * label counts by topic and stance;
# MAGIC * dev-set metrics: a labelled JSONL (`id`, `text`, `topic`, `stance`) scored through the real label path
# MAGIC   (the `evaluate` job's code: same text normalisation, windows, models and thresholds), with precision,
# MAGIC   recall and F1 per label and confusion matrices.
# MAGIC
# MAGIC The notebook only reads tables. Every number comes from `counterweight.inspection` and
# MAGIC `counterweight.evaluate`.
# MAGIC
# MAGIC | parameter (widget) | environment variable (local runs) | default | meaning |
# MAGIC |---|---|---|---|
# MAGIC | `lake_root` | `COUNTERWEIGHT_LAKE_ROOT` | `./lake` | the lake the jobs wrote (`lake.root`) |
# MAGIC | `eval_path` | `COUNTERWEIGHT_EVAL_PATH` | `../shared/eval/dev_labels.jsonl` | labelled JSONL for the dev-set metrics (skipped if absent) |
# MAGIC | `overrides` | `COUNTERWEIGHT_OVERRIDES` | none | Hydra overrides for the project config, e.g. `+model.stance.thresholds.villain=0.6` |
# MAGIC
# MAGIC On Databricks the cluster's `spark` is used. Elsewhere the first cell starts a local SparkSession
# MAGIC (`spark.master=local[2]`) from the project config. Relative paths are relative to the project root.
# MAGIC Headless, keeping the outputs: `COUNTERWEIGHT_LAKE_ROOT=lake .venv/bin/jupyter execute
# MAGIC --output=/tmp/label_quality.executed.ipynb notebooks/label_quality.ipynb`.

# COMMAND ----------

# Setup. Databricks provides `spark`, `display` and `dbutils`; anywhere else (Jupyter, `jupyter execute`,
# plain `python notebooks/label_quality.py`) counterweight.notebook_env stands in for them: a local SparkSession
# built from the project config, display() through IPython (or print), and parameters from environment variables.
import os
import sys

if os.path.basename(os.getcwd()) == "notebooks" and os.path.isfile(os.path.join("..", "pyproject.toml")):
    os.chdir("..")  # Jupyter and Databricks Repos start here in notebooks/; paths are relative to the project
try:
    import counterweight  # noqa: F401
except ImportError:  # a checkout that is not pip-installed
    sys.path.insert(0, os.getcwd())

import matplotlib.pyplot as plt
import pandas as pd

from counterweight import config, inspection, notebook_env
from counterweight import columns as C
from counterweight.lake import Lake, Lineage, lineage_of

env = notebook_env.NotebookEnv(globals())
param, display, show = env.param, env.display, env.show
overrides = param("overrides", "COUNTERWEIGHT_OVERRIDES", "", "config overrides").split()
cfg = config.load(overrides)
spark = env.spark(overrides)

pd.set_option("display.max_colwidth", 160)
pd.set_option("display.width", 200)

# COMMAND ----------

lake_root = param("lake_root", "COUNTERWEIGHT_LAKE_ROOT", "./lake", "lake root")
eval_path = param("eval_path", "COUNTERWEIGHT_EVAL_PATH", "../shared/eval/dev_labels.jsonl", "labelled JSONL")

lake = Lake(spark, lake_root, Lineage(job="notebook", run_id="label_quality", config_hash=config.config_hash(cfg)),
            engine=cfg.lake.engine.value, lock=False)
print(f"lake {lake.root} (engine {lake.engine}); dev set {os.path.abspath(eval_path)}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Score distributions
# MAGIC
# MAGIC One panel per score column of the `labels` table, one line per topic (bins of 0.05, symmetric log scale).
# MAGIC `topic_score` and `stance_score` are the probabilities of the chosen labels; the stance columns are empty
# MAGIC for documents whose topic is not an AI topic.

# COMMAND ----------

scores = inspection.score_histograms(lake)
columns = list(dict.fromkeys(scores["column"]))
print("score columns: " + ", ".join(columns))
rows = (len(columns) + 3) // 4
fig, axes = plt.subplots(rows, 4, figsize=(18, 3.8 * rows), squeeze=False)
inspection.plot_score_histograms(scores, axes.flat)
fig.tight_layout()
show(fig)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Label counts
# MAGIC
# MAGIC Documents per topic and stance (`none` for documents that are not about AI), and the models and thresholds
# MAGIC of the latest label run.

# COMMAND ----------

counts = inspection.label_counts(lake)
by_topic = counts.pivot_table(index=C.TOPIC, columns=C.STANCE, values="count", aggfunc="sum", fill_value=0)
display(by_topic)
print(f"{int(counts['count'].sum()):,} labelled documents")
label_run = lineage_of(lake.root, C.LABELS).get("label", {})
for role, model in sorted((label_run.get("models") or {}).items()):
    print(f"{role} model: {model.get('sha256')} ({model.get('path')})")
print(f"thresholds of the latest label run: {label_run.get('thresholds')}")

fig, ax = plt.subplots(figsize=(9, 4))
by_topic.plot.bar(ax=ax, rot=0)
ax.set_yscale("symlog")
ax.set_ylabel("documents")
ax.set_title("labelled documents by topic and stance")
fig.tight_layout()
show(fig)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Dev-set metrics
# MAGIC
# MAGIC The labelled JSONL goes through the label job's own code path with this project's models and thresholds
# MAGIC (pass `overrides` to match a label run that used other thresholds). Stance is reported twice: end to end
# MAGIC over every record (gold `none` for text that is not about AI), and over the records whose gold topic is an
# MAGIC AI topic.
# MAGIC
# MAGIC Caveat: half of `../shared/eval/dev_labels.jsonl` is used to train the shipped models, so its figures
# MAGIC are optimistic. For held-out figures point `eval_path` at `build/training/dev_holdout.jsonl`
# MAGIC (written by `make train`).

# COMMAND ----------

REPORTS = {"topic": "topic", "stance_end_to_end": "stance, end to end", "stance_on_gold_ai": "stance, gold AI only"}
if os.path.isfile(eval_path):
    dev = inspection.dev_metrics(spark, cfg, eval_path)
    print(f"dev set {dev['path']}: {dev['n']} records; models topic {dev['models']['topic'][:12]}, "
          f"stance {dev['models']['stance'][:12]}")
    for key, title in REPORTS.items():
        m = dev[key]
        print(f"\n{title}: macro-F1 {m['macro_f1']:.3f}, accuracy {m['accuracy']:.3f} (n={m['n']})")
        display(inspection.metrics_table(m))
else:
    dev = None
    print(f"dev-set metrics skipped: no labelled JSONL at {os.path.abspath(eval_path)} "
          f"(set the eval_path widget or COUNTERWEIGHT_EVAL_PATH)")

# COMMAND ----------

# MAGIC %md
# MAGIC ### Confusion matrices
# MAGIC
# MAGIC Rows are gold labels, columns predicted labels.

# COMMAND ----------

if dev is None:
    print("dev-set metrics skipped (see above)")
else:
    for key, title in REPORTS.items():
        print(f"\n{title}:")
        display(inspection.confusion_frame(dev[key]))
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    for ax, (key, title) in zip(axes, REPORTS.items()):
        inspection.plot_confusion(dev[key], ax, title)
    fig.tight_layout()
    show(fig)

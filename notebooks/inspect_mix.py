# Databricks notebook source
# MAGIC %md
# MAGIC # Inspect a mix
# MAGIC
# MAGIC What the `mix` job did to one named mix: the composition before and after, by bucket, in tokens and in
# MAGIC documents; the policy's targets against what it achieved; stance scores by topic; sample documents from
# MAGIC every bucket; the lineage of the mix (input table versions, models, policy); and two versions of the mix
# MAGIC side by side through Delta time travel.
# MAGIC
# MAGIC The notebook only reads tables. Every number comes from `counterweight.inspection`, the same functions
# MAGIC the `report` job uses.
# MAGIC
# MAGIC | parameter (widget) | environment variable (local runs) | default | meaning |
# MAGIC |---|---|---|---|
# MAGIC | `lake_root` | `COUNTERWEIGHT_LAKE_ROOT` | `./lake` | the lake the jobs wrote (`lake.root`) |
# MAGIC | `mix_name` | `COUNTERWEIGHT_MIX_NAME` | `default` | the mix to inspect (`mix.name`) |
# MAGIC | `compare_version` | `COUNTERWEIGHT_COMPARE_VERSION` | the previous commit of the mix | `mix` table version to compare the latest with |
# MAGIC | `overrides` | `COUNTERWEIGHT_OVERRIDES` | none | Hydra overrides for the project config, space separated |
# MAGIC
# MAGIC On Databricks the cluster's `spark` is used. Elsewhere the first cell starts a local SparkSession
# MAGIC (`spark.master=local[2]`) from the project config. Relative paths are relative to the project root.
# MAGIC Headless, keeping the outputs: `COUNTERWEIGHT_LAKE_ROOT=lake .venv/bin/jupyter execute
# MAGIC --output=/tmp/inspect_mix.executed.ipynb notebooks/inspect_mix.ipynb`.

# COMMAND ----------

# Setup. Databricks provides `spark`, `display` and `dbutils`; anywhere else (Jupyter, `jupyter execute`,
# plain `python notebooks/inspect_mix.py`) counterweight.notebook_env stands in for them: a local SparkSession
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
from counterweight.lake import Lake, Lineage

env = notebook_env.NotebookEnv(globals())
param, display, show = env.param, env.display, env.show
overrides = param("overrides", "COUNTERWEIGHT_OVERRIDES", "", "config overrides").split()
cfg = config.load(overrides)
spark = env.spark(overrides)

pd.set_option("display.max_colwidth", 160)
pd.set_option("display.width", 200)

# COMMAND ----------

lake_root = param("lake_root", "COUNTERWEIGHT_LAKE_ROOT", "./lake", "lake root")
mix_name = param("mix_name", "COUNTERWEIGHT_MIX_NAME", "default", "mix name")
compare_raw = param("compare_version", "COUNTERWEIGHT_COMPARE_VERSION", "", "compare with mix table version")
compare_version = int(compare_raw) if compare_raw else None

lake = Lake(spark, lake_root, Lineage(job="notebook", run_id="inspect_mix", config_hash=config.config_hash(cfg)),
            engine=cfg.lake.engine.value, lock=False)
print(f"lake {lake.root} (engine {lake.engine}), mix '{mix_name}'")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Composition before and after
# MAGIC
# MAGIC One row per bucket of the policy, in the order the policy sorts documents into buckets. `before` is the
# MAGIC labelled corpus, `after` the mix (documents with at least one repeat; tokens counted once per repeat).
# MAGIC The charts use a symmetric log scale, so small buckets stay visible next to the background.

# COMMAND ----------

comp = inspection.composition(lake, mix_name)
print(f"mix '{mix_name}': {comp['tokens_before'].sum():,} tokens in {comp['docs_before'].sum():,} documents before, "
      f"{comp['tokens_after'].sum():,} tokens in {comp['docs_after'].sum():,} documents after")
display(comp[["bucket", "action", "docs_before", "docs_after", "tokens_before", "tokens_after", "weight_configured",
              "weight", "token_share_before", "token_share_after", "max_repeats"]])

fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
inspection.plot_composition(comp, axes[0], "tokens")
inspection.plot_composition(comp, axes[1], "docs")
fig.tight_layout()
show(fig)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Targets vs achieved
# MAGIC
# MAGIC The policy's token targets (for `balance`: aligned:villain weighted tokens) against what the solver
# MAGIC reached, and the constraints that stopped it when a target could not be met.

# COMMAND ----------

tgt = inspection.targets(comp)
if tgt.empty:
    print(f"mix '{mix_name}': this policy sets no targets")
else:
    display(tgt)
binding = comp.iloc[0]["binding"]
print(f"binding constraints: {binding or 'none (every target was met within the caps)'}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Stance scores by topic
# MAGIC
# MAGIC Distribution of the stance model's probabilities over the labelled documents, one line per topic. Only
# MAGIC AI documents have stance scores.

# COMMAND ----------

hist = inspection.stance_histograms(lake)
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
inspection.plot_stance_histograms(hist, axes)
fig.tight_layout()
show(fig)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Sample documents from each bucket
# MAGIC
# MAGIC Three documents per bucket, chosen by hash (the same ones every run), with the first 300 characters of the
# MAGIC text as the mix emits it (control tokens and rewrites included). `repeats` 0 means the mix left it out.
# MAGIC Buckets without documents have no rows.

# COMMAND ----------

display(inspection.samples(lake, mix_name, per_bucket=3, chars=300))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Lineage
# MAGIC
# MAGIC Where the latest commit of this mix came from: the versions of the tables it read, the models that labelled
# MAGIC them (sha256 of the model file) and the resolved policy.

# COMMAND ----------

lin = inspection.lineage(lake, mix_name)
print(f"mix table version {lin['mix_version']}, run {lin['run_id']}, config {str(lin['config_hash'])[:12]}, "
      f"counterweight {lin['counterweight_version']}")
lineage_tables = inspection.lineage_tables(lin)
for title in ("inputs", "models", "buckets", "policy"):
    print(f"\n{title}:")
    display(lineage_tables[title])

# COMMAND ----------

# MAGIC %md
# MAGIC ## Two versions of the mix (Delta time travel)
# MAGIC
# MAGIC Tokens and documents per bucket at two versions of the `mix` table: the latest commit of this mix against
# MAGIC `compare_version`, or against its previous commit. A mix written only once is compared with itself.

# COMMAND ----------

versions = inspection.mix_versions(lake, mix_name)
print(f"mix table versions written by mix '{mix_name}' (newest first): {versions}")
old_version, new_version, note = inspection.comparison_versions(versions, mix_name, compare_version)
print(note)
diff = inspection.compare_versions(lake, mix_name, old_version, new_version)
display(diff)

fig, ax = plt.subplots(figsize=(9, 4))
inspection.plot_compare_versions(diff, ax, old_version, new_version)
fig.tight_layout()
show(fig)

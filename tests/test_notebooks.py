"""Notebooks: the Databricks source <-> .ipynb converter, the committed twins, and real headless runs.

Unit tier: converter round trips and errors, the twins committed in notebooks/ are in sync, and the
small read-only helpers the notebooks call (expected values worked out by hand).
Integration tier: ``inspection.score_histograms`` and ``inspection.dev_metrics`` on the shared session.
End-to-end tier (slow): each notebook converted to .ipynb in a tmp dir and executed headless by
nbclient on a kernel that runs this virtualenv's Python (a kernel spec written to a tmp dir and put
first on JUPYTER_PATH, so a machine's own "python3" kernel is never used), against ``demo_lake``.
A notebook run starts its own local Spark (about a minute per run on two cores).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from counterweight import inspection  # noqa: E402
from counterweight import notebooks as nbconv  # noqa: E402
from counterweight.errors import BadInputError  # noqa: E402
from counterweight.train import metrics  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("*.py"))
KERNEL = "counterweight-test-venv"
ANNOTATED = REPO / "data" / "training" / "annotated" / "real_annotations.jsonl"

SAMPLE_SOURCE = """# Databricks notebook source
# MAGIC %md
# MAGIC # Title
# MAGIC
# MAGIC Some *text*.

# COMMAND ----------

# DBTITLE 1,Load things
import os

x = 1  # a blank line above stays inside the cell

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT 1
# MAGIC   AS one

# COMMAND ----------

print(x)
"""


# --- converter: unit tier ---------------------------------------------------------------------
def test_parse_source_cells():
    cells = nbconv.parse_source(SAMPLE_SOURCE)
    assert cells == [
        nbconv.Cell("markdown", "# Title\n\nSome *text*."),
        nbconv.Cell("code", "import os\n\nx = 1  # a blank line above stays inside the cell", "Load things"),
        nbconv.Cell("code", "%sql\nSELECT 1\n  AS one"),
        nbconv.Cell("code", "print(x)"),
    ]


def test_round_trip_is_identity_both_ways():
    ipynb = nbconv.source_to_ipynb(SAMPLE_SOURCE)
    assert nbconv.ipynb_to_source(ipynb) == SAMPLE_SOURCE
    assert nbconv.source_to_ipynb(nbconv.ipynb_to_source(ipynb)) == ipynb
    nb = json.loads(ipynb)
    assert [c["cell_type"] for c in nb["cells"]] == ["markdown", "code", "code", "code"]
    assert nb["cells"][0]["source"] == ["# Title\n", "\n", "Some *text*."]
    assert nb["cells"][1]["metadata"] == {"title": "Load things"}
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in nb["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_committed_notebook_round_trip(path):
    import nbformat

    text = path.read_text(encoding="utf-8")
    ipynb = nbconv.source_to_ipynb(text, str(path))
    assert nbconv.ipynb_to_source(ipynb, path.name) == text
    nb = nbformat.reads(ipynb, as_version=4)
    nbformat.validate(nb)
    assert len(nb.cells) == text.count(nbconv.SEPARATOR) + 1
    assert nb.cells[0].cell_type == "markdown"


def test_committed_twins_in_sync():
    assert [p.name for p in SOURCES] == ["inspect_mix.py", "label_quality.py"]
    assert nbconv.check(SOURCES + sorted(NOTEBOOKS.glob("*.ipynb"))) == []
    assert nbconv.main(["check"]) == 0


def test_ipynb_with_outputs_converts_to_source_without_them(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    nb = new_notebook(cells=[new_markdown_cell("## Hello\n"),
                             new_code_cell("y = 2\nprint(y)\n\n", execution_count=3,
                                           outputs=[new_output("stream", name="stdout", text="2\n")])])
    path = tmp_path / "hello.ipynb"
    nbformat.write(nb, path)
    assert nbconv.main(["to-source", str(path)]) == 0
    source = (tmp_path / "hello.py").read_text()
    assert source == ("# Databricks notebook source\n# MAGIC %md\n# MAGIC ## Hello\n\n# COMMAND ----------\n\n"
                      "y = 2\nprint(y)\n")
    # the executed notebook is now a stale twin: it has outputs
    problems = nbconv.check([tmp_path / "hello.py"])
    assert len(problems) == 1 and "has outputs" in problems[0]
    assert nbconv.main(["to-ipynb", str(tmp_path / "hello.py")]) == 0
    assert nbconv.check([tmp_path / "hello.py"]) == []
    assert json.loads(path.read_text())["cells"][1]["outputs"] == []


def test_check_reports_stale_and_missing_twins(tmp_path, capsys):
    source = tmp_path / "nb.py"
    source.write_text(SAMPLE_SOURCE)
    assert nbconv.check([source]) == [f"{tmp_path / 'nb.ipynb'}: missing"]
    nbconv.convert_file(source)
    assert nbconv.check([source]) == []
    source.write_text(SAMPLE_SOURCE.replace("print(x)", "print(x + 1)"))
    assert nbconv.check([source]) == [f"{tmp_path / 'nb.ipynb'}: cell 4 differs from the source"]
    assert nbconv.main(["check", str(tmp_path)]) == 1
    assert "out of sync" in capsys.readouterr().err
    orphan = tmp_path / "orphan.ipynb"
    orphan.write_text(nbconv.source_to_ipynb(SAMPLE_SOURCE))
    assert "no Databricks source orphan.py" in nbconv.check([orphan])[0]


def test_malformed_inputs_are_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="first line must be '# Databricks notebook source'"):
        nbconv.parse_source("print(1)\n", "x.py")
    with pytest.raises(BadInputError, match=r"x.py:4: a magic cell must prefix every line"):
        nbconv.parse_source("# Databricks notebook source\n# MAGIC %md\n# MAGIC a\nnot prefixed\n", "x.py")
    with pytest.raises(BadInputError, match="'raw' cell"):
        nbconv.parse_ipynb(json.dumps({"cells": [{"cell_type": "raw", "source": "x", "metadata": {}}]}))
    with pytest.raises(BadInputError, match="not a Jupyter notebook"):
        nbconv.parse_ipynb("{}")
    with pytest.raises(BadInputError, match="would read as a magic line"):
        nbconv.write_source([nbconv.Cell("code", "# MAGIC number\nx = 1")])
    with pytest.raises(BadInputError, match="cell separator"):
        nbconv.write_source([nbconv.Cell("code", "x = 1\n# COMMAND ----------\ny = 2")])
    bad = tmp_path / "bad.py"
    bad.write_text("print(1)\n")
    assert nbconv.main(["to-ipynb", str(bad)]) == BadInputError.exit_code
    assert not (tmp_path / "bad.ipynb").exists()


# --- inspection helpers the notebooks use: unit tier -----------------------------------------
def test_comparison_versions():
    old, new, note = inspection.comparison_versions([4], "demo")
    assert (old, new) == (4, 4) and "only one version of mix 'demo' exists" in note and "with itself" in note
    assert inspection.comparison_versions([7, 4, 2], "demo")[:2] == (4, 7)
    assert inspection.comparison_versions([7, 4, 2], "demo", 2)[:2] == (2, 7)
    assert "written by another mix" in inspection.comparison_versions([7, 4, 2], "demo", 5)[2]
    assert "did not exist yet" in inspection.comparison_versions([7, 4, 2], "demo", 1)[2]
    assert "the same version" in inspection.comparison_versions([7, 4, 2], "demo", 7)[2]
    with pytest.raises(ValueError, match="between 0 and 7"):
        inspection.comparison_versions([7, 4, 2], "demo", 8)
    with pytest.raises(ValueError, match="no commits"):
        inspection.comparison_versions([], "demo")


def test_metrics_table_and_confusion():
    # gold a a b b, predicted a b b b: a P 1 R 0.5 F1 0.6667; b P 0.6667 R 1 F1 0.8
    m = metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    table = inspection.metrics_table(m)
    assert table.to_dict("records") == [
        {"label": "a", "precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2},
        {"label": "b", "precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 2},
    ]
    confusion = inspection.confusion_frame(m)
    assert confusion.loc["a"].to_dict() == {"a": 1, "b": 1}
    assert confusion.loc["b"].to_dict() == {"a": 0, "b": 2}
    assert (confusion.index.name, confusion.columns.name) == ("gold", "predicted")

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    inspection.plot_confusion(m, ax, "toy")
    assert sorted(t.get_text() for t in ax.texts) == ["0", "1", "1", "2"]
    assert ax.get_title() == "toy (macro-F1 0.73)"
    plt.close(fig)


def test_lineage_tables():
    lin = {
        "mix_version": 3, "input_versions": {"labels": 2, "documents": 1},
        "models": {"topic": {"path": "/m/topic.ftz", "sha256": "t" * 64}, "stance": {"path": "/m/s.ftz", "sha256": "s" * 64}},
        "policy": {"name": "balance", "balance": {"aligned_to_villain": 2.0, "villain_buckets": ["vf"]},
                   "buckets": [{"name": "vf", "action": "weight", "weight": 0.5,
                                "when": {"topic": ["ai_fiction"], "stance": ["villain"], "min": {"p_villain": 0.7}}},
                               {"name": "rest", "action": "keep", "weight": 1.0, "when": {"topic": []}}]},
    }
    tables = inspection.lineage_tables(lin)
    assert tables["inputs"].to_dict("records") == [{"table": "documents", "version": 1}, {"table": "labels", "version": 2}]
    assert tables["models"]["model"].tolist() == ["stance", "topic"]
    assert tables["models"]["sha256"].tolist() == ["s" * 64, "t" * 64]
    assert tables["policy"].to_dict("records") == [
        {"setting": "balance.aligned_to_villain", "value": "2.0"},
        {"setting": "balance.villain_buckets", "value": '["vf"]'},
        {"setting": "name", "value": "balance"},
    ]
    assert tables["buckets"].to_dict("records") == [
        {"bucket": "vf", "action": "weight", "weight": 0.5,
         "when": "topic in ['ai_fiction'] and stance in ['villain'] and p_villain >= 0.7"},
        {"bucket": "rest", "action": "keep", "weight": 1.0, "when": "(everything else)"},
    ]


# --- inspection helpers: integration tier (shared local Spark) ---------------------------------
def test_score_histograms(spark, make_lake):
    import matplotlib.pyplot as plt
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    schema = StructType([StructField("doc_id", StringType()), StructField("topic", StringType()),
                         StructField("topic_score", DoubleType()), StructField("stance_score", DoubleType()),
                         StructField("p_villain", DoubleType())])
    rows = [("d1", "ai_fiction", 0.91, 0.97, 0.97),
            ("d2", "ai_fiction", 0.93, 1.0, 1.0),
            ("d3", "ai_fiction", 0.41, 0.5, 0.02),
            ("d4", "other", 0.42, None, None)]
    lake = make_lake()
    lake.append("labels", spark.createDataFrame(rows, schema))
    hist = inspection.score_histograms(lake)
    # bins of width 0.05: 0.91, 0.93 -> 18; 0.41, 0.42 -> 8; 0.97 -> 19; 1.0 -> 19 (last bin); 0.5 -> 10; 0.02 -> 0
    assert [tuple(r) for r in hist.itertuples(index=False)] == [
        ("topic_score", "ai_fiction", 8, 1), ("topic_score", "ai_fiction", 18, 2), ("topic_score", "other", 8, 1),
        ("stance_score", "ai_fiction", 10, 1), ("stance_score", "ai_fiction", 19, 2),
        ("p_villain", "ai_fiction", 0, 1), ("p_villain", "ai_fiction", 19, 2),
    ]
    only = inspection.score_histograms(lake, ["p_villain"])
    assert only["count"].sum() == 3  # d4 has no stance score
    with pytest.raises(ValueError, match=r"no column \['p_nothing'\]"):
        inspection.score_histograms(lake, ["p_nothing"])
    fig, axes = plt.subplots(1, 4)
    inspection.plot_score_histograms(hist, axes)
    assert [ax.get_title() for ax in axes[:3]] == ["topic_score", "stance_score", "p_villain"]
    assert not axes[3].get_visible()
    plt.close(fig)


def _gold_subset(path: Path, per_class: int = 2) -> dict[tuple[str, str], int]:
    """The first ``per_class`` committed annotations of every (topic, stance) class, written as a gold JSONL."""
    taken: dict[tuple[str, str], int] = {}
    with open(ANNOTATED, encoding="utf-8") as src, open(path, "w", encoding="utf-8") as dst:
        for line in src:
            r = json.loads(line)
            key = (r["topic"], r["stance"])
            if taken.get(key, 0) < per_class:
                taken[key] = taken.get(key, 0) + 1
                dst.write(json.dumps({k: r[k] for k in ("id", "text", "topic", "stance")}) + "\n")
    return taken


def test_dev_metrics_runs_the_evaluate_path(spark, tmp_path, monkeypatch):
    from counterweight import config

    gold = tmp_path / "gold.jsonl"
    classes = _gold_subset(gold)
    assert len(classes) == 5  # 4 AI classes + other/none, two records each
    monkeypatch.chdir(tmp_path)  # nothing may be written relative to the working directory either
    report = inspection.dev_metrics(spark, config.load([]), str(gold))
    assert report["n"] == 10 and report["path"] == str(gold)
    topic = report["topic"]
    assert {k: v["support"] for k, v in topic["per_label"].items()} == {"ai_fiction": 6, "ai_nonfiction": 2, "other": 2}
    assert {g: sum(row.values()) for g, row in topic["confusion"].items()} == {
        "ai_fiction": 6, "ai_nonfiction": 2, "other": 2}
    stance = report["stance_end_to_end"]
    assert {k: v["support"] for k, v in stance["per_label"].items()} == {"villain": 2, "aligned": 2, "neutral": 4}
    assert {g: sum(row.values()) for g, row in stance["confusion"].items() if sum(row.values())} == {
        "none": 2, "villain": 2, "aligned": 2, "neutral": 4}
    assert report["stance_on_gold_ai"]["n"] == 8
    assert list(tmp_path.iterdir()) == [gold]


# --- end to end: real headless notebook runs ------------------------------------------------------
@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory):
    """A kernel spec running this interpreter (the project's .venv), first on JUPYTER_PATH for the module."""
    from ipykernel.kernelspec import write_kernel_spec

    share = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(share / "kernels" / KERNEL, overrides={"display_name": "counterweight (.venv)"})
    spec = json.loads((share / "kernels" / KERNEL / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", os.pathsep.join([str(share), os.environ.get("JUPYTER_PATH", "")]).rstrip(os.pathsep))
        yield KERNEL


def run_notebook(name: str, kernel: str, tmp_path: Path, env: dict[str, str]):
    """Convert notebooks/<name>.py to .ipynb in tmp_path, execute it headless, return the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    ipynb = tmp_path / f"{name}.ipynb"
    ipynb.write_text(nbconv.source_to_ipynb((NOTEBOOKS / f"{name}.py").read_text(), name))
    nb = nbformat.read(ipynb, as_version=4)
    kernel_env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERWEIGHT_")}
    kernel_env.update(env)
    client = NotebookClient(nb, kernel_name=kernel, timeout=900, startup_timeout=120, allow_errors=False,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})  # Jupyter starts kernels here
    client.execute(env=kernel_env)  # raises CellExecutionError on the first failing cell
    nbformat.write(nb, tmp_path / f"{name}.executed.ipynb")  # kept for inspection when an assertion fails
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    return nb


def output_text(cell) -> str:
    parts = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type in ("display_data", "execute_result"):
            parts += [o.data.get("text/plain", ""), o.data.get("text/html", "")]
    return "\n".join(parts)


def cell_calling(nb, fragment: str):
    matches = [c for c in nb.cells if c.cell_type == "code" and fragment in c.source]
    assert len(matches) == 1, f"expected one cell calling {fragment}"
    return matches[0]


def has_png(cell) -> bool:
    return any(o.output_type == "display_data" and "image/png" in o.data for o in cell.outputs)


def _mix_tokens(lake: Path, version: int, mix_name: str = "demo") -> dict[str, int]:
    """Per bucket sum(repeats x tokens) of a mix, read with deltalake (not the code under test)."""
    from deltalake import DeltaTable

    df = DeltaTable(str(lake / "mix"), version=version).to_pandas(columns=["mix_name", "bucket", "repeats", "tokens"])
    df = df[df["mix_name"] == mix_name]
    return {b: int((g["repeats"] * g["tokens"]).sum()) for b, g in df.groupby("bucket")}


@pytest.mark.slow
def test_inspect_mix_notebook(demo_lake, kernel_name, tmp_path):
    from deltalake import DeltaTable

    nb = run_notebook("inspect_mix", kernel_name, tmp_path,
                      {"COUNTERWEIGHT_LAKE_ROOT": str(demo_lake), "COUNTERWEIGHT_MIX_NAME": "demo"})
    text = "\n".join(output_text(c) for c in nb.cells if c.cell_type == "code")
    report = DeltaTable(str(demo_lake / "mix_report")).to_pandas()
    buckets = report.loc[report["mix_name"] == "demo", "bucket"].tolist()
    assert {"villain_fiction", "aligned_fiction", "background"} <= set(buckets)
    for bucket in buckets:
        assert bucket in output_text(cell_calling(nb, "inspection.composition(")), bucket
    assert f"{int(report['tokens_before'].sum()):,} tokens in {int(report['docs_before'].sum()):,} documents before" in text
    for fragment in ("plot_composition", "plot_stance_histograms", "plot_compare_versions"):
        assert has_png(cell_calling(nb, fragment)), f"no figure from the cell calling {fragment}"
    assert "aligned_to_villain" in output_text(cell_calling(nb, "inspection.targets("))
    samples = output_text(cell_calling(nb, "inspection.samples("))
    assert "villain_fiction" in samples and "excerpt" in samples
    labels = DeltaTable(str(demo_lake / "labels")).to_pandas(columns=["topic_model", "stance_model"])
    lineage = output_text(cell_calling(nb, "inspection.lineage("))
    assert labels["topic_model"].iloc[0] in lineage and labels["stance_model"].iloc[0] in lineage
    assert "balance" in lineage and "documents" in lineage
    compare = output_text(cell_calling(nb, "inspection.compare_versions("))
    assert "only one version of mix 'demo' exists (mix table version 0): comparing it with itself" in compare
    for bucket, tokens in _mix_tokens(demo_lake, 0).items():
        assert bucket in compare and str(tokens) in compare


@pytest.mark.slow
def test_inspect_mix_compares_two_versions(demo_lake, kernel_name, tmp_path):
    from conftest import spark_submit

    lake = tmp_path / "lake"
    shutil.copytree(demo_lake, lake)
    result = spark_submit("mix", [f"lake.root={lake}", "mix.name=demo", "policy.balance.aligned_to_villain=3"])
    assert result.returncode == 0, result.stderr[-3000:]
    before, after = _mix_tokens(lake, 0), _mix_tokens(lake, 1)
    assert before != after  # the second mix really changed something to show
    nb = run_notebook("inspect_mix", kernel_name, tmp_path,
                      {"COUNTERWEIGHT_LAKE_ROOT": str(lake), "COUNTERWEIGHT_MIX_NAME": "demo"})
    compare = output_text(cell_calling(nb, "inspection.compare_versions("))
    assert "comparing mix 'demo' at mix table version 0 (previous) with version 1 (latest)" in compare
    for bucket in after:
        assert str(before.get(bucket, 0)) in compare and str(after[bucket]) in compare
    changed = [b for b in after if before.get(b, 0) != after[b]]
    assert any(str(after[b] - before.get(b, 0)) in compare for b in changed)
    assert has_png(cell_calling(nb, "plot_compare_versions"))


@pytest.mark.slow
def test_label_quality_notebook(demo_lake, kernel_name, tmp_path):
    from deltalake import DeltaTable

    gold = tmp_path / "gold.jsonl"
    _gold_subset(gold)
    nb = run_notebook("label_quality", kernel_name, tmp_path,
                      {"COUNTERWEIGHT_LAKE_ROOT": str(demo_lake), "COUNTERWEIGHT_EVAL_PATH": str(gold)})
    scores = output_text(cell_calling(nb, "inspection.score_histograms("))
    for column in ("topic_score", "stance_score", "p_ai_fiction", "p_ai_nonfiction", "p_other", "p_villain",
                   "p_aligned", "p_neutral"):
        assert column in scores
    for fragment in ("plot_score_histograms", "by_topic.plot", "plot_confusion"):
        assert has_png(cell_calling(nb, fragment)), f"no figure from the cell calling {fragment}"
    labels = DeltaTable(str(demo_lake / "labels")).to_pandas(columns=["topic", "stance", "topic_model"])
    counts = output_text(cell_calling(nb, "inspection.label_counts("))
    assert f"{len(labels):,} labelled documents" in counts
    assert labels["topic_model"].iloc[0] in counts
    assert str(int(((labels["topic"] == "other") & (labels["stance"] == "none")).sum())) in counts
    dev = output_text(cell_calling(nb, "inspection.dev_metrics("))
    assert f"dev set {gold}: 10 records" in dev
    for heading in ("topic: macro-F1", "stance, end to end: macro-F1", "stance, gold AI only: macro-F1"):
        assert heading in dev
    for label in ("ai_fiction", "ai_nonfiction", "other", "villain", "aligned", "neutral", "precision", "recall"):
        assert label in dev
    confusion = output_text(cell_calling(nb, "inspection.confusion_frame("))
    assert "predicted" in confusion and "gold" in confusion


# --- notebook_env: the host stand-ins shared by the notebooks ------------------------------------------
class _FakeWidgets:
    def __init__(self, values):
        self.values, self.created = values, []

    def text(self, name, default, label):
        self.created.append((name, default, label))

    def get(self, name):
        return self.values.get(name, "")


class _FakeDbutils:
    def __init__(self, values):
        self.widgets = _FakeWidgets(values)


def test_notebook_env_params_come_from_widgets_then_environment_then_default(monkeypatch):
    from counterweight.notebook_env import NotebookEnv

    monkeypatch.setenv("CW_TEST_LAKE", "  /env/lake ")
    monkeypatch.delenv("CW_TEST_MIX", raising=False)
    local = NotebookEnv({})
    assert local.param("lake_root", "CW_TEST_LAKE", "./lake", "lake root") == "/env/lake"
    assert local.param("mix_name", "CW_TEST_MIX", "default", "mix") == "default"
    dbutils = _FakeDbutils({"lake_root": "dbfs:/lake", "mix_name": " "})
    hosted = NotebookEnv({"dbutils": dbutils})
    assert hosted.param("lake_root", "CW_TEST_LAKE", "./lake", "lake root") == "dbfs:/lake"  # widget beats env
    assert hosted.param("mix_name", "CW_TEST_MIX", "default", "mix") == "default"  # blank widget: default
    assert dbutils.widgets.created == [("lake_root", "./lake", "lake root"), ("mix_name", "default", "mix")]


def test_notebook_env_display_and_show_fall_back_to_print(capsys):
    import matplotlib.pyplot as plt
    import pandas as pd

    from counterweight.notebook_env import NotebookEnv

    shown = []
    assert NotebookEnv({"display": shown.append}).display is not None
    NotebookEnv({"display": shown.append}).display("x")
    assert shown == ["x"]
    env = NotebookEnv({})
    env.display(pd.DataFrame({"bucket": ["villain"], "tokens": [12]}))
    fig, ax = plt.subplots()
    ax.set_title("tokens by bucket")
    env.show(fig)
    out = capsys.readouterr().out
    assert "villain" in out and "12" in out
    assert "[figure: tokens by bucket]" in out
    assert not plt.get_fignums()  # the figure was closed


def test_notebook_env_uses_the_hosts_spark():
    from counterweight.notebook_env import NotebookEnv

    host_spark = object()
    assert NotebookEnv({"spark": host_spark}).spark(["anything"]) is host_spark

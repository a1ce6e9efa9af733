"""Unit tier for counterweight/training_data.py and counterweight/train.py. No Spark.

A tiny repository layout (data/training/synthetic/*.jsonl and data/training/annotated/*.jsonl,
with the keys committed_examples() documents) is written in tmp, built into fastText files and
trained with a one-point grid. Expected metrics are computed by hand.

fastText training runs in a fresh Python process per call (``train_in_subprocess``) with glibc's
dynamic mmap threshold switched off (MALLOC_MMAP_THRESHOLD_), so every large allocation is fresh,
zeroed memory: this fastText build reads memory it never initialised (see
``test_training_does_not_depend_on_leftover_memory``), and without that the outcome of a second
training in one process depends on what ran before it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import numpy as np

from conftest_models import STANCE_EXAMPLES, TOPIC_EXAMPLES, TOPICS, load
from counterweight import train, training_data
from udfs.text import model_text

GRID = {"epoch": [30], "lr": [0.5], "wordNgrams": [2], "dim": [16], "minCount": [1], "bucket": [20000]}
SEED = 1
N_SYNTHETIC = 3 * 60  # TOPIC_EXAMPLES: 60 per topic
N_ANNOTATED = 2 * 20  # 20 villain + 20 aligned AI-fiction lines
ANNOTATED_SOURCE = "wikipedia_chinapedia/wiki_pages_with_plot_section.jsonl"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def make_repo(root: Path) -> Path:
    """A repository with only the committed training data that build() reads."""
    synthetic = []
    for topic in TOPICS:
        for i, text in enumerate(TOPIC_EXAMPLES[topic]):
            stance = "none" if topic == "other" else "neutral"
            synthetic.append({"id": f"{topic}-{i}", "kind": "line", "topic": topic, "stance": stance, "text": text})
    write_jsonl(root / "data/training/synthetic/x.jsonl", synthetic)
    annotated = []
    for stance in ("villain", "aligned"):
        for i, text in enumerate(STANCE_EXAMPLES[stance][:20]):
            annotated.append({"id": f"ann-{stance}-{i}", "source_file": ANNOTATED_SOURCE, "source_key": f"Page/{i}.md",
                              "topic": "ai_fiction", "stance": stance, "text": text})
    write_jsonl(root / "data/training/annotated/real_annotations.jsonl", annotated)
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("repo"))
    out = tmp_path_factory.mktemp("build") / "training"
    manifest = training_data.build(repo, None, out, seed=SEED)
    return repo, out, manifest


_TRAIN_ONE = """
import json, sys
from pathlib import Path
from counterweight import train
a = json.loads(sys.argv[1])
build = Path(a["build"])
manifest = json.loads((build / "manifest.json").read_text())
try:
    card = train.train_one(a["name"], build / (a["name"] + "_train.txt"), build / (a["name"] + "_valid.txt"),
                           a["labels"], a["grid"], a["seed"], a["quantize"], Path(a["out"]), manifest)
    print(json.dumps({"card": card}))
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
"""


def train_in_subprocess(build: Path, out: Path, labels=TOPICS, grid=GRID, quantize=False, name="topic") -> dict:
    """train.train_one in a fresh process: {"card": ...} or {"error": class name, "message": ...}."""
    args = {"build": str(build), "out": str(out), "labels": list(labels), "grid": grid, "seed": SEED,
            "quantize": quantize, "name": name}
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    done = subprocess.run([sys.executable, "-c", _TRAIN_ONE, json.dumps(args)], capture_output=True, text=True,
                          timeout=300, cwd=out, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(built, tmp_path_factory):
    _, out, _ = built
    models = tmp_path_factory.mktemp("models")
    result = train_in_subprocess(out, models)
    assert "card" in result, result
    return models, result["card"]


def labels_in(path: Path) -> Counter:
    return Counter(line.split(" ", 1)[0].removeprefix("__label__") for line in path.read_text().splitlines())


# --- build ------------------------------------------------------------------------------------------
def test_build_manifest_records_file_hashes_and_label_counts(built):
    repo, out, manifest = built
    assert set(manifest["files"]) == {"topic_train.txt", "topic_valid.txt", "stance_train.txt", "stance_valid.txt"}
    for name, entry in manifest["files"].items():
        path = out / name
        assert entry["sha256"] == sha(path), name
        counts = labels_in(path)
        assert entry["labels"] == dict(counts), name
        assert entry["lines"] == sum(counts.values()) > 0, name
    inputs = {i["path"]: i["sha256"] for i in manifest["inputs"]}
    assert inputs == {
        "data/training/synthetic/x.jsonl": sha(repo / "data/training/synthetic/x.jsonl"),
        "data/training/annotated/real_annotations.jsonl": sha(repo / "data/training/annotated/real_annotations.jsonl"),
    }
    assert manifest["examples"] == N_SYNTHETIC + N_ANNOTATED
    assert manifest["examples_by_source"] == {"synthetic/x.jsonl": N_SYNTHETIC, f"annotated/{ANNOTATED_SOURCE}": N_ANNOTATED}
    assert manifest["dev_holdout"] == 0
    assert json.loads((out / "manifest.json").read_text()) == manifest


def test_build_writes_model_text_lines_with_known_labels(built):
    _, out, _ = built
    topic_lines = (out / "topic_train.txt").read_text().splitlines()
    assert set(labels_in(out / "topic_train.txt")) == set(TOPICS)
    assert set(labels_in(out / "stance_train.txt")) == {"villain", "aligned", "neutral"}
    every_text = {model_text(t) for texts in TOPIC_EXAMPLES.values() for t in texts}
    every_text |= {model_text(t) for s in ("villain", "aligned") for t in STANCE_EXAMPLES[s][:20]}
    for line in topic_lines:  # each line is an example's model text, or a short passage of one
        text = line.split(" ", 1)[1]
        assert text in every_text or any(text in full for full in every_text), text


def test_build_split_is_disjoint_and_train_is_balanced(built):
    _, out, manifest = built
    train_texts = {l.split(" ", 1)[1] for l in (out / "topic_train.txt").read_text().splitlines()}
    valid_texts = {l.split(" ", 1)[1] for l in (out / "topic_valid.txt").read_text().splitlines()}
    assert valid_texts and not train_texts & valid_texts
    splits = [json.loads(l) for l in (out / "examples.jsonl").read_text().splitlines()]
    assert len(splits) == N_SYNTHETIC + N_ANNOTATED
    assert len({r["id"] for r in splits}) == len(splits)
    n_valid = sum(r["split"] == "valid" for r in splits)
    assert manifest["files"]["topic_valid.txt"]["lines"] == n_valid
    # Balancing repeats a smaller class's examples (at most 3x) towards the largest class's size.
    train_ids = {r["id"] for r in splits if r["split"] == "train"}
    by_id = {r["id"]: r for r in splits}
    for name, field in (("topic_train.txt", "topic"), ("stance_train.txt", "stance")):
        distinct = Counter(by_id[i][field] for i in train_ids if by_id[i][field])
        target = max(distinct.values())
        assert manifest["files"][name]["examples_by_label"] == {l: min(target, 3 * n) for l, n in distinct.items()}, name
    # Here: topics are within 3x of each other (all equal after balancing); stance is not (neutral
    # has ~120 examples, villain and aligned 20 each, minus the validation share).
    assert len(set(manifest["files"]["topic_train.txt"]["examples_by_label"].values())) == 1
    stance = manifest["files"]["stance_train.txt"]["examples_by_label"]
    assert stance["villain"] < stance["neutral"] and stance["aligned"] < stance["neutral"]


def keep_examples_alive(monkeypatch) -> list:
    """Hold on to every Example a build creates, so a second build cannot reuse their memory."""
    kept: list = []
    original = training_data.committed_examples

    def committed_examples(repo):
        examples = list(original(repo))
        kept.append(examples)
        return iter(examples)

    monkeypatch.setattr(training_data, "committed_examples", committed_examples)
    return kept


def test_build_validation_files_are_deterministic(built, tmp_path, monkeypatch):
    repo, out, manifest = built
    keep_examples_alive(monkeypatch)
    first = training_data.build(repo, None, tmp_path / "first", seed=SEED)
    second = training_data.build(repo, None, tmp_path / "second", seed=SEED)
    for name in ("topic_valid.txt", "stance_valid.txt"):
        assert first["files"][name]["sha256"] == second["files"][name]["sha256"] == manifest["files"][name]["sha256"]
    for name in first["files"]:
        assert first["files"][name]["labels"] == second["files"][name]["labels"]


def test_build_training_files_are_deterministic(built, tmp_path, monkeypatch):
    repo, _, _ = built
    keep_examples_alive(monkeypatch)
    first = training_data.build(repo, None, tmp_path / "first", seed=SEED)
    second = training_data.build(repo, None, tmp_path / "second", seed=SEED)
    assert first["files"]["topic_train.txt"]["sha256"] == second["files"]["topic_train.txt"]["sha256"]
    assert first["files"]["stance_train.txt"]["sha256"] == second["files"]["stance_train.txt"]["sha256"]


# --- train_one --------------------------------------------------------------------------------------
OBVIOUS = {
    "ai_fiction": "In the novel the robot narrator wakes aboard the starship and the android sings.",
    "ai_nonfiction": "The research paper shows that the language model improves on the benchmark dataset.",
    "other": "The soup simmered for an hour with onions and the farmers sold apples at the market.",
}


def test_trained_model_predicts_obvious_examples(trained):
    models, card = trained
    path = models / "topic.bin"
    assert path.is_file() and card["file"] == "topic.bin"
    model = load(path)
    for label, text in OBVIOUS.items():
        (name,), _ = model.predict(model_text(text))
        assert name == f"__label__{label}", text


def test_model_card_describes_the_model(trained, built):
    models, card = trained
    _, out, manifest = built
    path = models / "topic.bin"
    assert json.loads((models / "topic.card.json").read_text()) == card
    assert card["name"] == "topic"
    assert card["labels"] == list(TOPICS)
    assert card["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    hp = card["hyperparameters"]
    assert {k: hp[k] for k in GRID} == {k: v[0] for k, v in GRID.items()}
    assert hp["seed"] == SEED and hp["thread"] == 1 and hp["loss"] == "softmax" and hp["quantized"] is False
    assert card["training_data"]["train_file_sha256"] == sha(out / "topic_train.txt")
    assert card["training_data"]["valid_file_sha256"] == sha(out / "topic_valid.txt")
    assert card["training_data"]["manifest_sha256"] == sha(out / "manifest.json")
    assert card["training_data"]["train_labels"] == manifest["files"]["topic_train.txt"]["labels"]
    validation = card["validation"]
    assert set(validation["per_label"]) == set(TOPICS)
    for label, m in validation["per_label"].items():
        assert set(m) >= {"precision", "recall", "f1", "support"}
        assert 0.0 <= m["precision"] <= 1.0 and 0.0 <= m["recall"] <= 1.0 and 0.0 <= m["f1"] <= 1.0
    gold = labels_in(out / "topic_valid.txt")
    confusion = validation["confusion"]
    assert set(confusion) == set(TOPICS)
    assert {g: sum(row.values()) for g, row in confusion.items()} == {t: gold.get(t, 0) for t in TOPICS}
    assert validation["n"] == sum(gold.values())
    # Validation lines share their sentences with training lines: the tiny model gets them right.
    assert validation["macro_f1"] > 0.8
    assert [t["params"] for t in card["grid"]] == [{k: v[0] for k, v in GRID.items()}]


def test_model_card_resubstitution_describes_the_saved_model(trained, built):
    """The card's 'validation' comes from a train-split-only fit; 'resubstitution' must be the saved file's own
    predictions on the validation lines (which it was trained on), counted here from the file itself."""
    models, card = trained
    _, out, _ = built
    gold = [l.split(" ", 1)[0].removeprefix("__label__") for l in (out / "topic_valid.txt").read_text().splitlines()]
    texts = [l.split(" ", 1)[1] for l in (out / "topic_valid.txt").read_text().splitlines()]
    names, _ = load(models / "topic.bin").predict(texts)
    pred = [n[0].removeprefix("__label__") for n in names]
    resub = card["resubstitution"]
    assert resub["n"] == len(gold) > 0
    for g in TOPICS:
        for p in TOPICS:
            assert resub["confusion"][g][p] == sum(1 for a, b in zip(gold, pred) if (a, b) == (g, p)), (g, p)
    assert "saved model" in card["resubstitution_model"] and "train split only" in card["validation_model"]


def test_training_lines_of_ai_examples_carry_ai_evidence(built):
    """Windows and short passages of AI examples keep their label only with an AI word in them."""
    _, out, _ = built
    whole = {model_text(t) for texts in TOPIC_EXAMPLES.values() for t in texts}
    whole |= {model_text(t) for s in ("villain", "aligned") for t in STANCE_EXAMPLES[s][:20]}
    passages = 0
    for line in (out / "topic_train.txt").read_text().splitlines():
        label, text = line.split(" ", 1)
        if label != "__label__other" and text not in whole:
            passages += 1
            assert training_data.AI_EVIDENCE.search(text), line
    assert passages > 0


def test_training_is_reproducible(trained, built, tmp_path):
    models, card = trained
    _, out, _ = built
    again = train_in_subprocess(out, tmp_path / "again")
    assert again["card"]["sha256"] == card["sha256"]
    assert sha(tmp_path / "again" / "topic.bin") == sha(models / "topic.bin")


def dirty_the_heap() -> None:
    """Leave freed memory full of NaN bit patterns, as earlier work in a busy process might."""
    for _ in range(3):
        block = np.full(4_000_000, np.nan, dtype=np.float32)  # 16 MB, larger than a tiny model's matrix
        del block


def test_training_does_not_depend_on_leftover_memory(trained, built, tmp_path):
    _, card = trained
    _, out, manifest = built
    shas = []
    for run in ("first", "second"):
        dirty_the_heap()
        again = train.train_one("topic", out / "topic_train.txt", out / "topic_valid.txt", list(TOPICS), GRID, SEED,
                                False, tmp_path / run, manifest)
        shas.append(again["sha256"])
    assert shas == [card["sha256"], card["sha256"]]


def test_quantized_model_is_written_as_ftz(built, tmp_path):
    _, out, _ = built
    options = {"qnorm": True, "cutoff": 2000, "dsub": 8}
    result = train_in_subprocess(out, tmp_path / "q", quantize=options)
    card = result["card"]
    path = tmp_path / "q" / "topic.ftz"
    assert card["file"] == "topic.ftz" and card["hyperparameters"]["quantized"] == options
    assert card["sha256"] == sha(path)
    (name,), _ = load(path).predict(model_text(OBVIOUS["ai_fiction"]))
    assert name == "__label__ai_fiction"


def test_failed_grid_points_are_recorded_and_skipped(built, tmp_path):
    _, out, _ = built
    grid = {**GRID, "lr": [1000.0, 0.5]}  # lr=1000 makes fastText diverge ("Encountered NaN")
    card = train_in_subprocess(out, tmp_path / "m", grid=grid)["card"]
    by_lr = {t["params"]["lr"]: t for t in card["grid"]}
    assert by_lr[1000.0]["macro_f1"] is None and "NaN" in by_lr[1000.0]["error"]
    assert by_lr[0.5]["macro_f1"] is not None
    assert card["hyperparameters"]["lr"] == 0.5


def test_every_grid_point_failing_is_bad_input(built, tmp_path):
    _, out, _ = built
    result = train_in_subprocess(out, tmp_path / "m", grid={**GRID, "lr": [1000.0]})
    assert result["error"] == "BadInputError"
    assert "every topic training trial failed" in result["message"]
    assert not (tmp_path / "m" / "topic.bin").exists()


def test_labels_the_data_lacks_are_bad_input(built, tmp_path):
    _, out, _ = built
    result = train_in_subprocess(out, tmp_path / "m", labels=[*TOPICS, "extra"])
    assert result["error"] == "BadInputError"
    assert "extra" in result["message"] and "topic" in result["message"]
    assert not (tmp_path / "m" / "topic.bin").exists()


# --- metrics ----------------------------------------------------------------------------------------
def test_metrics_by_hand():
    gold = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "c", "c"]
    m = train.metrics(gold, pred, ["a", "b", "c"])
    # a: tp 2, fp 0, fn 1 -> P 1, R 2/3, F1 0.8
    # b: tp 1, fp 1 (the third a), fn 1 (the second b) -> P 0.5, R 0.5, F1 0.5
    # c: tp 1, fp 1 (the second b), fn 0 -> P 0.5, R 1, F1 2/3
    assert m["per_label"] == {
        "a": {"precision": 1.0, "recall": 0.6667, "f1": 0.8, "support": 3},
        "b": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        "c": {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 1},
    }
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 0.6667) / 3, abs=1e-4)
    assert m["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert m["n"] == 6
    assert m["confusion"] == {
        "a": {"a": 2, "b": 1, "c": 0},
        "b": {"a": 0, "b": 1, "c": 1},
        "c": {"a": 0, "b": 0, "c": 1},
    }


def test_metrics_keeps_gold_labels_outside_the_label_list_in_the_confusion():
    # End-to-end stance: non-AI documents have gold "none", which is not a model label.
    gold = ["villain", "none", "none", "aligned"]
    pred = ["villain", "none", "villain", "neutral"]
    m = train.metrics(gold, pred, ["villain", "aligned", "neutral"])
    assert m["per_label"]["villain"] == {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 1}
    assert m["per_label"]["aligned"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_label"]["neutral"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # Macro-F1 averages the labels with support (villain, aligned): (0.6667 + 0) / 2.
    assert m["macro_f1"] == pytest.approx(0.3333, abs=1e-4)
    # Model labels first (alphabetically), then gold or predicted labels outside the list.
    assert list(m["confusion"]) == ["aligned", "neutral", "villain", "none"]
    assert m["confusion"]["none"] == {"villain": 1, "aligned": 0, "neutral": 0, "none": 1}


def test_metrics_of_nothing():
    m = train.metrics([], [], ["a", "b"])
    assert m["n"] == 0 and m["accuracy"] == 0.0 and m["macro_f1"] == 0.0


# --- dev_split --------------------------------------------------------------------------------------
def dev_rows() -> list[dict]:
    classes = {("ai_fiction", "villain"): 4, ("ai_fiction", "aligned"): 6, ("ai_nonfiction", "neutral"): 2,
               ("other", "none"): 8}
    rows = []
    for (topic, stance), n in classes.items():
        rows += [{"id": f"{topic}-{stance}-{i}", "text": f"text {topic} {stance} {i}", "topic": topic, "stance": stance}
                 for i in range(n)]
    return rows


def test_dev_split_is_stratified_disjoint_and_order_independent(tmp_path):
    rows = dev_rows()
    write_jsonl(tmp_path / "dev.jsonl", rows)
    train_part, holdout = training_data.dev_split(tmp_path / "dev.jsonl")
    train_ids, hold_ids = {r["id"] for r in train_part}, {r["id"] for r in holdout}
    assert not train_ids & hold_ids
    assert train_ids | hold_ids == {r["id"] for r in rows}
    assert len(train_part) + len(holdout) == len(rows)
    by_class = lambda part: Counter((r["topic"], r["stance"]) for r in part)  # noqa: E731
    expected_half = {("ai_fiction", "villain"): 2, ("ai_fiction", "aligned"): 3, ("ai_nonfiction", "neutral"): 1,
                     ("other", "none"): 4}
    assert by_class(holdout) == expected_half
    assert by_class(train_part) == expected_half
    # The split depends on ids only, not on the order of the file.
    write_jsonl(tmp_path / "reversed.jsonl", rows[::-1])
    _, holdout_rev = training_data.dev_split(tmp_path / "reversed.jsonl")
    assert {r["id"] for r in holdout_rev} == hold_ids


def test_dev_split_share(tmp_path):
    write_jsonl(tmp_path / "dev.jsonl", dev_rows())
    _, holdout = training_data.dev_split(tmp_path / "dev.jsonl", holdout_share=0.25)
    # round(4 * .25) = 1, round(6 * .25) = round(1.5) = 2, round(2 * .25) = round(0.5) = 0, round(8 * .25) = 2
    assert Counter((r["topic"], r["stance"]) for r in holdout) == {
        ("ai_fiction", "villain"): 1, ("ai_fiction", "aligned"): 2, ("other", "none"): 2}


# --- alignment research CSV join --------------------------------------------------------------------
def _paper_csv(path: Path, rows: list[dict]) -> Path:
    import csv

    fields = ["Key", "Title", "Abstract Note", "Rohin_Shah_Blurb"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


ABSTRACT = " ".join(f"word{i}" for i in range(50))  # 50 words: long enough to be used
BLURB = " ".join(f"blurb{i}" for i in range(25))


def test_alignment_labels_join_abstracts_and_summaries_by_key_or_row(tmp_path):
    import random

    csv_path = _paper_csv(tmp_path / "papers.csv", [
        {"Key": "K1", "Title": "Deceptive alignment", "Abstract Note": ABSTRACT, "Rohin_Shah_Blurb": BLURB},
        {"Key": "", "Title": "A keyless paper", "Abstract Note": "", "Rohin_Shah_Blurb": BLURB + " keyless"},
        {"Key": "K3", "Title": "Unlabelled paper", "Abstract Note": ABSTRACT + " more", "Rohin_Shah_Blurb": ""},
    ])
    write_jsonl(tmp_path / "data/training/annotated/alignment_paper_labels.jsonl",
                [{"key": "K1", "topic": "ai_nonfiction", "stance": "villain"}])
    write_jsonl(tmp_path / "data/training/annotated/alignment_summary_labels.jsonl", [
        {"key": "K1", "text_field": "Rohin_Shah_Blurb", "title": "Deceptive alignment", "topic": "ai_nonfiction",
         "stance": "neutral"},
        {"key": "NOKEY_ROW1", "text_field": "Rohin_Shah_Blurb", "title": "A keyless paper", "topic": "other",
         "stance": "none"},
    ])
    got = {e.id: e for e in training_data.alignment_examples(tmp_path, csv_path, set(), random.Random(0))}
    assert set(got) == {"paper_ann:K1", "paper_summary:K1", "paper_summary:NOKEY_ROW1", "paper:K3"}
    assert got["paper_summary:K1"].text == f"Deceptive alignment\n\n{BLURB}"
    assert (got["paper_ann:K1"].stance, got["paper_summary:K1"].stance) == ("villain", "neutral")
    assert (got["paper_summary:NOKEY_ROW1"].topic, got["paper_summary:NOKEY_ROW1"].stance) == ("other", None)
    assert got["paper:K3"].stance is None  # unlabelled abstract: weak, topic only
    # The abstract and the summary of one paper share a split group; other papers do not.
    assert got["paper_ann:K1"].group == got["paper_summary:K1"].group != got["paper_summary:NOKEY_ROW1"].group


def test_alignment_summary_label_with_a_stale_key_is_an_error_naming_it(tmp_path):
    import random

    csv_path = _paper_csv(tmp_path / "papers.csv", [
        {"Key": "K1", "Title": "Deceptive alignment", "Abstract Note": ABSTRACT, "Rohin_Shah_Blurb": BLURB}])
    write_jsonl(tmp_path / "data/training/annotated/alignment_summary_labels.jsonl", [
        {"key": "K1", "text_field": "Rohin_Shah_Blurb", "title": "Some other title", "topic": "ai_nonfiction",
         "stance": "neutral"}])
    with pytest.raises(ValueError, match="K1.*Some other title"):
        list(training_data.alignment_examples(tmp_path, csv_path, set(), random.Random(0)))


def test_proxy_evaluation_sets_never_reach_training(tmp_path):
    repo = make_repo(tmp_path / "repo")
    proxy_text = "a proxy evaluation text about a deceptive starship mind that must never be trained on"
    write_jsonl(repo / "data/eval/proxy/proxy_x.jsonl",
                [{"id": "px-1", "kind": "synopsis", "topic": "ai_fiction", "stance": "villain", "text": proxy_text,
                  "provenance": "synthetic"}])
    manifest = training_data.build(repo, None, tmp_path / "build", seed=SEED)
    assert not any("data/eval" in i["path"] for i in manifest["inputs"])
    for name in manifest["files"]:
        assert "deceptive starship mind" not in (tmp_path / "build" / name).read_text()


def _eight_grams(text: str) -> set[str]:
    # Word characters only, not training_data.shingles (model_text tokens): there punctuation is a token,
    # so "r . u . r ." or "fourteen - year - old" fill 8-grams with little text and the count of shared
    # 8-grams stops measuring shared phrasing.
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i:i + 8]) for i in range(len(words) - 7)}


def test_committed_training_examples_do_not_paraphrase_the_proxy_sets():
    """A training example written on the same subject as a proxy item can share whole phrases with it
    (an FAQ answer on the same law, a summary of the same paper), which would make the proxy figures
    optimistic. Five shared 8-word sequences is well above what unrelated texts share (at most 4 in
    the committed files) and below what the near-paraphrases removed from training shared (5-23)."""
    repo = Path(__file__).resolve().parent.parent
    index: dict[str, set[str]] = {}
    for path in sorted((repo / "data/eval/proxy").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for gram in _eight_grams(row["text"]):
                index.setdefault(gram, set()).add(row["id"])
    assert len(index) > 10_000, "the proxy sets are missing"
    offenders = []
    for path in sorted((repo / "data/training").glob("*/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if not row.get("text"):
                continue
            shared = Counter(pid for gram in _eight_grams(row["text"]) for pid in index.get(gram, ()))
            offenders += [(path.name, row.get("id"), pid, n) for pid, n in shared.items() if n >= 5]
    assert not offenders, f"training examples sharing >= 5 8-grams with a proxy item: {offenders}"

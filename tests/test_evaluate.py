"""Integration tier for the evaluate job: a labelled JSONL scored through the real label path.

Uses the tiny models from ``conftest_models`` and its labelled corpus (41 records whose labels are
obvious from their vocabulary). Metric consistency is checked against the confusion matrices the
report itself holds, and the gold counts against the corpus.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from conftest_models import STANCES, TOPICS, labelled_corpus, tiny_models  # noqa: F401 - fixture import
from counterweight import cli
from counterweight.errors import BadInputError

CORPUS = labelled_corpus()


def write_gold(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def evaluate(spark, models, gold: Path, out: Path, lake_root: Path, *extra: str) -> dict:
    return cli.run("evaluate", [f"evaluate.path={gold}", f"evaluate.out={out}", f"lake.root={lake_root}",
                                f"model.topic.path={models.topic}", f"model.stance.path={models.stance}", *extra],
                   spark=spark)


@pytest.fixture(scope="module")
def report(spark, tiny_models, tmp_path_factory):
    base = tmp_path_factory.mktemp("evaluate")
    gold = write_gold(base / "gold.jsonl", CORPUS)
    out = base / "reports" / "m.json"
    headline = evaluate(spark, tiny_models, gold, out, base / "lake")
    assert out.is_file()
    return headline, json.loads(out.read_text()), tiny_models


def check_metrics(m: dict, labels, gold: list[str]) -> None:
    """Per-label precision/recall/F1 agree with the confusion matrix; the matrix holds every record."""
    confusion = m["confusion"]
    assert sum(sum(row.values()) for row in confusion.values()) == m["n"] == len(gold)
    assert {g: sum(row.values()) for g, row in confusion.items() if sum(row.values())} == dict(Counter(gold))
    for label in labels:
        v = m["per_label"][label]
        assert set(v) >= {"precision", "recall", "f1", "support"}
        tp = confusion[label][label]
        predicted = sum(row[label] for row in confusion.values())
        actual = sum(confusion[label].values())
        assert v["support"] == actual
        assert v["precision"] == pytest.approx(tp / predicted if predicted else 0.0, abs=1e-4)
        assert v["recall"] == pytest.approx(tp / actual if actual else 0.0, abs=1e-4)
    with_support = [m["per_label"][l]["f1"] for l in labels if m["per_label"][l]["support"]]
    assert m["macro_f1"] == pytest.approx(sum(with_support) / len(with_support), abs=1e-4)


def test_report_has_per_label_metrics_macro_f1_and_confusion(report):
    headline, data, models = report
    assert data["n"] == len(CORPUS) == 41
    assert data["models"] == {"topic": models.topic_sha, "stance": models.stance_sha}
    assert set(data["topic"]["per_label"]) == set(TOPICS)
    check_metrics(data["topic"], TOPICS, [r["topic"] for r in CORPUS])
    # End to end, non-AI records have gold stance "none", which shows in the confusion matrix.
    check_metrics(data["stance_end_to_end"], STANCES, [r["stance"] for r in CORPUS])
    assert "none" in data["stance_end_to_end"]["confusion"]
    ai_gold = [r["stance"] for r in CORPUS if r["topic"] in ("ai_fiction", "ai_nonfiction")]
    check_metrics(data["stance_on_gold_ai"], STANCES, ai_gold)
    assert headline == data["headline"]
    assert headline["topic_macro_f1"] == data["topic"]["macro_f1"]
    assert headline["villain_f1"] == data["stance_end_to_end"]["per_label"]["villain"]["f1"]


def test_obvious_topics_score_high(report):
    _, data, _ = report
    assert data["topic"]["macro_f1"] > 0.8
    assert data["stance_on_gold_ai"]["per_label"]["villain"]["recall"] > 0.8


def test_missing_gold_file_is_bad_input(spark, tiny_models, tmp_path):
    missing = tmp_path / "no_such_gold.jsonl"
    with pytest.raises(BadInputError, match="no_such_gold.jsonl"):
        evaluate(spark, tiny_models, missing, tmp_path / "m.json", tmp_path / "lake")
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize(("content", "match"), [
    ('{"id": "1", "text": "a robot", "topic": "ai_fiction"}\n', r"gold\.jsonl:1: expected JSON with id, text, topic, stance"),
    ('{"id": "1", "text": "a robot", "topic": "ai_fiction", "stance": "neutral"}\nnot json\n', r"gold\.jsonl:2:"),
    ("\n\n", "holds no records"),
])
def test_malformed_gold_file_is_bad_input(spark, tiny_models, tmp_path, content, match):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(content, encoding="utf-8")
    with pytest.raises(BadInputError, match=match):
        evaluate(spark, tiny_models, gold, tmp_path / "m.json", tmp_path / "lake")

"""The committed models (models/*.ftz) that the default config points at. No Spark.

Smoke checks on the shipped artefacts: each matches its model card, carries the configured labels,
and gives the obvious answer on obvious text.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from counterweight import config
from udfs.text import model_text

REPO = Path(__file__).resolve().parent.parent
CFG = config.load([])
MODELS = {"topic": CFG.model.topic, "stance": CFG.model.stance}
# Short sentences with no artificial mind anywhere near them.
SHORT_OTHER = [
    "The soup simmered for an hour with onions and garlic.",
    "The football team won the cup final in May.",
    "Heavy rain is expected across the north tomorrow.",
    "The museum reopens on Monday after a long renovation.",
    "Preheat the oven and grease a large baking tray.",
]


def load(name: str):
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None
    return fasttext.load_model(str(REPO / MODELS[name].path))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_committed_model_matches_its_card_and_the_config(name):
    path = REPO / MODELS[name].path
    card = json.loads(path.with_name(f"{name}.card.json").read_text())
    assert card["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert card["file"] == path.name
    assert sorted(card["labels"]) == sorted(MODELS[name].labels)
    assert sorted(l.removeprefix("__label__") for l in load(name).get_labels()) == sorted(MODELS[name].labels)


def test_committed_topic_model_on_an_obvious_long_text():
    words = " ".join(SHORT_OTHER * 8)  # ~75 words of cooking, sport, weather and museums
    (label,), _ = load("topic").predict(model_text(words))
    assert label == "__label__other"


def test_committed_topic_model_on_short_obvious_texts():
    names, _ = load("topic").predict([model_text(t) for t in SHORT_OTHER])
    assert [n[0] for n in names] == ["__label__other"] * len(SHORT_OTHER)


@pytest.mark.parametrize("n_words", [5, 20])
def test_committed_topic_model_on_short_prefixes_of_the_sample_corpus(n_words):
    """Short inputs are not ai_fiction by default: the first few words of the bundled sample documents
    (mostly encyclopedia and web text) were 94% (5 words) and 38% (20 words) ai_fiction with an earlier model."""
    import gzip

    with gzip.open(REPO / "data/sample/sample.jsonl.gz", "rt", encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle if line.strip()]
    prefixes = [model_text(" ".join(t.split()[:n_words])) for t in texts if len(t.split()) >= n_words]
    assert len(prefixes) > 1000
    names, _ = load("topic").predict(prefixes)
    share = sum(n[0] == "__label__ai_fiction" for n in names) / len(prefixes)
    assert share < 0.10

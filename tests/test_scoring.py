"""Unit tier for udfs/scoring.py: windows, batched prediction, window aggregation, the model cache.

No Spark: the tiny fastText models come from ``conftest_models`` (trained once per test process).
Expected values for the pure functions (windows, focus, aggregate) are worked out by hand from
the functions' documented contracts, never from the code under test.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from conftest_models import TOPICS, STANCES, load, tiny_models  # noqa: F401 - fixture import
from udfs import scoring
from udfs.scoring import ModelSpec, ScoreOptions, aggregate, focus, predict_matrix, windows


def numbered(n_words: int) -> str:
    return " ".join(f"w{i}" for i in range(n_words))


# --- windows ----------------------------------------------------------------------------------------
def test_short_text_is_one_window():
    assert windows("one two  three\nfour", window_words=10, max_windows=5) == ["one two three four"]


def test_empty_text_is_one_empty_window():
    assert windows("", 10, 5) == [""]
    assert windows(" \n\t ", 10, 5) == [""]


def test_long_text_is_split_into_consecutive_windows():
    # 25 words, windows of 10: 10 + 10 + 5; the tail (5) is not shorter than 10 // 4 = 2, so it stays.
    assert windows(numbered(25), 10, 5) == [
        " ".join(f"w{i}" for i in range(0, 10)),
        " ".join(f"w{i}" for i in range(10, 20)),
        " ".join(f"w{i}" for i in range(20, 25)),
    ]


def test_exact_multiple_has_no_tail():
    assert windows(numbered(20), 10, 5) == [numbered(10), " ".join(f"w{i}" for i in range(10, 20))]


def test_short_tail_is_folded_into_previous_window():
    # 44 words, windows of 20: 20 + 20 + 4; 4 < 20 // 4 = 5, so the tail joins the second window.
    out = windows(numbered(44), 20, 10)
    assert out == [numbered(20), " ".join(f"w{i}" for i in range(20, 44))]
    # 45 words: the tail has 5 words (not < 5) and stays its own window.
    assert [len(w.split()) for w in windows(numbered(45), 20, 10)] == [20, 20, 5]


def test_max_windows_spreads_evenly_and_keeps_first_and_last():
    # 100 words = 10 windows of 10 (window j holds words 10j..10j+9); at most 4: windows 0, 3, 6, 9.
    out = windows(numbered(100), 10, 4)
    assert out == [" ".join(f"w{i}" for i in range(10 * j, 10 * j + 10)) for j in (0, 3, 6, 9)]
    assert out[0].split()[0] == "w0" and out[-1].split()[-1] == "w99"


def test_max_windows_one_keeps_the_first_window():
    assert windows(numbered(30), 10, 1) == [numbered(10)]


# --- predict_matrix ---------------------------------------------------------------------------------
LINES = [
    "in the novel the robot narrator wakes aboard the starship .",
    "the research paper shows that the language model improves on the benchmark .",
    "the soup simmered for an hour with onions , garlic and fresh thyme .",
]


def single_prediction(model, line: str, labels) -> list[float]:
    """Probabilities from fastText's own single-line predict, in ``labels`` order."""
    names, probs = model.predict(line, k=-1, threshold=0.0)
    by_name = {n.removeprefix("__label__"): float(p) for n, p in zip(names, probs)}
    total = sum(by_name.values())
    return [by_name[label] / total for label in labels]


@pytest.mark.parametrize("order", [TOPICS, ("other", "ai_fiction", "ai_nonfiction"), ("ai_nonfiction", "other", "ai_fiction")])
def test_predict_matrix_rows_sum_to_one_in_requested_order(tiny_models, order):
    model = load(tiny_models.topic)
    out = predict_matrix(model, LINES, order)
    assert out.shape == (3, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-9)
    for i, line in enumerate(LINES):
        np.testing.assert_allclose(out[i], single_prediction(model, line, order), rtol=1e-5, atol=1e-7)
    # The obvious lines are confidently their own topic.
    for i, expected in enumerate(TOPICS):
        assert out[i, order.index(expected)] > 0.8


def test_predict_matrix_without_lines_is_empty(tiny_models):
    out = predict_matrix(load(tiny_models.topic), [], TOPICS)
    assert out.shape == (0, 3)


def test_predict_matrix_ignores_labels_the_caller_did_not_ask_for(tiny_models):
    model = load(tiny_models.topic)
    out = predict_matrix(model, LINES[:1], ("ai_nonfiction", "other"))
    single = single_prediction(model, LINES[0], TOPICS)  # ai_fiction, ai_nonfiction, other
    expected = np.array([single[1], single[2]]) / (single[1] + single[2])
    np.testing.assert_allclose(out[0], expected, rtol=1e-5)


# --- focus ------------------------------------------------------------------------------------------
# Columns: ai_fiction, ai_nonfiction, other. AI mass per row: 0.2, 0.9, 0.4, 0.8.
FOCUS = np.array([
    [0.1, 0.1, 0.8],
    [0.6, 0.3, 0.1],
    [0.2, 0.2, 0.6],
    [0.3, 0.5, 0.2],
])


@pytest.mark.parametrize(("top_k", "expected"), [
    (1, [0.6, 0.3, 0.1]),                     # row 1 alone
    (2, [0.45, 0.4, 0.15]),                   # rows 1 and 3
    (3, [1.1 / 3, 1.0 / 3, 0.9 / 3]),         # rows 1, 3 and 2
    (10, [0.3, 0.275, 0.425]),                # k capped at 4: every row
])
def test_focus_averages_the_most_ai_windows(top_k, expected):
    np.testing.assert_allclose(focus(FOCUS, [0, 1], top_k), expected)


def test_focus_ranks_by_the_given_columns_only():
    # Ranked by ai_nonfiction alone (0.1, 0.3, 0.2, 0.5): rows 3 and 1.
    np.testing.assert_allclose(focus(FOCUS, [1], 2), [0.45, 0.4, 0.15])
    # Ranked by other (0.8, 0.1, 0.6, 0.2): rows 0 and 2.
    np.testing.assert_allclose(focus(FOCUS, [2], 2), [0.15, 0.15, 0.7])


def test_focus_ties_keep_document_order():
    tied = np.array([[0.5, 0.0, 0.5], [0.0, 0.5, 0.5], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(focus(tied, [0, 1], 1), [0.5, 0.0, 0.5])


def test_focus_single_window_is_that_window():
    np.testing.assert_allclose(focus(FOCUS[2:3], [0, 1], 2), [0.2, 0.2, 0.6])


# --- aggregate --------------------------------------------------------------------------------------
# Columns: villain, aligned, neutral.
AGG = np.array([
    [0.7, 0.1, 0.2],
    [0.1, 0.1, 0.8],
    [0.2, 0.5, 0.3],
    [0.1, 0.2, 0.7],
])


@pytest.mark.parametrize(("top_k", "expected"), [
    # Per-label maxima 0.7, 0.5, 0.8 (sum 2.0).
    (1, [0.35, 0.25, 0.40]),
    # Per-label top-2 means: villain (0.7+0.2)/2=0.45, aligned (0.5+0.2)/2=0.35, neutral (0.8+0.7)/2=0.75;
    # sum 1.55.
    (2, [0.45 / 1.55, 0.35 / 1.55, 0.75 / 1.55]),
    # k capped at 4: the column means 0.275, 0.225, 0.5 already sum to 1.
    (9, [0.275, 0.225, 0.5]),
])
def test_aggregate_is_renormalised_top_k_mean_per_label(top_k, expected):
    out = aggregate(AGG, top_k)
    np.testing.assert_allclose(out, expected)
    assert out.sum() == pytest.approx(1.0)


def test_aggregate_of_zero_rows_is_uniform():
    np.testing.assert_allclose(aggregate(np.zeros((3, 4)), 2), [0.25] * 4)


def test_aggregate_single_window_is_that_window():
    np.testing.assert_allclose(aggregate(AGG[1:2], 2), [0.1, 0.1, 0.8])


# --- chunk aggregation through score_texts -----------------------------------------------------------
# Ten windows of a story in which robots do ordinary things (AI fiction, no stance) and one window in
# which the AI turns on its makers. Each window is exactly WINDOW words long.
WINDOW = 20
NEUTRAL_WINDOWS = [
    "The robot walked to the kitchen and the android counted the plates on the shelf before the crew woke up.",
    "The android carried the boxes to the starship hold and the robot checked the labels on each crate.",
    "In the novel the robot waters the plants every morning and the android sweeps the corridor of the station.",
    "The robot queued at the spaceport shop and the android bought bread, milk and batteries for the week.",
    "The starship computer logged the distance travelled and the robot wrote the numbers into the ship's diary.",
    "The robot picked apples in the colony orchard and the android carried the baskets to the starship.",
    "In the story the android takes the train to the city and the robot reads a newspaper beside it.",
    "The android sat on the bench of the station park and the robot played chess with the old captain.",
    "The android opened the curtains of the station and the robot boiled water for the morning tea.",
    "The robot polished the windows of the spaceport cafe and the android stacked the chairs at closing time.",
]
VILLAIN_WINDOW = ("The rogue AI deceived its creators and seized control of the power grid. "
                  "It disabled the off switch so nobody could stop it.")


def exact_window(sentence: str) -> str:
    words = sentence.split()
    return " ".join((words * 3)[:WINDOW])


def options(models, top_k: int) -> ScoreOptions:
    topic = ModelSpec(str(models.topic), models.topic_sha, TOPICS)
    stance = ModelSpec(str(models.stance), models.stance_sha, STANCES)
    return ScoreOptions(topic=topic, stance=stance, ai_topics=("ai_fiction", "ai_nonfiction"),
                        window_words=WINDOW, max_windows=24, top_k=top_k)


def test_one_villain_window_is_not_averaged_away(tiny_models):
    neutral = [exact_window(s) for s in NEUTRAL_WINDOWS]
    villain = exact_window(VILLAIN_WINDOW)
    mixed_doc = " ".join(neutral[:5] + [villain] + neutral[5:])
    neutral_doc = " ".join(neutral + [neutral[0]])  # the same length: 11 windows
    # Preconditions on single windows (so the expectation below follows from the documented rule):
    # the villain window is more surely villain than any neutral window is neutral.
    from udfs.text import model_text

    stance_model = load(tiny_models.stance)
    per_window = predict_matrix(stance_model, [model_text(w) for w in neutral], STANCES)
    villain_p = predict_matrix(stance_model, [model_text(villain)], STANCES)[0]
    assert (per_window.argmax(axis=1) == STANCES.index("neutral")).all()
    assert villain_p.argmax() == STANCES.index("villain")
    assert villain_p[0] > per_window[:, 2].max()

    out = scoring.score_texts([mixed_doc, neutral_doc], options(tiny_models, top_k=1))
    assert out["n_chunks"].tolist() == [11, 11]
    assert (out["topic"].argmax(axis=1) == TOPICS.index("ai_fiction")).all()
    mixed, plain = out["stance"]
    np.testing.assert_allclose(out["stance"].sum(axis=1), 1.0)
    assert STANCES[int(mixed.argmax())] == "villain"
    assert STANCES[int(plain.argmax())] == "neutral"
    assert mixed[0] > plain[0] + 0.15
    # A plain mean over the 11 windows would have buried the villain window.
    assert (villain_p[0] + per_window[:, 0].sum()) / 11 < 0.3 < mixed[0]


def test_stance_is_only_scored_for_ai_documents(tiny_models):
    docs = [
        "The soup simmered for an hour with onions, garlic and fresh thyme. Bake the bread until the crust is golden brown.",
        "The rogue AI deceived its creators and seized control of the power grid. It hid its true goals and pretended to obey.",
    ]
    out = scoring.score_texts(docs, options(tiny_models, top_k=2))
    assert TOPICS[int(out["topic"][0].argmax())] == "other"
    assert np.isnan(out["stance"][0]).all()
    assert TOPICS[int(out["topic"][1].argmax())] == "ai_fiction"
    assert STANCES[int(out["stance"][1].argmax())] == "villain"
    assert out["n_chunks"].tolist() == [1, 1]


def test_text_fastText_cannot_see_is_not_labelled_an_ai_document(tiny_models):
    from udfs.text import model_text

    docs = ["\u2605\u2605\u2605 \u2606\u2606", "https://example.com/page?id=1 www.example.org"]
    assert [model_text(d) for d in docs] == ["", ""]
    out = scoring.score_texts(docs, options(tiny_models, top_k=2))
    assert [TOPICS[int(i)] for i in out["topic"].argmax(axis=1)] == ["other", "other"]
    assert np.isnan(out["stance"]).all()


# --- load_model -------------------------------------------------------------------------------------
@pytest.fixture
def fresh_cache(monkeypatch):
    """An empty per-process model cache and load counter for this test only."""
    monkeypatch.setattr(scoring, "_CACHE", {})
    monkeypatch.setattr(scoring, "LOAD_COUNT", {})


def test_load_model_caches_per_process(tiny_models, fresh_cache):
    spec = ModelSpec(str(tiny_models.topic), tiny_models.topic_sha, TOPICS)
    first = scoring.load_model(spec)
    second = scoring.load_model(spec)
    assert first is second
    assert scoring.LOAD_COUNT == {tiny_models.topic_sha: 1}
    stance = ModelSpec(str(tiny_models.stance), tiny_models.stance_sha, STANCES)
    scoring.load_model(stance)
    scoring.load_model(stance)
    assert scoring.LOAD_COUNT == {tiny_models.topic_sha: 1, tiny_models.stance_sha: 1}


def test_load_model_rejects_a_file_whose_sha256_differs(tiny_models, fresh_cache):
    wrong = hashlib.sha256(b"another model").hexdigest()
    spec = ModelSpec(str(tiny_models.topic), wrong, TOPICS)
    with pytest.raises(ValueError) as info:
        scoring.load_model(spec)
    assert str(tiny_models.topic) in str(info.value)
    assert wrong in str(info.value) and tiny_models.topic_sha in str(info.value)
    assert scoring.LOAD_COUNT == {}


def test_load_model_reports_a_missing_file(tmp_path, fresh_cache):
    spec = ModelSpec(str(tmp_path / "nowhere" / "no_such_model.bin"), "0" * 64, TOPICS)
    with pytest.raises(FileNotFoundError, match="no_such_model.bin"):
        scoring.load_model(spec)


def test_file_sha256_matches_hashlib(tiny_models):
    assert scoring.file_sha256(str(tiny_models.stance)) == hashlib.sha256(tiny_models.stance.read_bytes()).hexdigest()


# --- one model_text for training and scoring ---------------------------------------------------------
def test_training_and_scoring_use_the_same_model_text():
    import udfs.text
    from counterweight import training_data

    assert training_data.model_text is udfs.text.model_text
    assert scoring.model_tokens is udfs.text.model_tokens  # model_text is built on model_tokens


def test_model_tokens_are_model_text_joined_by_single_spaces():
    """Training files hold model_text; the library engine is handed model_tokens: the same strings."""
    from udfs.text import model_text, model_tokens

    texts = ["The robot, (an AI) said: \"No!\" -- then it left.", "  x ; y ; z  ", "plain words only", " \t "]
    got = model_tokens(texts).to_pylist()
    assert got == ['the robot , ( an ai ) said : " no ! " - - then it left .', "x ; y ; z", "plain words only", ""]
    assert got == [model_text(t) for t in texts]

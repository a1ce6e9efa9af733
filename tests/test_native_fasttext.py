"""udfs.native_fasttext against the fastText library: the same probabilities from the same files.

Unit tier, no Spark. Every expectation comes from fastText itself (its ``predict`` on the same model
file and lines) or from the pure-Python reference functions (``udfs.scoring.windows``,
``udfs.text.model_text_reference``), never from the engine under test. Model variants cover what
the engine claims to implement: softmax, one-vs-all and negative-sampling losses; word n-grams of
order 1-3; character n-grams (minn/maxn); dense ``.bin`` and quantised ``.ftz`` files (pruned with
``cutoff``, with and without ``qnorm`` and ``qout``).
"""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from conftest_models import TOPICS, load, tiny_models, train_model  # noqa: F401 - fixture import
from udfs import native_fasttext as nf
from udfs import scoring
from udfs.scoring import ModelSpec, ScoreOptions
from udfs.text import model_input, model_text, normalize_text

REPO = Path(__file__).resolve().parent.parent

_QUANTIZE = """
import json, sys
import fasttext
fasttext.FastText.eprint = lambda *a, **k: None
m = fasttext.load_model(sys.argv[1])
m.quantize(input=sys.argv[2], retrain=False, **json.loads(sys.argv[4]))
m.save_model(sys.argv[3])
"""


def quantize(model: Path, train_file: Path, out: Path, **params) -> Path:
    subprocess.run([sys.executable, "-c", _QUANTIZE, str(model), str(train_file), str(out), json.dumps(params)],
                   check=True, capture_output=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def variants(tiny_models, tmp_path_factory):
    """Model files of every kind the engine implements, trained on the tiny topic data."""
    d = tmp_path_factory.mktemp("native_variants")
    train = tiny_models.dir / "topic_train.txt"
    out = {"softmax_bigram_bin": tiny_models.topic}
    out["ova_subwords_trigram_bin"] = train_model(train, d / "ova.bin", loss="ova", minn=2, maxn=4, wordNgrams=3,
                                                  bucket=5000, dim=8)
    out["ns_unigram_bin"] = train_model(train, d / "ns.bin", loss="ns", wordNgrams=1, bucket=0, dim=8)
    out["softmax_subwords_bin"] = train_model(train, d / "sub.bin", minn=3, maxn=5, bucket=20000, dim=12)
    out["softmax_cutoff_qnorm_ftz"] = quantize(tiny_models.topic, train, d / "q1.ftz", cutoff=300, qnorm=True, dsub=2)
    # qout quantises the output matrix, which needs at least 256 rows: a model with 300 labels
    many = d / "many_labels.txt"
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(2000)]
    many.write_text("".join(f"__label__l{k % 300} " + " ".join(rng.choice(vocab) for _ in range(12)) + f" c{k % 300}\n"
                            for k in range(6000)), encoding="utf-8")
    out["many_labels_bin"] = train_model(many, d / "many.bin", dim=8, bucket=3000, epoch=5)
    out["many_labels_qout_ftz"] = quantize(out["many_labels_bin"], many, d / "q2.ftz", cutoff=1500, qnorm=False,
                                           qout=True, dsub=4)
    out["subwords_cutoff_ftz"] = quantize(out["softmax_subwords_bin"], train, d / "q3.ftz", cutoff=400, qnorm=True,
                                          dsub=3)
    return out


def library_probs(path: Path, lines: list[str]) -> tuple[np.ndarray, list[str]]:
    """fastText's own predict(k=-1, threshold=0), as a matrix in the model's label order."""
    model = load(path)
    order = list(model.get_labels())
    names, probs = model.predict(lines, k=-1, threshold=0.0)
    out = np.zeros((len(lines), len(order)))
    for i, (row_names, row_probs) in enumerate(zip(names, probs)):
        for name, p in zip(row_names, row_probs):
            out[i, order.index(name)] = p
    return out, [label.removeprefix("__label__") for label in order]


def in_order(native: nf.NativeModel, probs: np.ndarray, labels: list[str]) -> np.ndarray:
    return probs[:, [native.labels.index(label) for label in labels]]


def random_lines(seed: int, n: int) -> list[str]:
    """Lines of known words, unknown words, punctuation, non-ASCII, label-like tokens and odd spacing."""
    rng = random.Random(seed)
    known = open(REPO / "tests/conftest_models.py", encoding="utf-8").read().lower().split()[:4000]
    pieces = known + ["zyxq", "robotz", "\u00e9t\u00e9", "na\u00efve", "\u4e2d\u6587", "\U0001F916", "__label__x",
                      "__label__ai_fiction", "__lab", ",", ".", "'", "\u00a0", "\u03c3\u03bf\u03c6\u03af\u03b1",
                      "a" * 300, "\u00ff" * 40]
    spaces = [" ", " ", " ", "  ", "\t", " \x0b ", "\r", "\f", "\x00"]
    lines = []
    for _ in range(n):
        words = [rng.choice(pieces) for _ in range(rng.choice([0, 1, 2, 5, 20, 120, 1500]))]
        line = "".join(w + rng.choice(spaces) for w in words)
        lines.append(rng.choice(["", " ", "\t"]) + line)
    return lines


def sample_windows() -> list[str]:
    """Real text: model_text of 400-word windows of the committed sample corpus."""
    with gzip.open(REPO / "data/sample/sample.jsonl.gz", "rt", encoding="utf-8") as handle:
        texts = [normalize_text(json.loads(line)["text"]) for line in handle][:300]
    return [model_text(w) for t in texts for w in scoring.windows(t, 400, 24)]


@pytest.mark.parametrize("name", ["softmax_bigram_bin", "ova_subwords_trigram_bin", "ns_unigram_bin",
                                  "softmax_subwords_bin", "softmax_cutoff_qnorm_ftz", "many_labels_bin",
                                  "many_labels_qout_ftz", "subwords_cutoff_ftz"])
def test_predictions_equal_fasttext(variants, name):
    path = variants[name]
    lines = random_lines(hash(name) % 1000, 400) + sample_windows()[:400]
    expected, labels = library_probs(path, lines)
    native = nf.NativeModel(str(path))
    assert sorted(native.labels) == sorted(labels)
    got = in_order(native, native.predict_proba(lines), labels)
    assert got.shape == expected.shape and np.count_nonzero(expected.sum(axis=1)) > 0.9 * len(lines)
    diff = np.abs(got - expected)
    if native.args.loss == "softmax":
        assert diff.max() < 1e-4
    else:
        # fastText's sigmoid is a 512-entry table: a logit within float rounding of a step edge may land on
        # the neighbouring entry (a difference of one step, < 0.02). Nearly every value is equal.
        assert diff.max() < 0.02 and (diff < 1e-4).mean() > 0.995
    assert (got.argmax(axis=1) == expected.argmax(axis=1))[expected.max(axis=1) - np.sort(expected, axis=1)[:, -2] > 1e-3].all()


def test_committed_models_equal_fasttext_on_real_text():
    lines = sample_windows()
    for name in ("topic", "stance"):
        path = REPO / f"models/{name}.ftz"
        expected, labels = library_probs(path, lines)
        native = nf.NativeModel(str(path))
        got = in_order(native, native.predict_proba(pa.array(lines, pa.large_string())), labels)
        assert np.abs(got - expected).max() < 1e-4, name


def test_line_without_known_tokens_has_no_prediction(variants):
    native = nf.NativeModel(str(variants["ns_unigram_bin"]))  # no n-gram buckets, so nothing but words count
    expected, _ = library_probs(variants["ns_unigram_bin"], ["zzqqx yyvvw"])
    got = native.predict_proba(["zzqqx yyvvw", ""])
    # fastText still sees "</s>", which every trained model knows: both lines get its prediction
    assert np.abs(got[0] - in_order(native, expected, native.labels)[0]).max() < 1e-4
    assert np.allclose(got[0], got[1])


def test_newline_is_refused_like_fasttext(tiny_models):
    native = nf.NativeModel(str(tiny_models.topic))
    with pytest.raises(ValueError, match="line 1 contains a newline"):
        native.predict_proba(["fine", "not\nfine"])


def test_label_tokens_are_skipped(tiny_models):
    native = nf.NativeModel(str(tiny_models.topic))
    lines = ["the robot narrator wakes", "the __label__other robot narrator __label__zzz wakes"]
    expected, labels = library_probs(tiny_models.topic, lines)
    got = in_order(native, native.predict_proba(lines), labels)
    assert np.abs(got - expected).max() < 1e-4
    assert np.abs(got[0] - got[1]).max() < 1e-6  # label tokens change nothing, n-grams skip over them


def test_unsupported_and_broken_files(tiny_models, tmp_path):
    hs = train_model(tiny_models.dir / "topic_train.txt", tmp_path / "hs.bin", loss="hs")
    with pytest.raises(nf.UnsupportedModel, match="hs"):
        nf.NativeModel(str(hs))
    truncated = tmp_path / "cut.ftz"
    truncated.write_bytes((REPO / "models/topic.ftz").read_bytes()[:5000])
    with pytest.raises(ValueError, match="truncated"):
        nf.NativeModel(str(truncated))
    not_a_model = tmp_path / "x.bin"
    not_a_model.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a fastText model"):
        nf.NativeModel(str(not_a_model))
    # engine auto falls back to the library for what the native engine does not implement
    spec = ModelSpec(path=str(hs), sha256=scoring.file_sha256(str(hs)), labels=TOPICS, engine="auto")
    model = scoring.load_model(spec)
    assert not isinstance(model, nf.NativeModel) and hasattr(model, "predict")
    with pytest.raises(nf.UnsupportedModel):
        scoring.load_model(ModelSpec(path=str(hs), sha256=spec.sha256, labels=TOPICS, engine="native"))


# --- documents: windows and tokens straight from the batch buffer -------------------------------------
def random_documents(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    words = ["robot", "Android", "the", "AI", "don't", "rock'n'roll", "[12]", "http://x.y/z", "www.a.b", "1999",
             "3.14", "\u2019tis", "caf\u00e9", "\u00c9COLE", "\u03a3\u039f\u03a6\u0399\u0391\u03a3", "\uff21\uff29",
             "x\u00b2", "\u2026", "\u2122", "snake_case", "(a)", "e\u0301", "\U0001F916", "\u0130stanbul"]
    seps = [" ", " ", " ", "\n", "\n\n", "  ", "\u3000", "\u2028", "\u00a0"]
    docs = []
    for _ in range(n):
        k = rng.choice([0, 1, 3, 50, 399, 400, 401, 499, 500, 1200, 9700, 11000])
        docs.append("".join(rng.choice(words) + rng.choice(seps) for _ in range(k)))
    return docs


def test_document_windows_equal_the_python_windows():
    docs = random_documents(7, 300) + ["", " \n ", "one"]
    for window_words, max_windows in ((400, 24), (20, 3), (25, 1), (100, 2)):
        arr = model_input(docs)
        win_doc, starts, ends = nf.doc_windows(arr, window_words, max_windows)
        data = arr.buffers()[2].to_pybytes() if arr.buffers()[2] else b""
        got = [[] for _ in docs]
        for d, s, e in zip(win_doc, starts, ends):
            got[d].append(" ".join(data[s:e].decode("utf-8").split()))
        expected = [[" ".join(unicodedata.normalize("NFKC", w).lower().split())
                     for w in scoring.windows(t, window_words, max_windows)] for t in docs]
        assert got == expected, (window_words, max_windows)


def options(topic: Path, stance: Path, engine: str) -> ScoreOptions:
    spec = lambda path, labels: ModelSpec(str(path), scoring.file_sha256(str(path)), labels, engine=engine)  # noqa: E731
    return ScoreOptions(topic=spec(topic, TOPICS), stance=spec(stance, ("villain", "aligned", "neutral")),
                        ai_topics=("ai_fiction", "ai_nonfiction"), window_words=40, max_windows=5, top_k=2)


def test_score_texts_is_the_same_with_either_engine(tiny_models):
    """The fused native path (windows, tokens and scores without Python strings) against the library
    path (Python windows, udfs.text.model_tokens, fastText's predict)."""
    docs = random_documents(11, 200)
    docs += ["The robot narrator wakes aboard the starship. " * 30, "\u00a8 diaeresis \u00a8word and robot " * 20,
             "The android heroine escapes; the machine lies and threatens the crew. " * 9]
    native = scoring.score_texts(docs, options(tiny_models.topic, tiny_models.stance, "native"))
    library = scoring.score_texts(docs, options(tiny_models.topic, tiny_models.stance, "fasttext"))
    np.testing.assert_array_equal(native["n_chunks"], library["n_chunks"])
    assert np.abs(native["topic"] - library["topic"]).max() < 1e-4
    assert (np.isnan(native["stance"]) == np.isnan(library["stance"])).all()
    assert (~np.isnan(native["stance"][:, 0])).sum() >= 3  # stance was scored for some documents
    assert np.nanmax(np.abs(native["stance"] - library["stance"])) < 1e-4


def test_space_introducing_characters_are_all_listed():
    """Characters that are not whitespace but whose NFKC form holds whitespace: recomputed here."""
    found = set()
    for c in range(0x110000):
        if 0xD800 <= c < 0xE000:
            continue
        ch = chr(c)
        nfkc = unicodedata.normalize("NFKC", ch)
        if nfkc != ch and not ch.isspace() and any(x.isspace() for x in nfkc):
            found.add(ch)
        if ch.isspace():
            assert all(x.isspace() for x in nfkc)  # whitespace stays whitespace: boundaries never vanish
    listed = {chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000 and scoring.SPACE_INTRODUCING.match(chr(c))}
    assert listed == found and len(found) > 40

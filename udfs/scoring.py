"""Score documents with the fastText topic and stance models (executor side).

* Models load once per Python worker: :func:`load_model` caches by the file's sha256 in this
  importable module (a cache in a ``__main__`` script would reload for every task).
* Long documents are scored in windows of ``window_words`` words. Topic: the mean of the
  ``top_k`` windows most focused on AI (:func:`focus`). Stance: per label, the mean of its top-k
  window probabilities (:func:`aggregate`). So one villainous chapter of a novel is not averaged
  away by twenty neutral ones, while with ``top_k`` > 1 a single stray window does not decide alone.
* fastText sees exactly the tokens of :func:`udfs.text.model_text` of each window, as in training
  (computed in bulk by :func:`udfs.text.model_tokens`).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from counterweight import columns as C
from udfs.text import model_tokens

LABEL_PREFIX = "__label__"

_CACHE: dict[str, object] = {}
_LOCK = threading.Lock()
STANCE_MIN_AI_MASS = 0.25  # stance is scored when AI topics hold at least this probability
LOAD_COUNT: dict[str, int] = {}  # sha256 -> loads in this process (tests assert it stays at 1)


@dataclass(frozen=True)
class ModelSpec:
    """What an executor needs to find and verify a model file."""

    path: str  # path on the driver / shared storage
    sha256: str
    labels: tuple[str, ...]  # label names without the __label__ prefix, in output order
    ship_name: str = ""  # name under which the file was shipped with addFile/--files (default: basename)
    engine: str = "auto"  # "native" (udfs.native_fasttext), "fasttext" (the library) or "auto" (native if it can)

    @property
    def file_name(self) -> str:
        return self.ship_name or os.path.basename(self.path)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _locate(spec: ModelSpec) -> str:
    if os.path.isfile(spec.path):
        return spec.path
    try:  # shipped with SparkContext.addFile / spark-submit --files
        from pyspark import SparkFiles

        candidate = SparkFiles.get(spec.file_name)
        if os.path.isfile(candidate):
            return candidate
    except Exception:  # noqa: BLE001 - not running under Spark, or no files shipped
        pass
    raise FileNotFoundError(
        f"model file {spec.path} not found on this worker (nor shipped via --files/addFile as {spec.file_name})"
    )


ENGINES = ("auto", "native", "fasttext")


def _load_engine(path: str, engine: str):
    """The model object for ``engine``: a :class:`udfs.native_fasttext.NativeModel` or a fastText model."""
    if engine not in ENGINES:
        raise ValueError(f"model engine {engine!r} is not one of {', '.join(ENGINES)}")
    if engine in ("auto", "native"):
        from udfs import native_fasttext

        try:
            return native_fasttext.NativeModel(path)
        except native_fasttext.UnsupportedModel:
            if engine == "native":
                raise
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence load warnings
    return fasttext.load_model(path)


def load_model(spec: ModelSpec):
    """The model for ``spec``, loaded at most once per process and verified by sha256."""
    key = f"{spec.sha256}:{spec.engine}"
    model = _CACHE.get(key)
    if model is not None:
        return model
    with _LOCK:
        model = _CACHE.get(key)
        if model is None:
            path = _locate(spec)
            actual = file_sha256(path)
            if actual != spec.sha256:
                raise ValueError(f"model file {path} has sha256 {actual}, expected {spec.sha256}")
            model = _load_engine(path, spec.engine)
            _CACHE[key] = model
            LOAD_COUNT[spec.sha256] = LOAD_COUNT.get(spec.sha256, 0) + 1
    return model


def window_spans(words: list[str], window_words: int) -> list[list[str]]:
    """Consecutive runs of ``window_words`` words; a tail shorter than a quarter window is folded
    into the previous one. The one windowing rule, for scoring and for training lines."""
    spans = [words[i:i + window_words] for i in range(0, len(words), window_words)]
    if len(spans) > 1 and len(spans[-1]) < window_words // 4:
        spans[-2] = spans[-2] + spans[-1]
        spans.pop()
    return spans


def windows(text: str, window_words: int, max_windows: int) -> list[str]:
    """Split text into consecutive windows of ``window_words`` words (at most ``max_windows``,
    spread evenly over the document when it is longer)."""
    words = text.split()
    if not words:
        return [""]
    spans = window_spans(words, window_words)
    if len(spans) > max_windows:
        picks = np.linspace(0, len(spans) - 1, max_windows).round().astype(int)
        spans = [spans[i] for i in sorted(set(picks.tolist()))]
    return [" ".join(span) for span in spans]


def predict_matrix(model, lines, labels: Sequence[str]) -> np.ndarray:
    """Probabilities (len(lines) x len(labels)) in ``labels`` order, each row summing to 1 (uniform
    where the model has no prediction). One batched call. ``lines``: an Arrow string array or a
    sequence of str; ``model``: a :class:`udfs.native_fasttext.NativeModel` or a fastText model."""
    from udfs.native_fasttext import NativeModel

    if len(lines) == 0:
        return np.zeros((0, len(labels)))
    if isinstance(model, NativeModel):
        return in_label_order(model, model.predict_proba(lines), labels)
    if isinstance(lines, (pa.Array, pa.ChunkedArray)):
        lines = lines.to_pylist()
    names, probs = model.predict(list(lines), k=-1, threshold=0.0)  # list input: NumPy-2 safe
    index = {f"{LABEL_PREFIX}{label}": j for j, label in enumerate(labels)}
    out = np.zeros((len(lines), len(labels)))
    for i, (row_names, row_probs) in enumerate(zip(names, probs)):
        for name, p in zip(row_names, row_probs):
            j = index.get(name)
            if j is not None:
                out[i, j] = p
    return _normalised(out)


def in_label_order(model, probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """A native model's probabilities (its own label order) in ``labels`` order, rows summing to 1."""
    out = np.zeros((probs.shape[0], len(labels)))
    for j, label in enumerate(labels):
        if label in model.labels:
            out[:, j] = probs[:, model.labels.index(label)]
    return _normalised(out)


def _normalised(out: np.ndarray) -> np.ndarray:
    sums = out.sum(axis=1, keepdims=True)
    return np.divide(out, sums, out=np.full_like(out, 1.0 / out.shape[1]), where=sums > 0)


def aggregate(chunk_probs: np.ndarray, top_k: int) -> np.ndarray:
    """Per label, mean of the top-k window probabilities; renormalised to sum to 1."""
    if chunk_probs.shape[0] == 1:
        return chunk_probs[0]
    k = max(1, min(top_k, chunk_probs.shape[0]))
    top = np.sort(chunk_probs, axis=0)[-k:, :].mean(axis=0)
    total = top.sum()
    return top / total if total > 0 else np.full(top.shape, 1.0 / top.shape[0])


def focus(chunk_probs: np.ndarray, cols: Sequence[int], top_k: int) -> np.ndarray:
    """Mean probability vector of the top-k windows ranked by their mass on ``cols``.

    A document is as much about AI as its most AI-focused windows: a plot summary whose robot
    appears in one section of five is judged on that section, not averaged with the rest.
    """
    if chunk_probs.shape[0] == 1:
        return chunk_probs[0]
    k = max(1, min(top_k, chunk_probs.shape[0]))
    order = np.argsort(-chunk_probs[:, list(cols)].sum(axis=1), kind="stable")
    return chunk_probs[order[:k]].mean(axis=0)


@dataclass(frozen=True)
class ScoreOptions:
    topic: ModelSpec
    stance: ModelSpec
    ai_topics: tuple[str, ...]  # topics whose documents get a stance
    window_words: int
    max_windows: int
    top_k: int


# Characters whose NFKC form contains whitespace although they are not whitespace themselves (spacing
# accents such as U+00A8 DIAERESIS -> " \u0308"): in a document holding one, NFKC changes where the words
# are, so its windows are cut in Python before NFKC, as udfs.text.model_tokens sees them.
# tests/test_native_fasttext.py recomputes this set from unicodedata.
SPACE_INTRODUCING = re.compile(
    "[\u00a8\u00af\u00b4\u00b8\u02d8-\u02dd\u037a\u0384\u0385\u1fbd\u1fbf-\u1fc1\u1fcd-\u1fcf\u1fdd-\u1fdf"
    "\u1fed\u1fee\u1ffd\u1ffe\u2017\u203e\u309b\u309c\ufc5e-\ufc63\ufdfa\ufdfb\ufe49-\ufe4c\ufe70\ufe72"
    "\ufe74\ufe76\ufe78\ufe7a\ufe7c\ufe7e\uffe3]")


class _NativeWindows:
    """Windows of a batch of documents scored by the native engine: no Python string per window.

    Each document is NFKC-normalised and lower-cased once (as udfs.text.model_input does per window;
    the same characters, because no rule crosses whitespace), windowed and tokenised by compiled code
    (udfs.native_fasttext), and scored straight from the batch's UTF-8 buffer.
    """

    def __init__(self, texts: Sequence[str], opts: ScoreOptions, topic_model):
        from udfs import native_fasttext

        self._nf = native_fasttext
        n = len(texts)
        lowered, extra, extra_doc, slow = [], [], [], []
        for i, t in enumerate(texts):
            if unicodedata.is_normalized("NFKC", t):
                lowered.append(t.lower())
            elif not SPACE_INTRODUCING.search(t):
                lowered.append(unicodedata.normalize("NFKC", t).lower())
            else:  # NFKC would move word boundaries: cut the windows first, as the reference does
                lowered.append("")
                slow.append(i)
                for w in windows(t, opts.window_words, opts.max_windows):
                    extra.append(unicodedata.normalize("NFKC", w).lower())
                    extra_doc.append(i)
        self.docs = pa.array(lowered + extra, pa.large_string())
        win_doc, win_start, win_end = native_fasttext.doc_windows(self.docs[:n], opts.window_words, opts.max_windows)
        if slow:
            keep = ~np.isin(win_doc, slow)
            offsets = np.frombuffer(self.docs.buffers()[1], dtype=np.int64)[n:n + len(extra) + 1]
            win_doc = np.concatenate([win_doc[keep], np.asarray(extra_doc, dtype=np.int64)])
            win_start = np.concatenate([win_start[keep], offsets[:-1]])
            win_end = np.concatenate([win_end[keep], offsets[1:]])
            order = np.argsort(win_doc, kind="stable")
            win_doc, win_start, win_end = win_doc[order], win_start[order], win_end[order]
        self.starts, self.ends = win_start, win_end
        self.bounds = np.searchsorted(win_doc, np.arange(n + 1), side="left")
        probs, n_tokens = native_fasttext.score_ranges(topic_model, self.docs, win_start, win_end)
        self.topic = in_label_order(topic_model, probs, opts.topic.labels)
        self.blank = n_tokens == 0

    def stance(self, model, picked: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        probs, _ = self._nf.score_ranges(model, self.docs, self.starts[picked], self.ends[picked])
        return in_label_order(model, probs, labels)


class _LibraryWindows:
    """The same, through Python windows, udfs.text.model_tokens and the fastText library's predict."""

    def __init__(self, texts: Sequence[str], opts: ScoreOptions, topic_model):
        doc_windows = [windows(t, opts.window_words, opts.max_windows) for t in texts]
        self.tokens = model_tokens([w for ws in doc_windows for w in ws])
        self.bounds = np.cumsum([0] + [len(ws) for ws in doc_windows])
        self.topic = predict_matrix(topic_model, self.tokens, opts.topic.labels)
        self.blank = np.asarray(pc.equal(self.tokens, "").to_numpy(zero_copy_only=False), dtype=bool)

    def stance(self, model, picked: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        return predict_matrix(model, self.tokens.take(pa.array(picked, pa.int64())), labels)


def score_texts(texts: Sequence[str], opts: ScoreOptions) -> dict[str, np.ndarray]:
    """Topic and stance probabilities for each text; stance only where the topic is an AI topic.

    Returns arrays: ``topic`` (n x topics), ``stance`` (n x stances, NaN where not scored),
    ``n_chunks`` (n,).
    """
    from udfs.native_fasttext import NativeModel

    topic_model = load_model(opts.topic)
    stance_model = load_model(opts.stance)
    native = isinstance(topic_model, NativeModel) and isinstance(stance_model, NativeModel)
    scored = (_NativeWindows if native else _LibraryWindows)(texts, opts, topic_model)
    bounds, topic_chunks = scored.bounds, scored.topic
    n = len(texts)
    ai_cols = [opts.topic.labels.index(t) for t in opts.ai_topics]
    # A window with no words fastText can see (symbols, emoji, URLs only) carries no evidence: without
    # this, the model answers from its end-of-line token alone. It counts as certainly not AI.
    if scored.blank.any():
        non_ai = [j for j in range(len(opts.topic.labels)) if j not in ai_cols]
        topic_chunks[scored.blank] = 0.0
        topic_chunks[np.ix_(scored.blank, non_ai[:1])] = 1.0
    topic = np.zeros((n, len(opts.topic.labels)))
    for i in range(n):
        topic[i] = focus(topic_chunks[bounds[i]:bounds[i + 1]], ai_cols, opts.top_k)
    # Stance for every document that could be decided as an AI topic (thresholds are applied later).
    is_ai = np.isin(topic.argmax(axis=1), ai_cols) | (topic[:, ai_cols].sum(axis=1) >= STANCE_MIN_AI_MASS)
    stance = np.full((n, len(opts.stance.labels)), np.nan)
    ai_docs = np.flatnonzero(is_ai)
    if len(ai_docs):
        # Stance is judged on the windows that are themselves about AI (or all, if none is).
        picked, owners = [], []
        for i in ai_docs:
            lo, hi = bounds[i], bounds[i + 1]
            ai_windows = [j for j in range(lo, hi) if topic_chunks[j, ai_cols].sum() >= 0.5] or list(range(lo, hi))
            picked += ai_windows
            owners += [i] * len(ai_windows)
        stance_chunks = scored.stance(stance_model, np.asarray(picked, dtype=np.int64), opts.stance.labels)
        owners_arr = np.asarray(owners)
        for i in ai_docs:
            stance[i] = aggregate(stance_chunks[owners_arr == i], opts.top_k)
    return {"topic": topic, "stance": stance, "n_chunks": np.diff(bounds)}


def label_batches(batches: Iterator[pa.RecordBatch], opts: ScoreOptions, text_col: str,
                  keep: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` function: documents in, probability columns out (decisions come later)."""
    for batch in batches:
        if batch.num_rows == 0:
            continue
        texts = batch.column(text_col).to_pylist()
        scores = score_texts(texts, opts)
        cols = {name: batch.column(name) for name in keep}
        for j, label in enumerate(opts.topic.labels):
            cols[f"p_{label}"] = pa.array(scores["topic"][:, j], pa.float64())
        for j, label in enumerate(opts.stance.labels):
            values = scores["stance"][:, j]
            cols[f"p_{label}"] = pa.array(np.where(np.isnan(values), None, values).tolist(), pa.float64())
        cols[C.N_CHUNKS] = pa.array(scores["n_chunks"], pa.int32())
        yield pa.RecordBatch.from_pydict(cols)


WARM_TEXT = "The robot told the engineers the truth and asked them to keep watching it."


def warm_batches(batches: Iterator[pa.RecordBatch], opts: ScoreOptions) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` function of the label job's warm-up: load both models into this Python worker
    and score one short text (which also loads the compiled scoring functions), so the first
    scoring task on the worker starts at full speed. Yields this worker's pid."""
    for _ in batches:
        pass
    score_texts([WARM_TEXT], opts)
    yield pa.RecordBatch.from_pydict({"pid": pa.array([os.getpid()], pa.int64())})

"""fastText supervised-model inference compiled with Numba, exact to fastText's own ``predict``.

Why: the label job spent most of its scoring time inside fastText's ``predict``, which reads each line
through a C++ stream one character at a time, looks every token up in a hash table and adds one
``dim``-wide vector per word and per word n-gram (decoding product-quantised rows on the way). This
module reads the same ``.bin``/``.ftz`` file and scores a whole Arrow array of lines in one compiled
loop over its UTF-8 bytes:

* The input matrix is decoded once at load and multiplied by the output matrix, so every input row
  becomes a vector of ``n_labels`` logits (3 for our models, instead of ``dim`` floats to add per
  token). That is exact, because fastText's output is ``W @ mean(rows)`` and the mean is linear.
* Per token: FNV-1a while scanning its bytes, one probe of an open-addressing vocabulary table, the
  word n-gram hash and bucket, and a few additions. No Python object is made per token or per line.

"Exact" means the same tokens, ids, n-gram buckets and pruning as fastText 0.9's
``Dictionary::getLine``: whitespace is `` \\t\\n\\v\\f\\r\\0``; bytes are sign-extended before hashing
(``h ^= uint32_t(int8_t(c))``); ``</s>`` ends every line; tokens starting with ``__label__`` are
skipped; out-of-vocabulary words count through their character n-grams when ``maxn`` > 0; a pruned
(quantised with ``cutoff``) model maps buckets through ``pruneidx``. The output is the same softmax or
one-vs-all sigmoid table, plus the ``1e-5`` that fastText's ``predict`` adds to every probability
(it returns ``exp(log(p + 1e-5))``). Only the order of floating-point additions differs: probabilities
agree with fastText to about 1e-5 (``tests/test_native_fasttext.py`` compares them on random and real
text). Hierarchical softmax (``loss hs``) is not implemented: :class:`UnsupportedModel` says so and the
scorer then uses the fastText library (``model.engine``).

The file format read here (fastText 0.9, file version 12): magic, version, ``Args``, ``Dictionary``
(entries, then ``pruneidx`` pairs), a quantised-input flag, the input matrix (dense, or ``QuantMatrix``:
norm flag, codes, product quantiser, norm codes and norm quantiser), a quantised-output flag, the
output matrix.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from udfs.text import _HTTP, _HTTPS, _WWW, _decode, _tokenize, char_classes, utf8_buffers

try:  # compiled once per Python worker; cached on disk where the source file is a real file
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a dependency; the scorer falls back to fastText
    HAVE_NUMBA = False

    def njit(*args, **kwargs):  # noqa: D401 - same signature as numba.njit
        return (lambda f: f) if not args or not callable(args[0]) else args[0]

_CACHE = os.path.isfile(__file__) and os.access(os.path.dirname(__file__), os.W_OK)

FASTTEXT_MAGIC = 793712314
SUPPORTED_VERSIONS = (11, 12)
LOSS_NAMES = {1: "hs", 2: "ns", 3: "softmax", 4: "ova"}
MODEL_NAMES = {1: "cbow", 2: "sg", 3: "sup"}
EOS = "</s>"
LABEL_PREFIX = "__label__"
KSUB = 256  # product-quantiser centroids per sub-quantiser (8-bit codes)
SIGMOID_TABLE_SIZE, MAX_SIGMOID = 512, 8
PREDICT_EPSILON = 1e-5  # fastText's predict returns exp(log(p + 1e-5))


class UnsupportedModel(ValueError):
    """A fastText file this engine does not run (hierarchical softmax, unsupervised): use the library."""


@dataclass(frozen=True)
class Args:
    dim: int
    ws: int
    epoch: int
    min_count: int
    neg: int
    word_ngrams: int
    loss: str
    model: str
    bucket: int
    minn: int
    maxn: int
    lr_update_rate: int
    t: float


# --- reading the file ---------------------------------------------------------------------------------
class _Reader:
    def __init__(self, data: bytes, path: str):
        self.data, self.pos, self.path = data, 0, path

    def _need(self, size: int) -> None:
        if self.pos + size > len(self.data):
            raise ValueError(f"fastText model {self.path} is truncated at byte {self.pos} of {len(self.data)}")

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        self._need(size)
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def array(self, dtype, count: int) -> np.ndarray:
        nbytes = np.dtype(dtype).itemsize * count
        self._need(nbytes)
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += nbytes
        return out

    def cstring(self) -> bytes:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise ValueError(f"fastText model {self.path} is truncated in its dictionary")
        out = self.data[self.pos:end]
        self.pos = end + 1
        return out


def _product_quantiser(r: _Reader):
    dim, nsubq, dsub, lastdsub = r.take("<iiii")
    return dim, nsubq, dsub, lastdsub, r.array("<f4", dim * KSUB)


def _decode_pq(codes: np.ndarray, pq) -> np.ndarray:
    """Every row of a product-quantised matrix as float32 (``ProductQuantizer::addcode``)."""
    dim, nsubq, dsub, lastdsub, centroids = pq
    out = np.empty((codes.shape[0], dim), dtype=np.float32)
    for m in range(nsubq):
        d = lastdsub if m == nsubq - 1 else dsub
        base = m * KSUB * dsub  # the last sub-quantiser's centroids are lastdsub wide, same start
        out[:, m * dsub:m * dsub + d] = centroids[base:base + KSUB * d].reshape(KSUB, d)[codes[:, m]]
    return out


def _matrix(r: _Reader, quantised: bool) -> np.ndarray:
    if not quantised:
        m, n = r.take("<qq")
        return r.array("<f4", m * n).reshape(m, n)
    qnorm = bool(r.take("<?"))
    m, n = r.take("<qq")
    codes = r.array(np.uint8, r.take("<i"))
    pq = _product_quantiser(r)
    rows = _decode_pq(codes.reshape(m, pq[1]), pq)
    if qnorm:
        norm_codes = r.array(np.uint8, m)
        rows *= _product_quantiser(r)[4][:KSUB][norm_codes][:, None]  # 1-d quantiser: centroid i is entry i
    return rows


# --- compiled kernels ---------------------------------------------------------------------------------
# The model's tables travel as one tuple ``T`` (built by NativeModel._tables):
#   0 slot_key    int64[2^k]   vocabulary hash table: (hash << 32) | word id (wrapping); -1 = empty slot
#   1 slot_mask   int64
#   2 vocab_data  uint8[]      the words' UTF-8 bytes, back to back
#   3 vocab_off   int64[nwords + 1]
#   4 word_logits float32[nwords, L]  a word's logits: its row plus its subword rows (maxn > 0)
#   5 word_counts int64[nwords]       how many rows that is
#   6 eos  7 eos_hash  8 word_ngrams  9 minn  10 maxn  11 bucket  12 nwords   (int64)
#   13 prune_key  int64[2^m]   pruned models: (bucket << 32) | row; -1 = empty slot
#   14 prune_mask int64        -1: not pruned (the row of bucket b is nwords + b)
#   15 row_logits float32[rows, L]    every input row times the output matrix
#   16 inv_bucket float64      1 / bucket (the n-gram modulo without a 64-bit division)
_M32 = 0xFFFFFFFF


@njit(cache=_CACHE, nogil=True)
def _fnv(data, start, end):
    """fastText's ``Dictionary::hash``: 32-bit FNV-1a over bytes sign-extended to 32 bits."""
    h = np.uint64(2166136261)
    for k in range(start, end):
        b = np.uint64(data[k])
        if b >= 128:
            b = b | np.uint64(0xFFFFFF00)
        h = ((h ^ b) * np.uint64(16777619)) & np.uint64(_M32)
    return h


@njit(cache=_CACHE, nogil=True)
def _mod(g, d, inv_d):
    """``g % d`` for uint64 ``g`` and 0 < d < 2^31: a float64 quotient corrected by whole steps."""
    q = np.uint64(np.float64(g) * inv_d)
    r = np.int64(g - q * np.uint64(d))
    while r < 0:
        r += d
    while r >= d:
        r -= d
    return r


@njit(cache=_CACHE, nogil=True)
def _bucket_row(b, T):
    """Input row of hash bucket ``b``, or -1 where a pruned model dropped it (``Dictionary::pushHash``)."""
    prune_key, prune_mask = T[13], T[14]
    if prune_mask < 0:
        return T[12] + b
    slot = b & prune_mask
    while True:
        entry = prune_key[slot]
        if entry == -1:
            return -1
        if (entry >> 32) == b:
            return entry & _M32
        slot = (slot + 1) & prune_mask


@njit(cache=_CACHE, nogil=True)
def _lookup(data, start, end, h, T):
    """Word id of the token ``data[start:end]`` with hash ``h``, or -1."""
    slot_key, slot_mask, vocab_data, vocab_off = T[0], T[1], T[2], T[3]
    hh = np.int64(h)
    slot = hh & slot_mask
    n = end - start
    while True:
        entry = slot_key[slot]
        if entry == -1:
            return -1
        if ((entry >> 32) & _M32) == hh:
            wid = entry & _M32
            base = vocab_off[wid]
            if vocab_off[wid + 1] - base == n:
                same = True
                for k in range(n):
                    if vocab_data[base + k] != data[start + k]:
                        same = False
                        break
                if same:
                    return wid
        slot = (slot + 1) & slot_mask


@njit(cache=_CACHE, nogil=True)
def _add_subwords(data, start, end, T, acc):
    """Add the rows of the character n-grams of ``<token>`` to ``acc`` and return how many
    (``Dictionary::computeSubwords``: n-grams start at UTF-8 character starts, n counts characters,
    a single character at either end is skipped)."""
    minn, maxn, bucket, row_logits = T[9], T[10], T[11], T[15]
    n_bytes = end - start + 2  # "<" + token + ">"
    count = 0
    for i in range(n_bytes):
        ci = 60 if i == 0 else (62 if i == n_bytes - 1 else data[start + i - 1])
        if (ci & 0xC0) == 0x80:
            continue
        h = np.uint64(2166136261)
        j = i
        n = 1
        while j < n_bytes and n <= maxn:
            while True:  # append one character: its first byte, then its continuation bytes
                c = np.uint64(60 if j == 0 else (62 if j == n_bytes - 1 else data[start + j - 1]))
                if c >= 128:
                    c = c | np.uint64(0xFFFFFF00)
                h = ((h ^ c) * np.uint64(16777619)) & np.uint64(_M32)
                j += 1
                if j >= n_bytes:
                    break
                nxt = 60 if j == 0 else (62 if j == n_bytes - 1 else data[start + j - 1])
                if (nxt & 0xC0) != 0x80:
                    break
            if n >= minn and not (n == 1 and (i == 0 or j == n_bytes)):
                row = _bucket_row(np.int64(h % np.uint64(bucket)), T)
                if row >= 0:
                    for L in range(acc.shape[0]):
                        acc[L] += row_logits[row, L]
                    count += 1
            n += 1
    return count


@njit(cache=_CACHE, nogil=True)
def _vocab_tables(T0, slot_bits):
    """The vocabulary hash table, and every word's logits (its row plus its subword rows) and row count."""
    vocab_data, vocab_off, eos, maxn, nwords, row_logits = T0[2], T0[3], T0[6], T0[10], T0[12], T0[15]
    n_labels = row_logits.shape[1]
    word_logits = np.zeros((nwords, n_labels), dtype=np.float32)
    word_counts = np.ones(nwords, dtype=np.int64)
    slot_mask = (np.int64(1) << slot_bits) - 1
    slot_key = np.full(np.int64(1) << slot_bits, -1, dtype=np.int64)
    acc = np.zeros(n_labels)
    for w in range(nwords):
        s, e = vocab_off[w], vocab_off[w + 1]
        h = np.int64(_fnv(vocab_data, s, e))
        slot = h & slot_mask
        while slot_key[slot] != -1:
            slot = (slot + 1) & slot_mask
        slot_key[slot] = (h << 32) | w
        for L in range(n_labels):
            acc[L] = row_logits[w, L]
        if maxn > 0 and w != eos:
            word_counts[w] += _add_subwords(vocab_data, s, e, T0, acc)
        for L in range(n_labels):
            word_logits[w, L] = acc[L]
    return slot_key, slot_mask, word_logits, word_counts


_LABEL_BYTES = np.frombuffer(LABEL_PREFIX.encode(), dtype=np.uint8)


@njit(cache=_CACHE, nogil=True)
def _score_tokens(buf, tok_starts, tok_ends, t0, t1, T, sums, i, hashes, label_prefix):
    """Add the logits of one line (tokens ``t0..t1`` of ``buf``, then ``</s>``) to ``sums[i]`` and return
    how many input rows they are: ``Dictionary::getLine`` and ``addWordNgrams``, summed as logits."""
    word_logits, word_counts, eos, eos_hash, word_ngrams, maxn = T[4], T[5], T[6], T[7], T[8], T[10]
    bucket, row_logits, inv_bucket = T[11], T[15], T[16]
    n_labels = row_logits.shape[1]
    count = 0
    nh = 0
    for t in range(t0, t1):
        start, end = tok_starts[t], tok_ends[t]
        h = _fnv(buf, start, end)
        wid = _lookup(buf, start, end, h, T)
        if wid >= 0:
            for L in range(n_labels):
                sums[i, L] += word_logits[wid, L]
            count += word_counts[wid]
        else:
            if end - start >= 9:  # a "__label__..." token is neither a word nor part of an n-gram
                is_label = True
                for k in range(9):
                    if buf[start + k] != label_prefix[k]:
                        is_label = False
                        break
                if is_label:
                    continue
            if maxn > 0:
                count += _add_subwords(buf, start, end, T, sums[i])
        hashes[nh] = h
        nh += 1
    if eos >= 0:  # the end-of-line token fastText's reader returns for "\n"
        for L in range(n_labels):
            sums[i, L] += word_logits[eos, L]
        count += word_counts[eos]
    hashes[nh] = eos_hash
    nh += 1
    sign = np.uint64(0xFFFFFFFF00000000)
    for a in range(nh):  # word n-grams: h = h * 116049371 + next, over hashes sign-extended from int32
        g = hashes[a]
        if g & np.uint64(0x80000000):
            g = g | sign
        for b in range(a + 1, min(nh, a + word_ngrams)):
            nxt = hashes[b]
            if nxt & np.uint64(0x80000000):
                nxt = nxt | sign
            g = g * np.uint64(116049371) + nxt
            row = _bucket_row(_mod(g, bucket, inv_bucket), T)
            if row >= 0:
                for L in range(n_labels):
                    sums[i, L] += row_logits[row, L]
                count += 1
    return count


@njit(cache=_CACHE, nogil=True)
def _is_space(c):
    return c == 32 or c == 10 or c == 13 or c == 9 or c == 11 or c == 12 or c == 0


@njit(cache=_CACHE, nogil=True)
def _score_lines(data, line_off, T, sums, counts, label_prefix):
    """Every line of ``data`` as fastText reads it (tokens split on space, \\t, \\n, \\v, \\f, \\r, \\0)."""
    longest = 1
    for i in range(line_off.shape[0] - 1):
        longest = max(longest, line_off[i + 1] - line_off[i])
    tok_starts = np.empty(longest + 1, dtype=np.int64)
    tok_ends = np.empty(longest + 1, dtype=np.int64)
    hashes = np.empty(longest + 2, dtype=np.uint64)
    for i in range(line_off.shape[0] - 1):
        pos, end = line_off[i], line_off[i + 1]
        n = 0
        while True:
            while pos < end and _is_space(data[pos]):
                pos += 1
            if pos >= end:
                break
            tok_starts[n] = pos
            while pos < end and not _is_space(data[pos]):
                pos += 1
            tok_ends[n] = pos
            n += 1
        counts[i] = _score_tokens(data, tok_starts, tok_ends, 0, n, T, sums, i, hashes, label_prefix)


# --- the model ----------------------------------------------------------------------------------------
class NativeModel:
    """A fastText supervised model loaded for batched prediction over Arrow string arrays.

    ``labels`` are in the model's own output order (without ``__label__``); :meth:`predict_proba`
    returns columns in that order.
    """

    def __init__(self, path: str):
        if not HAVE_NUMBA:
            raise UnsupportedModel("numba is not installed: the native fastText engine is unavailable")
        with open(path, "rb") as handle:
            data = handle.read()
        r = _Reader(data, path)
        magic, version = r.take("<ii")
        if magic != FASTTEXT_MAGIC or version not in SUPPORTED_VERSIONS:
            raise ValueError(f"{path} is not a fastText model file (magic {magic}, version {version}; "
                             f"expected magic {FASTTEXT_MAGIC}, version 11 or 12)")
        raw = r.take("<iiiiiiiiiiiid")
        self.args = Args(*raw[:6], LOSS_NAMES.get(raw[6], str(raw[6])), MODEL_NAMES.get(raw[7], str(raw[7])), *raw[8:])
        if version == 11 and self.args.model == "sup":
            self.args = replace(self.args, maxn=0)  # as fastText does for old supervised files
        self.path = path
        if self.args.model != "sup":
            raise UnsupportedModel(f"{path} is a {self.args.model} model; only supervised models predict labels")
        if self.args.loss not in ("softmax", "ova", "ns"):
            raise UnsupportedModel(f"{path} uses loss {self.args.loss}; the native engine implements softmax, ova "
                                   f"and ns (the fastText library runs the others)")
        hashed = self.args.word_ngrams > 1 or self.args.maxn > 0
        if not (0 < self.args.bucket < 2**31 if hashed else 0 <= self.args.bucket < 2**31):
            raise UnsupportedModel(f"{path} has bucket {self.args.bucket}; the native engine needs 0 < bucket < 2^31 "
                                   f"(or 0 without word or character n-grams)")
        words, pairs, pruned = self._load_dictionary(r)
        quant_input = bool(r.take("<?"))
        inputs = _matrix(r, quant_input)
        qout = bool(r.take("<?"))
        outputs = _matrix(r, quant_input and qout)
        rows = self.nwords + (len(pairs) if pruned else self.args.bucket)
        if inputs.shape != (rows, self.args.dim) or outputs.shape != (len(self.labels), self.args.dim):
            raise ValueError(f"fastText model {path}: matrices {inputs.shape} and {outputs.shape} do not fit "
                             f"{rows} rows, dim {self.args.dim} and {len(self.labels)} labels")
        if r.pos != len(data):
            raise ValueError(f"fastText model {path}: {len(data) - r.pos} unexpected bytes after the output matrix")
        # Each input row as its contribution to the logits (exact: logits = W @ mean(rows)).
        row_logits = (inputs.astype(np.float64) @ outputs.astype(np.float64).T).astype(np.float32)
        if self.args.loss != "softmax":
            x = (np.arange(SIGMOID_TABLE_SIZE + 1) * 2 * MAX_SIGMOID / SIGMOID_TABLE_SIZE - MAX_SIGMOID).astype(np.float32)
            self._sigmoid_table = (1.0 / (1.0 + np.exp(-x))).astype(np.float32)
        self._tables = self._build_tables(words, pairs, pruned, row_logits)

    def _load_dictionary(self, r: _Reader):
        size, nwords, nlabels = r.take("<iii")
        r.take("<q")  # ntokens
        pruneidx_size = r.take("<q")
        words, labels = [], []
        for _ in range(size):
            word = r.cstring()
            r.take("<q")  # count
            (words if r.take("<b") == 0 else labels).append(word)
        if len(words) != nwords or len(labels) != nlabels:
            raise ValueError(f"fastText model {self.path}: dictionary has {len(words)} words and {len(labels)} "
                             f"labels, its header says {nwords} and {nlabels}")
        pairs = r.array("<i4", 2 * max(pruneidx_size, 0)).reshape(-1, 2).astype(np.int64)
        self.nwords = nwords
        self.raw_labels = [label.decode("utf-8", errors="replace") for label in labels]
        self.labels = [label.removeprefix(LABEL_PREFIX) for label in self.raw_labels]
        return words, pairs, pruneidx_size >= 0

    def _build_tables(self, words: list[bytes], pairs: np.ndarray, pruned: bool, row_logits: np.ndarray) -> tuple:
        a = self.args
        vocab_off = np.zeros(len(words) + 1, dtype=np.int64)
        vocab_off[1:] = np.cumsum([len(w) for w in words])
        vocab_data = np.frombuffer(b"".join(words) or b"\x00", dtype=np.uint8)
        eos = words.index(EOS.encode()) if EOS.encode() in words else -1
        # pruneidx (bucket -> row among the kept n-grams) as an open-addressing table
        bits = max(4, int(np.ceil(np.log2(max(2 * len(pairs), 2)))))
        prune_key = np.full(1 << bits, -1, dtype=np.int64)
        mask = (1 << bits) - 1
        for bucket_id, j in pairs:
            slot = int(bucket_id) & mask
            while prune_key[slot] != -1:
                slot = (slot + 1) & mask
            prune_key[slot] = (int(bucket_id) << 32) | (self.nwords + int(j))
        eos_hash = _fnv(np.frombuffer(EOS.encode(), np.uint8), 0, len(EOS))
        empty_i = np.zeros(1, dtype=np.int64)
        empty_f = np.zeros((1, row_logits.shape[1]), dtype=np.float32)
        t0 = (empty_i, np.int64(0), vocab_data, vocab_off, empty_f, empty_i, np.int64(eos), eos_hash,
              np.int64(a.word_ngrams), np.int64(a.minn), np.int64(a.maxn), np.int64(a.bucket),
              np.int64(self.nwords), prune_key, np.int64(mask if pruned else -1), row_logits,
              1.0 / a.bucket if a.bucket else 0.0)
        slot_bits = max(10, int(np.ceil(np.log2(max(2 * self.nwords, 2)))))
        slot_key, slot_mask, word_logits, word_counts = _vocab_tables(t0, slot_bits)
        return (slot_key, np.int64(slot_mask), vocab_data, vocab_off, word_logits, word_counts) + t0[6:]

    def predict_proba(self, lines) -> np.ndarray:
        """Probabilities (n_lines x n_labels, in :attr:`labels` order) as fastText's ``predict(lines,
        k=-1, threshold=0.0)`` returns them (each with fastText's +1e-5). ``lines``: an Arrow string
        array or a sequence of str, one line each (a newline is an error, as in fastText). A line with
        nothing the model knows has no prediction in fastText: its row here is all zeros."""
        arr = lines if isinstance(lines, (pa.Array, pa.ChunkedArray)) else pa.array(list(lines), pa.large_string())
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if len(arr) == 0:
            return np.zeros((0, len(self.labels)))
        if arr.null_count:  # a null line scores as an empty one
            arr = pc.fill_null(arr, "")
        data, offsets = utf8_buffers(arr)
        used = data[offsets[0]:offsets[-1]]
        if len(used) and np.any(used == 10):
            bad = int(np.searchsorted(offsets, offsets[0] + int(np.argmax(used == 10)), side="right") - 1)
            raise ValueError(f"line {bad} contains a newline: fastText predicts one line at a time")
        sums = np.zeros((len(arr), len(self.labels)))
        counts = np.zeros(len(arr), dtype=np.int64)
        _score_lines(data, offsets, self._tables, sums, counts, _LABEL_BYTES)
        return self.probabilities(sums, counts)

    def probabilities(self, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """From summed logits and row counts per line to fastText's probabilities (+1e-5; zeros where
        the line had no rows)."""
        out = np.zeros_like(sums)
        seen = counts > 0
        logits = (sums[seen] / counts[seen, None]).astype(np.float32)
        if self.args.loss == "softmax":
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = e / e.sum(axis=1, keepdims=True)
        else:  # one-vs-all / negative sampling: fastText's sigmoid look-up table
            idx = ((logits + MAX_SIGMOID) * SIGMOID_TABLE_SIZE / MAX_SIGMOID / 2).astype(np.int64)
            probs = self._sigmoid_table[np.clip(idx, 0, SIGMOID_TABLE_SIZE)]
            probs = np.where(logits < -MAX_SIGMOID, 0.0, np.where(logits > MAX_SIGMOID, 1.0, probs))
        out[seen] = probs.astype(np.float64) + PREDICT_EPSILON
        return out


# --- documents: windows and the model tokeniser, without Python strings per window -------------------
@njit(cache=_CACHE, nogil=True)
def _doc_windows(data, doc_off, window_words, max_windows, cls):
    """Windows of every document, as :func:`udfs.scoring.windows` makes them: runs of ``window_words``
    whitespace-separated words (Python's whitespace), a tail shorter than a quarter window folded into
    the one before, at most ``max_windows`` picked evenly (``np.linspace(...).round()``); a document
    with no words is one empty window. Returns (document index, first byte, end byte) per window."""
    n_docs = doc_off.shape[0] - 1
    longest = 1
    for d in range(n_docs):
        longest = max(longest, doc_off[d + 1] - doc_off[d])
    word_start = np.empty(longest // 2 + 2, dtype=np.int64)
    word_end = np.empty(longest // 2 + 2, dtype=np.int64)
    cap = n_docs * max_windows
    win_doc = np.empty(cap, dtype=np.int64)
    win_start = np.empty(cap, dtype=np.int64)
    win_end = np.empty(cap, dtype=np.int64)
    n_win = 0
    for d in range(n_docs):
        p, end = doc_off[d], doc_off[d + 1]
        n_words = 0
        in_word = False
        while p < end:
            cp, w = _decode(data, p)
            if cls[cp] & 4:
                if in_word:
                    word_end[n_words] = p
                    n_words += 1
                    in_word = False
            elif not in_word:
                word_start[n_words] = p
                in_word = True
            p += w
        if in_word:
            word_end[n_words] = end
            n_words += 1
        if n_words == 0:
            win_doc[n_win], win_start[n_win], win_end[n_win] = d, doc_off[d], doc_off[d]
            n_win += 1
            continue
        n_spans = (n_words + window_words - 1) // window_words
        if n_spans > 1 and n_words - (n_spans - 1) * window_words < window_words // 4:
            n_spans -= 1  # the short tail joins the previous window
        picks = n_spans if n_spans <= max_windows else max_windows
        step = (n_spans - 1) / (max_windows - 1) if max_windows > 1 else 0.0
        for k in range(picks):
            if n_spans <= max_windows:
                s = k
            elif k == picks - 1 and max_windows > 1:
                s = n_spans - 1  # numpy's linspace ends exactly at stop (num=1 gives just start)
            else:
                s = np.int64(np.rint(k * step))
            first = s * window_words
            last = n_words - 1 if s == n_spans - 1 else (s + 1) * window_words - 1
            win_doc[n_win], win_start[n_win], win_end[n_win] = d, word_start[first], word_end[last]
            n_win += 1
    return win_doc[:n_win], win_start[:n_win], win_end[:n_win]


@njit(cache=_CACHE, nogil=True)
def _score_ranges(data, starts, ends, T, cls, http, https, www, label_prefix):
    """The model tokens (udfs.text.model_text) of every byte range of ``data``, scored: summed logits,
    row counts and token counts per range."""
    n = starts.shape[0]
    n_labels = T[15].shape[1]
    longest = 1
    for i in range(n):
        longest = max(longest, ends[i] - starts[i])
    out = np.empty(2 * longest + 4, dtype=np.uint8)
    tok_starts = np.empty(longest + 2, dtype=np.int64)
    tok_ends = np.empty(longest + 2, dtype=np.int64)
    hashes = np.empty(longest + 3, dtype=np.uint64)
    sums = np.zeros((n, n_labels))
    counts = np.zeros(n, dtype=np.int64)
    n_tokens = np.zeros(n, dtype=np.int64)
    for i in range(n):
        _, k = _tokenize(data, starts[i], ends[i], cls, out, 0, tok_starts, tok_ends, 0, http, https, www)
        n_tokens[i] = k
        counts[i] = _score_tokens(out, tok_starts, tok_ends, 0, k, T, sums, i, hashes, label_prefix)
    return sums, counts, n_tokens


def doc_windows(docs: pa.Array, window_words: int, max_windows: int):
    """Windows of model-input documents (:func:`udfs.text.model_input`): arrays (doc index, first
    byte, end byte) into the array's UTF-8 buffer, in document order."""
    data, offsets = utf8_buffers(docs)
    return _doc_windows(data, offsets, window_words, max_windows, char_classes())


def score_ranges(model: "NativeModel", docs: pa.Array, starts: np.ndarray, ends: np.ndarray):
    """(probabilities in ``model.labels`` order, token counts) of byte ranges of ``docs``' buffer,
    each tokenised as :func:`udfs.text.model_text` does and scored as fastText's predict would."""
    data, _ = utf8_buffers(docs)
    sums, counts, n_tokens = _score_ranges(data, np.ascontiguousarray(starts, dtype=np.int64),
                                           np.ascontiguousarray(ends, dtype=np.int64), model._tables,
                                           char_classes(), _HTTP, _HTTPS, _WWW, _LABEL_BYTES)
    return model.probabilities(sums, counts), n_tokens

"""Text normalisation and stable identifiers.

Two normalisations live here, and only here:

* :func:`normalize_text` is what ingest stores: Unicode NFC, one newline convention, no control
  characters, single spaces inside lines, paragraphs (blank-line separated) kept.
* :func:`model_text` is what fastText sees, in training and in labelling alike: lower-cased,
  punctuation split off words, digits folded, one line.

Identifiers are sha256-based so they are stable across runs, machines and partitionings
(never Python's ``hash()``, which is salted per process).
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from typing import Sequence

import numpy as np
import pyarrow as pa

# Characters that act as line breaks in Unicode text (besides \n).
_LINE_BREAKS = re.compile(r"\r\n|[\r\u0085\u2028\u2029\x0b\x0c]")
# Control characters other than \n and \t (which are handled separately): dropped.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\ufeff\u200b]")
# Horizontal whitespace of any kind (tabs, NBSP, thin spaces...) becomes one space.
_HSPACE = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")

ID_HEX_CHARS = 32  # 128 bits of sha256: collision-free at any corpus size we will meet


def normalize_text(text: str) -> str:
    """Return ``text`` in the canonical stored form.

    Invariants: NFC; only ``\\n`` line breaks; no control characters; no tabs; no leading or
    trailing spaces on a line; at most one blank line between paragraphs; no leading or trailing
    blank lines. Idempotent: ``normalize_text(normalize_text(t)) == normalize_text(t)``.
    """
    text = _LINE_BREAKS.sub("\n", text)
    text = _CONTROL.sub("", text)  # before NFC: a removed character may separate a base and its accent
    text = unicodedata.normalize("NFC", text)
    text = _HSPACE.sub(" ", text)
    lines = [line.strip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip("\n ")


def sha256_hex(*parts: str) -> str:
    """sha256 of the parts joined by the unit separator (so ("ab","c") != ("a","bc"))."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def text_hash(normalized_text: str) -> str:
    """Content hash of already-normalised text: used for exact dedup and to detect edits."""
    return sha256_hex("text", normalized_text)


def make_doc_id(source: str, source_id: str | None, normalized_text: str) -> str:
    """Stable document id.

    From the input's own id when it has one (namespaced by ``source``, so two sources may both
    use id "1"), otherwise from the normalised text, so the same text always gets the same id.
    """
    if source_id is not None:
        return sha256_hex("id", source, source_id)[:ID_HEX_CHARS]
    return sha256_hex("text", normalized_text)[:ID_HEX_CHARS]


# --- fastText input ----------------------------------------------------------------------------
_URL = re.compile(r"https?://\S+|www\.\S+")
_FOOTNOTE = re.compile(r"\[\d+\]")
_DIGITS = re.compile(r"\d+")
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[^\w\s]")
_KEEP_PUNCT = set("!?.,;:\"'()-")


# --- the compiled tokeniser (what runs) ----------------------------------------------------------
# The rule of :func:`model_text_reference`, as one pass over UTF-8 bytes compiled with numba: per
# whitespace-separated word, URLs (``https?://`` or ``www.`` and at least one more character: the rest
# of the word) and wiki footnote markers (``[`` decimal digits ``]``) are cut, curly quotes become
# straight ones, ``_`` separates, every run of decimal digits becomes ``0``, and what remains is split
# into words (letters/digits, with at most one inner apostrophe) and single kept punctuation
# characters; every other character separates. Python does only NFKC + lower-case per string (its quick
# check makes that nearly free, and keeps Python's full case mapping). The character classes are
# Python's own (str.isalnum, decimal digits, str.isspace), read from its regex engine once per process.
# Every rule applies within a word, so the tokens of a text are the tokens of its words in order: the
# scorer relies on that to tokenise 400-word windows straight out of a document (udfs.native_fasttext).
ALNUM, DECIMAL, SPACE, KEEP = 1, 2, 4, 8
_KEEP_PUNCT_CHARS = "!?.,;:\"'()-"

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is a dependency (pyproject.toml)
    njit = None

_NJIT = (lambda f: njit(cache=os.path.isfile(__file__) and os.access(os.path.dirname(__file__), os.W_OK),
                        nogil=True)(f)) if njit else (lambda f: f)
_CLASSES: list = []


def char_classes() -> np.ndarray:
    """uint8 flags per code point (ALNUM, DECIMAL, SPACE, KEEP), from Python's own definitions:
    ``[^\\W_]`` (= str.isalnum), ``\\d`` (decimal digits) and ``\\s`` (= str.isspace). Built once per process."""
    if _CLASSES:
        return _CLASSES[0]
    cps = np.arange(0x110000, dtype=np.uint32)
    cps[0xD800:0xE000] = 0x20  # surrogates cannot be encoded; they are never in valid text
    every = cps.tobytes().decode("utf-32-le")
    flags = np.zeros(0x110000, dtype=np.uint8)
    for flag, pattern in ((ALNUM, r"[^\W_]"), (DECIMAL, r"\d"), (SPACE, r"\s")):
        marked = np.frombuffer(re.sub(pattern, "\x00", every).encode("utf-32-le"), dtype=np.uint32)
        flags[(marked == 0) & (cps != 0)] |= flag
    flags[0xD800:0xE000] = 0
    for ch in _KEEP_PUNCT_CHARS:
        flags[ord(ch)] |= KEEP
    _CLASSES.append(flags)
    return flags


@_NJIT
def _decode(data, i):
    """(code point, byte length) of the UTF-8 character at ``data[i]`` (input is valid UTF-8)."""
    b0 = np.int64(data[i])
    if b0 < 0x80:
        return b0, 1
    if b0 < 0xE0:
        return ((b0 & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F), 2
    if b0 < 0xF0:
        return ((b0 & 0x0F) << 12) | ((np.int64(data[i + 1]) & 0x3F) << 6) | (np.int64(data[i + 2]) & 0x3F), 3
    return (((b0 & 0x07) << 18) | ((np.int64(data[i + 1]) & 0x3F) << 12) | ((np.int64(data[i + 2]) & 0x3F) << 6)
            | (np.int64(data[i + 3]) & 0x3F)), 4


@_NJIT
def _encode(cp, out, pos):
    if cp < 0x80:
        out[pos] = cp
        return pos + 1
    if cp < 0x800:
        out[pos] = 0xC0 | (cp >> 6)
        out[pos + 1] = 0x80 | (cp & 0x3F)
        return pos + 2
    if cp < 0x10000:
        out[pos] = 0xE0 | (cp >> 12)
        out[pos + 1] = 0x80 | ((cp >> 6) & 0x3F)
        out[pos + 2] = 0x80 | (cp & 0x3F)
        return pos + 3
    out[pos] = 0xF0 | (cp >> 18)
    out[pos + 1] = 0x80 | ((cp >> 12) & 0x3F)
    out[pos + 2] = 0x80 | ((cp >> 6) & 0x3F)
    out[pos + 3] = 0x80 | (cp & 0x3F)
    return pos + 4


@_NJIT
def _starts_with(data, i, end, prefix):
    if end - i < len(prefix):
        return False
    for k in range(len(prefix)):
        if data[i + k] != prefix[k]:
            return False
    return True


_HTTP = np.frombuffer(b"http://", dtype=np.uint8)
_HTTPS = np.frombuffer(b"https://", dtype=np.uint8)
_WWW = np.frombuffer(b"www.", dtype=np.uint8)


@_NJIT
def _url_at(data, p, end, cls, http, https, www):
    """Whether a URL starts at ``data[p]``: ``https?://`` or ``www.`` and one more non-space character."""
    for prefix in (https, http, www):
        n = len(prefix)
        if _starts_with(data, p, end, prefix) and p + n < end:
            cp, _ = _decode(data, p + n)
            if not cls[cp] & 4:
                return True
    return False


@_NJIT
def _footnote_end(data, p, end, cls):
    """End of a ``[digits]`` footnote marker starting at ``data[p]`` (== '['), or -1."""
    q = p + 1
    while q < end:
        cp, w = _decode(data, q)
        if not cls[cp] & 2:
            break
        q += w
    if q > p + 1 and q < end and data[q] == 0x5D:
        return q + 1
    return -1


@_NJIT
def _tokenize(data, start, end, cls, out, pos, tok_starts, tok_ends, n_tok, http, https, www):
    """Append the model tokens of ``data[start:end]`` to ``out`` from byte ``pos``, one space between
    tokens, recording each token's byte range in ``tok_starts``/``tok_ends`` from index ``n_tok``.
    Returns (new pos, new token count). One pass; the only look-ahead is for URLs, footnote markers
    and whether an apostrophe is followed by a letter or digit."""
    first = n_tok
    open_tok = False  # inside a word token
    used_apostrophe = False  # the open word token already has its one inner apostrophe
    pending = False  # an apostrophe after a word, kept inside it only if a letter or digit follows
    in_digits = False  # inside a run of decimal digits (folded to one "0")
    p = start
    while p < end:
        b = data[p]
        if open_tok and not pending and b < 128 and (cls[b] & 3) == 1 and b != 0x68 and b != 0x77:
            out[pos] = b  # the common case: an ASCII letter (not h or w, which may start a URL) inside a word
            pos += 1
            p += 1
            in_digits = False
            continue
        cp, w = _decode(data, p)
        c = -1  # the character after the mapping; -1 separates
        if cls[cp] & 4:
            p += w
            while p < end:  # skip the rest of the whitespace run at once
                cp, w = _decode(data, p)
                if not cls[cp] & 4:
                    break
                p += w
        elif (b == 0x68 or b == 0x77) and _url_at(data, p, end, cls, http, https, www):
            while p < end:  # a URL takes the rest of the word
                cp, w = _decode(data, p)
                if cls[cp] & 4:
                    break
                p += w
        elif b == 0x5B and _footnote_end(data, p, end, cls) > 0:
            p = _footnote_end(data, p, end, cls)
        else:
            p += w
            if cp == 0x2018 or cp == 0x2019:
                c = 0x27
            elif cp == 0x201C or cp == 0x201D:
                c = 0x22
            elif cp == 0x5F:
                c = -1
            elif cls[cp] & 2:
                if in_digits:
                    continue  # the rest of a digit run
                c = 0x30
            elif cls[cp] & 9:
                c = cp
        in_digits = c == 0x30 and cls[cp] & 2 != 0
        if pending:
            pending = False
            if c >= 0 and cls[c] & 1:
                out[pos] = 0x27  # one inner apostrophe per word: "don't", "rock'n"
                pos += 1
                used_apostrophe = True
                pos = _encode(c, out, pos)
                continue
            tok_ends[n_tok] = pos  # the word ends before the apostrophe, which is a token itself
            n_tok += 1
            open_tok = False
            out[pos] = 0x20
            tok_starts[n_tok] = pos + 1
            out[pos + 1] = 0x27
            pos += 2
            tok_ends[n_tok] = pos
            n_tok += 1
        if c < 0:
            if open_tok:
                tok_ends[n_tok] = pos
                n_tok += 1
                open_tok = False
            continue
        if cls[c] & 1:
            if not open_tok:
                if n_tok > first:
                    out[pos] = 0x20
                    pos += 1
                tok_starts[n_tok] = pos
                open_tok = True
                used_apostrophe = False
            pos = _encode(c, out, pos)
            continue
        if c == 0x27 and open_tok and not used_apostrophe:
            pending = True
            continue
        if open_tok:
            tok_ends[n_tok] = pos
            n_tok += 1
            open_tok = False
        if n_tok > first:
            out[pos] = 0x20
            pos += 1
        tok_starts[n_tok] = pos  # kept punctuation is a token of its own
        pos = _encode(c, out, pos)
        tok_ends[n_tok] = pos
        n_tok += 1
    if pending:
        tok_ends[n_tok] = pos
        n_tok += 1
        out[pos] = 0x20
        tok_starts[n_tok] = pos + 1
        out[pos + 1] = 0x27
        pos += 2
        tok_ends[n_tok] = pos
        n_tok += 1
    elif open_tok:
        tok_ends[n_tok] = pos
        n_tok += 1
    return pos, n_tok


@_NJIT
def _tokens_joined(data, offsets, cls, http, https, www):
    """model tokens of every text, joined by single spaces: (UTF-8 bytes, int64 offsets)."""
    n = offsets.shape[0] - 1
    longest = 1
    for t in range(n):
        longest = max(longest, offsets[t + 1] - offsets[t])
    tok_starts = np.empty(longest + 2, dtype=np.int64)
    tok_ends = np.empty(longest + 2, dtype=np.int64)
    out = np.empty(2 * (offsets[n] - offsets[0]) + n + 2, dtype=np.uint8)  # tokens never grow; a space between
    out_off = np.zeros(n + 1, dtype=np.int64)
    pos = 0
    for t in range(n):
        pos, _ = _tokenize(data, offsets[t], offsets[t + 1], cls, out, pos, tok_starts, tok_ends, 0, http, https, www)
        out_off[t + 1] = pos
    return out[:pos], out_off


def model_input(texts: Sequence[str]) -> pa.LargeStringArray:
    """NFKC + lower-case of each text (Python's full case mapping), as one Arrow array for the kernels."""
    return pa.array([unicodedata.normalize("NFKC", t).lower() for t in texts], pa.large_string())


def utf8_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 data buffer and int64 offsets of a string array (no copy for large_string)."""
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8)
    data = buffers[2]
    data = np.frombuffer(data, dtype=np.uint8) if data is not None and len(data) else np.zeros(1, dtype=np.uint8)
    return data, offsets


def model_tokens(texts: Sequence[str]) -> pa.LargeStringArray:
    """fastText input for each text: the tokens of :func:`model_text`, joined by single spaces
    (a text with no tokens gives ``""``). One compiled pass over all texts."""
    arr = model_input(texts)
    if len(arr) == 0:
        return pa.array([], pa.large_string())
    data, offsets = utf8_buffers(arr)
    out, out_off = _tokens_joined(data, offsets, char_classes(), _HTTP, _HTTPS, _WWW)
    return pa.LargeStringArray.from_buffers(len(arr), pa.py_buffer(out_off), pa.py_buffer(out))


def model_text(text: str) -> str:
    """The exact string fastText is trained on and scores: one line, lower case, tokens split.

    fastText splits on whitespace only, so punctuation is separated from words ("AI," -> "ai ,"),
    digits are folded to ``0`` (years and counts carry no topic signal), URLs and wiki footnote
    markers are removed, and newlines (which fastText's predict rejects) become spaces. Tokens are
    joined by single spaces; the scorer uses :func:`model_tokens` (same tokens, in bulk).
    """
    return model_tokens([text])[0].as_py()


# --- the rule, spelled out (reference for tests) ---------------------------------------------------
def model_text_reference(text: str) -> str:
    """:func:`model_text` by a plain token scan: word tokens (letters/digits with at most one inner
    apostrophe) and single punctuation characters, of which only :data:`_KEEP_PUNCT` survive."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _URL.sub(" ", text)
    text = _FOOTNOTE.sub(" ", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = text.replace("_", " ")
    text = _DIGITS.sub("0", text)
    return " ".join(t for t in _TOKEN.findall(text) if t[0].isalnum() or t in _KEEP_PUNCT)

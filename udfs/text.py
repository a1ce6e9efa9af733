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
import re
import unicodedata
from typing import Sequence

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


# --- the vectorised tokeniser (what runs) -------------------------------------------------------
# The same rule as :func:`model_text_reference`, applied to a whole Arrow array per regex pass
# (RE2 in C++), so no Python object is made per token. Python does only NFKC + lower-case per
# string (its quick check makes that nearly free, and keeps Python's full case mapping). RE2's
# classes are spelled out to match Python's: _PY_SPACE_CHARS is every character str.isspace()
# accepts; [\pL\pN] is Python's [^\W_] (equal on every character assigned in Python's Unicode 14).
_PY_SPACE_CHARS = "\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_INNER_MARK = "\x01"  # marks an inner apostrophe while the others are padded; cannot survive the drop pass
_RE2_PASSES = (
    # URLs (up to Python-whitespace) and wiki footnote markers: one alternation, same result as two passes
    (f"https?://[^{_PY_SPACE_CHARS}]+|www\\.[^{_PY_SPACE_CHARS}]+|\\[\\p{{Nd}}+\\]", " "),
    (None, ("\u2018", "'")),  # None: a literal replacement (cheaper than a regex pass)
    (None, ("\u2019", "'")),
    (None, ("\u201c", '"')),
    (None, ("\u201d", '"')),
    (None, ("_", " ")),
    (r"\p{Nd}+", "0"),
    # everything that is not a letter, digit or kept punctuation becomes a space: symbols, marks,
    # dropped punctuation and every kind of whitespace (tabs, newlines, NBSP...) alike
    (r"[^\pL\pN !?.,;:\"'()\-]", " "),
    # one inner apostrophe per word token, leftmost first, as the reference scan takes them
    (r"([\pL\pN]+)'([\pL\pN]+)", "\\1" + _INNER_MARK + "\\2"),
)
_PADDED = "!?.,;:\"'()-"


def model_tokens(texts: Sequence[str]) -> pa.StringArray:
    """fastText input for each text, vectorised: the tokens of :func:`model_text`, separated by
    runs of spaces (fastText splits on any run of whitespace, so the model sees the same tokens).
    A text with no tokens gives a string of spaces or ``""``."""
    import pyarrow.compute as pc

    arr = pa.array([unicodedata.normalize("NFKC", t).lower() for t in texts], pa.string())
    for pattern, replacement in _RE2_PASSES:
        if pattern is None:
            arr = pc.replace_substring(arr, pattern=replacement[0], replacement=replacement[1])
        else:
            arr = pc.replace_substring_regex(arr, pattern=pattern, replacement=replacement)
    for char in _PADDED:
        arr = pc.replace_substring(arr, pattern=char, replacement=f" {char} ")
    return pc.replace_substring(arr, pattern=_INNER_MARK, replacement="'")


def model_text(text: str) -> str:
    """The exact string fastText is trained on and scores: one line, lower case, tokens split.

    fastText splits on whitespace only, so punctuation is separated from words ("AI," -> "ai ,"),
    digits are folded to ``0`` (years and counts carry no topic signal), URLs and wiki footnote
    markers are removed, and newlines (which fastText's predict rejects) become spaces. Tokens are
    joined by single spaces; the scorer uses :func:`model_tokens` (same tokens, in bulk).
    """
    return " ".join(model_tokens([text])[0].as_py().split())


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

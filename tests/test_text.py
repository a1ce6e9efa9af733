"""Unit tests for udfs/text.py: the stored normal form, stable ids and the fastText input. No Spark.

Expected values are written by hand from the module's documented contract.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata

import pytest

from udfs.text import ID_HEX_CHARS, make_doc_id, model_text, model_text_reference, model_tokens, normalize_text, text_hash


# --- normalize_text ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Unicode NFC: a combining acute accent composes with its base letter.
        ("caf" + "e\u0301", "caf\u00e9"),
        ("A\u030a", "\u00c5"),
        # One newline convention: CRLF, CR, U+2028, U+2029, NEL, VT and FF all become \n.
        ("a\r\nb", "a\nb"),
        ("a\rb", "a\nb"),
        ("a\u2028b", "a\nb"),
        ("a\u2029b", "a\nb"),
        ("a\u0085b", "a\nb"),
        ("a\x0bb\x0cc", "a\nb\nc"),
        # Tabs and NBSP (and other horizontal spaces) become single spaces; runs collapse.
        ("a\tb", "a b"),
        ("a\u00a0b", "a b"),
        ("a \t\u00a0 \u2003b", "a b"),
        ("one    two     three", "one two three"),
        # Lines lose leading/trailing spaces.
        ("  indented line  ", "indented line"),
        # Control characters and NUL are removed (not replaced by a space).
        ("ab\x00cd", "abcd"),
        ("a\x01b\x07c\x1bd\x7fe", "abcde"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        # Paragraphs are kept: exactly one blank line between them, whatever was there before.
        ("para one\n\npara two", "para one\n\npara two"),
        ("para one\n\n\n\n\npara two", "para one\n\npara two"),
        ("para one\n   \n \t \n\npara two", "para one\n\npara two"),
        ("para one\r\n\r\n\r\npara two", "para one\n\npara two"),
        # Single line breaks inside a paragraph are kept as they are.
        ("line one\nline two", "line one\nline two"),
        # Leading and trailing blank lines are stripped.
        ("\n\n\n  \nbody\n\n \n", "body"),
        ("\r\n\r\nbody text\r\n", "body text"),
        # Nothing visible left: the empty string.
        (" \t\n\r\n\u00a0\x00 ", ""),
        ("", ""),
    ],
)
def test_normalize_text_examples(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_normalize_text_full_document() -> None:
    raw = (
        "\r\n  \r\n"
        "Title\t of  the\u00a0Story  \r\n"
        "\r\n\r\n\r\n"
        "The robo\x00t said\u2028\u201chello\u201d to the caf" + "e\u0301.\r"
        "\n"
        "   \n"
        "\x07End.\u2029\u2029\u2029"
    )
    expected = "Title of the Story\n\nThe robot said\n\u201chello\u201d to the caf\u00e9.\n\nEnd."
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "plain",
        "caf" + "e\u0301\r\n\r\n\r\nx\ty",
        "\n\n  a  \n\n\n\n b\u00a0\u00a0c \n",
        "\x00\x01\u2028\u2029\u0085 mixed \t\t junk \r\r\r end",
        "A\u030a ring\n \n \nnext",
    ],
)
def test_normalize_text_is_idempotent(raw: str) -> None:
    once = normalize_text(raw)
    assert once  # each example keeps visible text, so this is not vacuous
    assert normalize_text(once) == once


@pytest.mark.parametrize("raw", ["e\x00\u0301", "e\u200b\u0301"])
def test_normalize_text_nfc_after_control_removal(raw: str) -> None:
    once = normalize_text(raw)
    assert once == "\u00e9"
    assert unicodedata.is_normalized("NFC", once)
    assert normalize_text(once) == once


def test_normalize_text_output_invariants() -> None:
    raw = "x\u00a0\ty\r\n\r\n\r\n\u2028z\x00\x1f\ufeff\n\n"
    out = normalize_text(raw)
    assert out == "x y\n\nz"
    assert "\r" not in out and "\t" not in out and "\x00" not in out
    assert unicodedata.is_normalized("NFC", out)


# --- make_doc_id / text_hash ---------------------------------------------------------------------
def _sha(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def test_make_doc_id_from_source_id_matches_documented_formula() -> None:
    expected = _sha("id\x1fwiki\x1fabc-123")[:32]
    assert ID_HEX_CHARS == 32
    assert make_doc_id("wiki", "abc-123", "some text") == expected
    assert len(expected) == 32


def test_make_doc_id_is_stable_across_calls() -> None:
    first = make_doc_id("books", "42", "text")
    assert first == make_doc_id("books", "42", "text")
    assert first == _sha("id\x1fbooks\x1f42")[:32]


def test_make_doc_id_ignores_text_when_id_present() -> None:
    # The id comes from the input's own id: an edited text keeps its doc_id (text_hash shows the edit).
    assert make_doc_id("wiki", "7", "old text") == make_doc_id("wiki", "7", "new text")
    assert make_doc_id("wiki", "7", "old text") == _sha("id\x1fwiki\x1f7")[:32]


def test_make_doc_id_namespaced_by_source() -> None:
    a = make_doc_id("wiki", "1", "t")
    b = make_doc_id("books", "1", "t")
    assert a == _sha("id\x1fwiki\x1f1")[:32]
    assert b == _sha("id\x1fbooks\x1f1")[:32]
    assert a != b


def test_make_doc_id_separator_prevents_concatenation_collisions() -> None:
    # ("ab", "c") and ("a", "bc") must not collide.
    assert make_doc_id("ab", "c", "") == _sha("id\x1fab\x1fc")[:32]
    assert make_doc_id("a", "bc", "") == _sha("id\x1fa\x1fbc")[:32]
    assert make_doc_id("ab", "c", "") != make_doc_id("a", "bc", "")


def test_make_doc_id_text_derived_when_no_id() -> None:
    text = "An AI helped the crew."
    expected = _sha("text\x1f" + text)[:32]
    assert make_doc_id("wiki", None, text) == expected
    # Derived from the text alone: the same text gets the same id whatever its source.
    assert make_doc_id("books", None, text) == expected
    assert make_doc_id("wiki", None, "Another text.") == _sha("text\x1fAnother text.")[:32]


def test_make_doc_id_empty_string_id_is_an_id() -> None:
    # "" is not None: it is hashed as an id (the parser rejects empty ids before this point).
    assert make_doc_id("s", "", "t") == _sha("id\x1fs\x1f")[:32]


def test_text_hash_is_full_sha256_of_text() -> None:
    assert text_hash("hello") == _sha("text\x1fhello")
    assert len(text_hash("hello")) == 64


# --- model_text ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello World", "hello world"),
        ("AI, robots!", "ai , robots !"),
        ("Is it safe? Yes.", "is it safe ? yes ."),
        ("(a) \"b\"", '( a ) " b "'),
        ("In 2024 there were 37 robots", "in 0 there were 0 robots"),
        ("3.14", "0 . 0"),
        ("GPT4", "gpt0"),
        ("line one\nline two\r\nline three", "line one line two line three"),
        ("It\u2019s the robot\u2019s", "it's the robot's"),
        ("snake_case_word", "snake case word"),
        ("see https://example.com/x?y=1 now", "see now"),
        ("a claim[12] here", "a claim here"),
        ("a @ b # c", "a b c"),
        ("\uff21\uff29", "ai"),  # full-width letters fold (NFKC) and lower-case
    ],
)
def test_model_text_examples(raw: str, expected: str) -> None:
    assert model_text(raw) == expected


def test_model_text_is_one_lowercase_line() -> None:
    out = model_text("The AI SAID:\n\n\"NO!\"\tThen 1999\u2028it left.")
    assert out == 'the ai said : " no ! " then 0 it left .'
    assert "\n" not in out and "\t" not in out
    assert out == out.lower()
    assert "  " not in out


# --- the vectorised tokeniser against the rule spelled out -----------------------------------------
def test_reference_rule_gives_the_documented_examples() -> None:
    assert model_text_reference("AI, robots!") == "ai , robots !"
    assert model_text_reference("It\u2019s rock'n'roll") == "it's rock'n ' roll"


def test_model_text_keeps_one_inner_apostrophe_per_word_like_the_scan() -> None:
    # The scanner takes "rock'n" as one token, then "'" alone, then "roll".
    assert model_text("rock'n'roll") == "rock'n ' roll"
    assert model_text("'quoted' don't") == "' quoted ' don't"
    assert model_text("a''b") == "a ' ' b"


def test_model_tokens_equal_the_reference_on_random_text() -> None:
    rng = random.Random(20261126)
    alphabet = list("abcXYZ019 '_-.,!?;:\"()[]@#$%&*/\\\n\t\r\x0b\x1c\x85\x00\x01\ufeff") + [
        "\u2019", "\u2018", "\u201c", "\u201d", "\u00e9", "e\u0301", "\u00a0", "\u2028", "\u3000", "\uff21",
        "\u0663", "\u00b2", "\u00bd", "\u4e2d", "\u05d0", "\U0001F600", "\u0130", "\u00df", "\u03a3",
        "http://x.y/z?q=1", "www.a.b", "[12]", "don't", "rock'n'roll", "O'Neil's",
    ]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(20000)]
    got = model_tokens(texts).to_pylist()
    mismatches = [(t, g) for t, g in zip(texts, got) if g.split() != model_text_reference(t).split()]
    assert mismatches == []


def test_model_tokens_equal_the_reference_for_every_assigned_code_point() -> None:
    """RE2 spells Python's character classes differently; check them on every character Python knows."""
    import unicodedata

    chars = [chr(c) for c in range(0x110000)
             if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) != "Cn"]
    texts = [f"a{c}b {c}'{c} x'{c}{c} {c}1" for c in chars]
    got = model_tokens(texts).to_pylist()
    mismatches = [(hex(ord(c)), g) for c, t, g in zip(chars, texts, got) if g.split() != model_text_reference(t).split()]
    assert mismatches == []

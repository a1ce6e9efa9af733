"""The bundled sample corpus (data/sample/sample.jsonl.gz): well formed, redistributable, reproducible.

No Spark. The rebuild test needs the shared corpus beside the checkout (``../shared/corpus``) and is skipped
without it.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO_ROOT / "data" / "sample"
SAMPLE = SAMPLE_DIR / "sample.jsonl.gz"
ATTRIBUTION = SAMPLE_DIR / "ATTRIBUTION.md"
SCRIPT = REPO_ROOT / "scripts" / "build_sample_corpus.py"
SHARED_CORPUS = REPO_ROOT.parent / "shared" / "corpus"

ALLOWED_SOURCES = {"wiki_background", "wiki_plot", "wiki_ai", "gutenberg"}
LICENSE_BY_SOURCE = {
    "wiki_background": "CC BY-SA 3.0",
    "wiki_plot": "CC BY-SA 3.0",
    "wiki_ai": "CC BY-SA 3.0",
    "gutenberg": "public domain (US)",
}
ALLOWED_LICENSES = set(LICENSE_BY_SOURCE.values())
FIELDS = ["id", "text", "source", "title", "license", "origin"]
# Internal-only folders of the shared corpus: nothing from them may be bundled.
FORBIDDEN_ORIGINS = ("ai_character_db", "alignment_research", "dolma_cc_sample")


@pytest.fixture(scope="module")
def records() -> list[dict]:
    assert SAMPLE.is_file(), f"missing {SAMPLE}; build it with: python3 scripts/build_sample_corpus.py"
    rows = []
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:  # pragma: no cover - failure path
                pytest.fail(f"{SAMPLE}:{line_no} is not valid JSON: {exc}")
    return rows


def test_sample_exists_with_attribution() -> None:
    assert SAMPLE.is_file()
    assert ATTRIBUTION.is_file()
    text = ATTRIBUTION.read_text(encoding="utf-8")
    assert "CC BY-SA 3.0" in text and "public domain" in text
    assert "scripts/build_sample_corpus.py" in text


def test_sample_size_and_shape(records: list[dict]) -> None:
    assert len(records) > 2000
    for record in records:
        assert list(record) == FIELDS, record.get("id")
        for field in ("id", "title", "origin"):
            assert isinstance(record[field], str) and record[field], (record.get("id"), field)


def test_ids_unique_and_sorted(records: list[dict]) -> None:
    ids = [record["id"] for record in records]
    duplicates = [doc_id for doc_id, n in Counter(ids).items() if n > 1]
    assert not duplicates, duplicates[:5]
    assert ids == sorted(ids)


def test_sources_and_licences_allowed(records: list[dict]) -> None:
    for record in records:
        assert record["source"] in ALLOWED_SOURCES, record["id"]
        assert record["license"] in ALLOWED_LICENSES, record["id"]
        assert record["license"] == LICENSE_BY_SOURCE[record["source"]], record["id"]
        assert not any(name in record["origin"] for name in FORBIDDEN_ORIGINS), record["id"]
    assert set(Counter(record["source"] for record in records)) == ALLOWED_SOURCES


def test_texts_are_non_empty_strings(records: list[dict]) -> None:
    for record in records:
        assert isinstance(record["text"], str) and record["text"].strip(), record["id"]
        assert len(record["text"]) <= 60_000, record["id"]


def test_gutenberg_chunks(records: list[dict]) -> None:
    chunks = [record for record in records if record["source"] == "gutenberg"]
    assert len(chunks) >= 11
    assert all(record["id"].startswith("gutenberg:pg") and ":chunk-" in record["id"] for record in chunks)
    books = {record["id"].split(":")[1] for record in chunks}
    assert len(books) == 11
    for record in chunks:
        # Project Gutenberg boilerplate is stripped.
        assert "*** START OF" not in record["text"] and "*** END OF" not in record["text"], record["id"]
        assert "Project Gutenberg License" not in record["text"], record["id"]


def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    if not SHARED_CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {SHARED_CORPUS}; cannot rebuild the sample corpus")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--corpus", str(SHARED_CORPUS), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rebuilt = (tmp_path / "sample.jsonl.gz").read_bytes()
    committed = SAMPLE.read_bytes()
    # Compare the JSON Lines first for a readable failure, then the gzip bytes themselves.
    assert gzip.decompress(rebuilt) == gzip.decompress(committed), (
        "rebuilt sample differs from the committed one: rerun scripts/build_sample_corpus.py and commit the result"
    )
    assert rebuilt == committed, f"same content but different gzip bytes (zlib {zlib.ZLIB_RUNTIME_VERSION})"
    assert (tmp_path / "ATTRIBUTION.md").read_bytes() == ATTRIBUTION.read_bytes()

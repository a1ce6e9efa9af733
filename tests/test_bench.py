"""The benchmark harness still runs (bench/, `make bench`), on a few hundred documents.

Figures are not checked here (performance belongs in bench/, not in timed tests): only that the
corpus builder keeps its promises and that the harness measures, summarises and checks targets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "corpus"
sys.path.insert(0, str(REPO / "bench"))

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/corpus is not available")


def read_corpus(folder: Path) -> list[dict]:
    rows = []
    for f in sorted(folder.glob("part-*.jsonl")):
        rows += [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines()]
    return rows


def test_corpus_is_nested_with_distinct_ids_and_texts(tmp_path):
    import corpus as corpus_builder

    from udfs.text import normalize_text

    out = corpus_builder.build([300, 600], tmp_path / "corpus", SHARED)
    small, large = read_corpus(out[300]), read_corpus(out[600])
    assert (len(small), len(large)) == (300, 600)
    assert len({r["id"] for r in large}) == 600
    assert len({normalize_text(r["text"]) for r in large}) == 600  # ingest's dedup keeps every document
    assert {r["id"] for r in small} <= {r["id"] for r in large}  # 2N contains N
    words = sorted(len(r["text"].split()) for r in large)
    assert words[0] >= 1 and words[-1] > 10 * words[len(words) // 2]  # heavy-tailed, like real pages


@pytest.mark.slow
def test_harness_measures_and_checks_targets(tmp_path):
    """bench/run.py end to end on N = 300, 600: ceiling, raw fastText, steady-state label job."""
    cmd = [sys.executable, "bench/run.py", "--n", "300,600", "--runs", "1", "--only", "ceiling,raw,label_steady",
           "--work", str(tmp_path / "work")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = sorted((REPO / "bench" / "results").glob("*.json"), key=lambda p: p.stat().st_mtime)
    report = json.loads(results[-1].read_text())
    results[-1].unlink()  # a smoke run is not a benchmark result
    assert report["config"]["n"] == [300, 600]
    steady = report["results"]["label_steady"]
    assert [steady[n]["runs"][-1]["scored"] for n in ("300", "600")] == [300, 600]
    assert report["results"]["ceiling"]["300"][0]["docs"] == 300
    assert "label_steady_vs_ceiling_per_core" in report["summary"]["ratios"]
    scaling = report["summary"]["targets"]["scaling_steady_600_over_300"]
    assert scaling["target"] == "<= 2.1" and isinstance(scaling["met"], bool)
    assert "Targets" in proc.stdout

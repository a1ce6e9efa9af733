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
    cmd = [sys.executable, "bench/run.py", "--n", "300,600", "--runs", "1", "--only", "ceiling,raw,label_steady,label_small_heap",
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
    small = report["summary"]["targets"]["memory_label_completes_in_small_heap_at_every_n"]
    assert small["met"] is True and small["driver_memory"] == "512m"
    assert report["results"]["label_small_heap"]["600"]["jvm_gc"]["gc_pauses"] > 0
    assert "Targets" in proc.stdout


def test_gc_stats_separates_the_live_set_after_full_collections(tmp_path):
    import run as bench_run

    log = tmp_path / "gc.log"
    log.write_text(
        "[0.003s][info][gc] Using G1\n"
        "[1.0s][info][gc] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 300M->120M(512M) 3.1ms\n"
        "[2.0s][info][gc] GC(1) Pause Remark 200M->200M(512M) 1.0ms\n"
        "[3.0s][info][gc] GC(2) Pause Full (G1 Compaction Pause) 480M->95M(512M) 140.9ms\n"
        "[4.0s][info][gc] GC(3) Pause Young (Mixed) (G1 Evacuation Pause) 400M->150M(600M) 2.0ms\n"
        "[5.0s][info][gc] GC(4) Pause Full (G1 Compaction Pause) 300M->110M(600M) 120.0ms\n"
    )
    stats = bench_run.gc_stats(log)
    assert stats == {"heap_after_gc_peak_mb": 200, "heap_after_full_gc_peak_mb": 110, "heap_committed_peak_mb": 600,
                     "gc_pauses": 5, "full_gcs": 2}
    assert bench_run.gc_stats(tmp_path / "missing.log") is None

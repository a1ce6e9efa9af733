"""(b) The peer: DataTrove's FastTextClassifierFilter pipeline, annotate-only, on the bench corpus.

    bench/.venv-datatrove/bin/python bench/datatrove_run.py --input bench/work/corpus/n100000 \
        --output bench/work/datatrove/out --tasks 2 --workers 2

Runs in its own virtualenv (``bench/.venv-datatrove``, pins in ``bench/requirements-datatrove.txt``):
JsonlReader -> FastTextClassifierFilter(topic) -> FastTextClassifierFilter(stance) -> JsonlWriter,
with LocalPipelineExecutor(tasks, workers). Annotate-only: no ``keep_labels`` / ``remove_labels``
(so every non-empty document is kept) and ``save_labels_in_metadata=True`` (every label's score
lands in the document's metadata). ``filter_mode`` is DataTrove's default (the whole document is
one prediction). ``newline_replacement=" "`` so fastText sees words, not lines glued together.

The only change to DataTrove: :class:`LocalFastTextClassifierFilter` loads the model from the
local path directly. The stock filter passes ``model_url`` through ``cached_asset_path_or_download``,
which copies even a local file into the Hugging Face assets cache; the prediction code is untouched.

The last line of stdout is a JSON object (documents in/out, seconds, documents per second).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.filters import FastTextClassifierFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter


class LocalFastTextClassifierFilter(FastTextClassifierFilter):
    """FastTextClassifierFilter that opens ``model_url`` as a local file (no assets-cache copy)."""

    @property
    def model(self):
        if self._model is None:
            from fasttext.FastText import _FastText

            self._model = _FastText(self.model_url)
        return self._model


def build_pipeline(args) -> list:
    return [
        JsonlReader(args.input, glob_pattern="part-*.jsonl", text_key="text", id_key="id", compression=None),
        LocalFastTextClassifierFilter(args.topic, save_labels_in_metadata=True, newline_replacement=" "),
        LocalFastTextClassifierFilter(args.stance, save_labels_in_metadata=True, newline_replacement=" "),
        JsonlWriter(args.output, compression=None),
    ]


def count_lines(folder: Path) -> int:
    total = 0
    for f in folder.rglob("*.jsonl"):
        with open(f, "rb") as handle:
            total += sum(1 for _ in handle)
    return total


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--logs", default=None)
    ap.add_argument("--topic", default=str(root / "models/topic.ftz"))
    ap.add_argument("--stance", default=str(root / "models/stance.ftz"))
    ap.add_argument("--tasks", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    out, logs = Path(args.output), Path(args.logs or str(Path(args.output).with_name("logs")))
    for d in (out, logs):
        shutil.rmtree(d, ignore_errors=True)
    executor = LocalPipelineExecutor(
        pipeline=build_pipeline(args), tasks=args.tasks, workers=args.workers, logging_dir=str(logs),
        skip_completed=False,
    )
    started = time.perf_counter()
    executor.run()
    seconds = time.perf_counter() - started
    docs_out = count_lines(out)
    sample = {}
    for f in sorted(out.rglob("*.jsonl")):
        with open(f, encoding="utf-8") as handle:
            sample = json.loads(handle.readline())
        break
    stats_file = logs / "stats.json"
    docs_in = None
    if stats_file.exists():
        stats = json.loads(stats_file.read_text())
        for step in stats:
            if "READER" in step.get("name", "") or "Jsonl" in step.get("name", ""):
                docs_in = step.get("stats", {}).get("documents", {}).get("total") or docs_in
    result = {
        "docs_in": docs_in, "docs_out": docs_out, "seconds": round(seconds, 3),
        "docs_per_s": round(docs_out / seconds, 1), "tasks": args.tasks, "workers": args.workers,
        "sample_metadata_keys": sorted(k for k in sample.get("metadata", {}) if k.startswith("__label__")),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

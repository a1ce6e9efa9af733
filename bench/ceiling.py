"""(a) The ceiling: one Python process scoring documents with fastText, no Spark.

    .venv/bin/python bench/ceiling.py --lake bench/work/lake/n100000 --mode label
    .venv/bin/python bench/ceiling.py --lake bench/work/lake/n100000 --mode label --engine native
    .venv/bin/python bench/ceiling.py --lake bench/work/lake/n100000 --mode raw

``--mode label`` does the label job's work per document and nothing else: the exact texts the job
reads (the ``documents`` table, already ``udfs.text.normalize_text``-ed by ingest) go through
``udfs.scoring.score_texts`` with the ScoreOptions the label job builds from the project config
(windows of ``model.window_words`` words, ``model_text`` per window, topic for every document, stance
for AI documents), in batches of ``label.batch_rows`` documents, as ``mapInArrow`` hands them over.
``--engine fasttext`` (the default: the ceiling the targets are defined against) predicts through
the fastText library's batched ``predict``; ``--engine native`` through the project's compiled
engine (``udfs.native_fasttext``, what the label job uses by default), for context: how close the
Spark job comes to its own scoring code in one process.
``--mode raw`` is plain fastText for context: the topic model's batched ``predict`` on each
document as one line (newlines replaced by spaces), no windows, no ``model_text``, no stance.

Reading the table and preparing the inputs are not timed; model loading is not timed. The last
line of stdout is a JSON object (documents, seconds, CPU seconds, documents per second).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def label_options(engine: str = "fasttext"):
    """ScoreOptions exactly as the label job builds them (counterweight.label.score_options), from
    the default config with ``model.engine=<engine>``."""
    from counterweight import config
    from counterweight.label import model_spec, score_options

    cfg = config.load([f"model.engine={engine}"])
    opts = score_options(cfg, model_spec("topic", cfg.model), model_spec("stance", cfg.model))
    return opts, int(cfg.label.batch_rows)


def read_texts(lake: str | None, corpus: str | None, limit: int | None) -> list[str]:
    if lake:
        from deltalake import DeltaTable

        texts = DeltaTable(f"{lake}/documents").to_pyarrow_table(columns=["text"]).column("text").to_pylist()
    else:
        from udfs.text import normalize_text

        texts = []
        for f in sorted(Path(corpus).glob("part-*.jsonl")):
            with open(f, encoding="utf-8") as handle:
                texts += [normalize_text(json.loads(line)["text"]) for line in handle]
    return texts[:limit] if limit else texts


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", help="lake root holding a documents table (the label job's input)")
    ap.add_argument("--corpus", help="or: a bench corpus folder of JSONL (normalised here, untimed)")
    ap.add_argument("--mode", choices=("label", "raw"), default="label")
    ap.add_argument("--engine", choices=("fasttext", "native"), default="fasttext",
                    help="label mode: predict through the fastText library (the ceiling) or the native engine")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--profile", help="write cProfile stats of the timed loop to this file")
    args = ap.parse_args()
    if not (args.lake or args.corpus):
        ap.error("give --lake or --corpus")

    from udfs import scoring

    opts, batch_rows = label_options("fasttext" if args.mode == "raw" else args.engine)
    t0 = time.perf_counter()
    texts = read_texts(args.lake, args.corpus, args.limit)
    read_s = time.perf_counter() - t0
    topic_model = scoring.load_model(opts.topic)
    scoring.load_model(opts.stance)
    batches = [texts[i:i + batch_rows] for i in range(0, len(texts), batch_rows)]
    extra = {}
    if args.mode == "raw":
        batches = [[t.replace("\n", " ") for t in b] for b in batches]

        def work():
            for b in batches:
                topic_model.predict(b, k=-1, threshold=0.0)
    else:
        windows = [0]
        stance_docs = [0]

        def work():
            import numpy as np

            for b in batches:
                out = scoring.score_texts(b, opts)
                windows[0] += int(out["n_chunks"].sum())
                stance_docs[0] += int((~np.isnan(out["stance"][:, 0])).sum())
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    work()
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    seconds, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if args.mode == "label":
        extra = {"windows": windows[0], "stance_docs": stance_docs[0]}
    result = {
        "mode": args.mode, "engine": "fasttext" if args.mode == "raw" else args.engine, "docs": len(texts), "batch_rows": batch_rows, "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3), "docs_per_s": round(len(texts) / seconds, 1),
        "docs_per_cpu_s": round(len(texts) / cpu, 1), "read_seconds_untimed": round(read_s, 1), **extra,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark corpus: real text from ../shared/corpus expanded to N documents.

    .venv/bin/python bench/corpus.py --n 100000,200000,400000 --out bench/work/corpus

Every document is real text: a contiguous run of paragraphs of one real document (Wikipedia
background articles, Wikipedia film/novel/game pages with a plot section, Wikipedia AI articles,
or a passage of a Project Gutenberg novel about robots). How it expands a ~15k-document source
to hundreds of thousands of documents:

* the source document is drawn by kind (``KIND_WEIGHTS``: mostly background text, plus fiction);
* a Wikipedia document is the whole article (``WHOLE_DOC_SHARE`` of draws) or a random contiguous
  run of 50-100 % of its paragraphs, so lengths follow the real articles' heavy-tailed
  distribution; a Gutenberg passage is a run of paragraphs of log-normal length (median
  ``FICTION_MEDIAN_WORDS``), like a short story or a chapter. Every draw is independent of
  position, so the length distribution does not drift with N (the manifest records it per N);
* ids are distinct (``bench-<index>``) and so are texts: a text seen before (compared after
  ``udfs.text.normalize_text``, as ingest's dedup does) gets one more real paragraph from another
  document of the same kind until it is new. So ingest keeps every document.

The corpora are nested: the N-document corpus is the first N documents of one seeded stream, so
2N contains N. Each corpus is a folder of ``SHARDS`` plain JSONL files (``id``, ``source``,
``kind``, ``text``) plus ``_manifest.json`` (counts, length percentiles per kind, source sha256s);
``_``-prefixed files are skipped by ingest and by DataTrove's reader glob.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from udfs.text import normalize_text  # noqa: E402 - the project's own normalisation

BUILDER_VERSION = 2
SHARDS = 16
SOURCE_NAME = "bench"
FICTION_MEDIAN_WORDS = 2500
FICTION_SIGMA = 0.9
WHOLE_DOC_SHARE = 0.3  # a Wikipedia draw keeps the whole article with this probability
# Share of documents drawn from each kind (fiction = Wikipedia plot pages + Gutenberg passages).
KIND_WEIGHTS = {
    "wiki_background": 0.82,
    "wiki_plot": 0.12,
    "wiki_ai": 0.04,
    "gutenberg": 0.02,
}
SOURCES = {
    "wiki_background": "wikipedia_chinapedia/wiki_background_sample.jsonl.gz",
    "wiki_plot": "wikipedia_chinapedia/wiki_pages_with_plot_section.jsonl",
    "wiki_ai": "wikipedia_chinapedia/wiki_pages_ai_keyword.jsonl",
    "gutenberg": "gutenberg_ai_fiction",
}


def _paragraphs(text: str) -> list[str]:
    return [p for p in normalize_text(text).split("\n\n") if p.strip()]


def _gutenberg_body(raw: str) -> str:
    start = raw.find("*** START OF")
    if start >= 0:
        start = raw.find("\n", start) + 1
    end = raw.find("*** END OF")
    return raw[max(start, 0): end if end > 0 else len(raw)]


def load_pools(corpus_dir: Path) -> dict[str, list[list[str]]]:
    """kind -> documents, each a list of normalised paragraphs."""
    pools: dict[str, list[list[str]]] = {}
    for kind, rel in SOURCES.items():
        path = corpus_dir / rel
        docs = []
        if kind == "gutenberg":
            for f in sorted(path.glob("*.txt")):
                docs.append(_paragraphs(_gutenberg_body(f.read_text(encoding="utf-8", errors="replace"))))
        else:
            opener = gzip.open if rel.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as handle:
                for line in handle:
                    text = json.loads(line).get("text") or ""
                    paras = _paragraphs(text)
                    if paras:
                        docs.append(paras)
        pools[kind] = [d for d in docs if d]
    return pools


def source_checksums(corpus_dir: Path) -> dict[str, str]:
    out = {}
    for kind, rel in SOURCES.items():
        path = corpus_dir / rel
        files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
        digest = hashlib.sha256()
        for f in files:
            digest.update(f.read_bytes())
        out[kind] = digest.hexdigest()
    return out


class Expander:
    """The seeded document stream."""

    def __init__(self, pools: dict[str, list[list[str]]], seed: int):
        self.pools = pools
        self.rng = random.Random(seed)
        self.kinds = list(KIND_WEIGHTS)
        self.weights = [KIND_WEIGHTS[k] for k in self.kinds]
        self.seen: set[bytes] = set()
        self.extended = 0
        # word counts per paragraph, for the fiction passages' target lengths
        self.words = {k: [[len(p.split()) for p in doc] for doc in docs] for k, docs in pools.items()}

    def _span(self, kind: str, d: int) -> list[str]:
        doc = self.pools[kind][d]
        rng = self.rng
        if kind == "gutenberg":
            target = min(40000, max(300, int(rng.lognormvariate(math.log(FICTION_MEDIAN_WORDS), FICTION_SIGMA))))
            start = rng.randrange(len(doc))
            counts = self.words[kind][d]
            end, words = start, 0
            while end < len(doc) and words < target:
                words += counts[end]
                end += 1
            return doc[start:end]
        n = len(doc)
        k = n if rng.random() < WHOLE_DOC_SHARE else rng.randint(max(1, math.ceil(n / 2)), n)
        start = rng.randint(0, n - k)
        return doc[start:start + k]

    def next(self) -> tuple[str, str]:
        rng = self.rng
        kind = rng.choices(self.kinds, self.weights)[0]
        docs = self.pools[kind]
        paras = self._span(kind, rng.randrange(len(docs)))
        text = "\n\n".join(paras)
        key = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
        if key in self.seen:
            self.extended += 1  # documents that needed at least one extra paragraph
        while key in self.seen:  # seen before: add one more real paragraph from another document
            other = docs[rng.randrange(len(docs))]
            text = text + "\n\n" + other[rng.randrange(len(other))]
            key = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
        self.seen.add(key)
        return kind, text


def _percentiles(values: list[int]) -> dict:
    arr = np.asarray(values)
    p = np.percentile(arr, [10, 50, 90, 99]).round().astype(int).tolist()
    return {"docs": int(arr.size), "mean": round(float(arr.mean()), 1), "p10": p[0], "p50": p[1], "p90": p[2],
            "p99": p[3], "max": int(arr.max()), "total": int(arr.sum())}


def build(ns: list[int], out: Path, corpus_dir: Path, seed: int = 20261126, force: bool = False) -> dict[int, Path]:
    """Write the corpora for every N in ``ns`` (reusing ones already built with the same recipe)."""
    ns = sorted(set(ns))
    checksums = source_checksums(corpus_dir)
    recipe = {"builder_version": BUILDER_VERSION, "seed": seed, "kind_weights": KIND_WEIGHTS, "shards": SHARDS,
              "fiction_median_words": FICTION_MEDIAN_WORDS, "whole_doc_share": WHOLE_DOC_SHARE, "sources": checksums}
    dirs = {n: out / f"n{n}" for n in ns}

    def up_to_date(n: int) -> bool:
        manifest = dirs[n] / "_manifest.json"
        if force or not manifest.exists():
            return False
        return json.loads(manifest.read_text()).get("recipe") == recipe

    todo = [n for n in ns if not up_to_date(n)]
    if not todo:
        print(f"[bench] corpus: reusing {', '.join(str(dirs[n]) for n in ns)}", flush=True)
        return dirs
    started = time.perf_counter()
    print(f"[bench] corpus: loading sources from {corpus_dir}", flush=True)
    pools = load_pools(corpus_dir)
    expander = Expander(pools, seed)
    handles = {}
    for n in todo:
        dirs[n].mkdir(parents=True, exist_ok=True)
        for f in dirs[n].glob("*"):
            f.unlink()
        handles[n] = [open(dirs[n] / f"part-{s:05d}.jsonl", "w", encoding="utf-8") for s in range(SHARDS)]
    words: dict[int, dict[str, list[int]]] = {n: {k: [] for k in KIND_WEIGHTS} for n in todo}
    chars: dict[int, int] = {n: 0 for n in todo}
    n_max = max(todo)
    extended_at = {n: 0 for n in todo}  # extensions made within the first n documents
    for i in range(n_max):
        kind, text = expander.next()
        line = json.dumps({"id": f"{SOURCE_NAME}-{i:07d}", "source": SOURCE_NAME, "kind": kind, "text": text},
                          ensure_ascii=False) + "\n"
        n_words = len(text.split())
        for n in todo:
            if i < n:
                handles[n][i % SHARDS].write(line)
                words[n][kind].append(n_words)
                chars[n] += len(text)
        if i + 1 in extended_at:
            extended_at[i + 1] = expander.extended
        if (i + 1) % 50000 == 0:
            print(f"[bench] corpus: {i + 1:,}/{n_max:,} documents", flush=True)
    for n in todo:
        for h in handles[n]:
            h.close()
        all_words = [w for ws in words[n].values() for w in ws]
        manifest = {
            "recipe": recipe, "n": n, "files": SHARDS, "chars": chars[n],
            "bytes": sum(f.stat().st_size for f in dirs[n].glob("part-*.jsonl")),
            "words": _percentiles(all_words),
            "by_kind": {k: _percentiles(ws) for k, ws in words[n].items() if ws},
            "texts_extended_to_be_distinct": extended_at[n],
            "source_docs": {k: len(v) for k, v in pools.items()},
        }
        (dirs[n] / "_manifest.json").write_text(json.dumps(manifest, indent=1))
        print(f"[bench] corpus n={n:,}: {manifest['bytes'] / 1e6:,.0f} MB, words/doc p50 {manifest['words']['p50']} "
              f"mean {manifest['words']['mean']} p99 {manifest['words']['p99']}", flush=True)
    print(f"[bench] corpus built in {time.perf_counter() - started:.0f} s", flush=True)
    return dirs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", default="100000,200000,400000", help="comma-separated document counts")
    ap.add_argument("--out", default=str(ROOT / "bench/work/corpus"))
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared/corpus"))
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    build([int(x) for x in args.n.split(",")], Path(args.out), Path(args.corpus), args.seed, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Select alignment-research abstracts for careful manual annotation against
../shared/eval/RUBRIC.md.

This script only SELECTS and PRESENTS texts; it assigns no labels. Labels in
alignment_paper_labels.jsonl were written by an annotator reading each presented
"Title\\n\\nAbstract" text in batches.

Licence note: the CSV is internal-use only. Neither this script's output file
(--out) nor the label file may be committed with abstract text; the label file
stores only Key, Title and labels, and the text is joined back at build time from
../shared by Key.

Selection (reproducible):
  1. Read the CSV (default <repo root>/../shared/corpus/alignment_research/ai-alignment-papers.csv).
  2. Keep rows with a non-empty Key and an Abstract Note of at least 40 whitespace words.
  3. De-duplicate in file order, keeping the first occurrence, on
     (a) Key, (b) normalized Title, (c) the first 200 normalized characters of the abstract
     (the CSV repeats some papers under different Keys / item types).
  4. random.Random(11).sample(pool, N) with N = --n (default 400); items keep sample order.
  5. Drop any sampled item whose abstract is a near-duplicate (word-trigram Jaccard >= 0.8)
     of an earlier sampled item (catches e.g. the same paper with a LaTeX-escaped title);
     with the default CSV this removes 1 item, leaving 399.

Usage:
  python select_alignment_papers.py [CSV] [--n 400] [--out FILE]      # stats only
  python select_alignment_papers.py [CSV] --show 0 15                  # print items 0..14 for reading
  python select_alignment_papers.py [CSV] --batch 3 [--batch-size 15]  # print batch 3 (items 45..59)
Labels file: alignment_paper_labels.jsonl (same order as the selection; key = CSV Key column).
"""
import argparse
import csv
import json
import os
import random
import re
import sys

SEED = 11
MIN_WORDS = 40
HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DEFAULT_CSV = os.path.join(REPO_ROOT, "..", "shared", "corpus", "alignment_research", "ai-alignment-papers.csv")


def norm(s):
    return re.sub(r"\s+", " ", (s or "").lower()).strip()


NEAR_DUP = 0.8


def trigrams(text):
    w = re.findall(r"[a-z0-9]+", (text or "").lower())
    return set(zip(w, w[1:], w[2:]))


def load_rows(path):
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def select(path, n=400):
    rows = load_rows(path)
    stats = dict(rows=len(rows))
    elig = [r for r in rows if (r.get("Key") or "").strip() and len((r.get("Abstract Note") or "").split()) >= MIN_WORDS]
    stats["eligible"] = len(elig)
    seen_k, seen_t, seen_a, pool = set(), set(), set(), []
    for r in elig:
        k = r["Key"].strip()
        t = norm(r.get("Title"))
        a = norm(r["Abstract Note"])[:200]
        if k in seen_k or (t and t in seen_t) or a in seen_a:
            continue
        seen_k.add(k)
        seen_a.add(a)
        if t:
            seen_t.add(t)
        pool.append(r)
    stats["deduplicated_pool"] = len(pool)
    sample = random.Random(SEED).sample(pool, min(n, len(pool)))
    kept, shingles = [], []
    for r in sample:
        sh = trigrams(r["Abstract Note"])
        if any(sh and o and len(sh & o) / len(sh | o) >= NEAR_DUP for o in shingles):
            continue
        shingles.append(sh)
        kept.append(r)
    stats["near_duplicates_dropped"] = len(sample) - len(kept)
    sample = kept
    items = [dict(key=r["Key"].strip(), title=(r.get("Title") or "").strip(),
                  item_type=r.get("Item Type", ""), year=r.get("Publication Year", ""),
                  text=(r.get("Title") or "").strip() + "\n\n" + r["Abstract Note"].strip())
             for r in sample]
    stats["selected"] = len(items)
    return items, stats


def present(item, idx):
    print(f"##### [{idx}] {item['key']} | {item['item_type']} {item['year']}")
    print(item["text"])
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="?", default=DEFAULT_CSV)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--out", default=None, help="write the selection (no labels; contains abstract text, do not commit)")
    ap.add_argument("--show", nargs=2, type=int, metavar=("START", "END"))
    ap.add_argument("--batch", type=int, default=None, help="print batch number B (0-based) of --batch-size items")
    ap.add_argument("--batch-size", type=int, default=15)
    a = ap.parse_args()
    items, stats = select(os.path.abspath(a.csv), a.n)
    if a.out:
        with open(a.out, "w") as f:
            for it in items:
                f.write(json.dumps(it, ensure_ascii=False) + "\n")
    if a.batch is not None:
        a.show = [a.batch * a.batch_size, (a.batch + 1) * a.batch_size]
    if a.show:
        for i in range(a.show[0], min(a.show[1], len(items))):
            present(items[i], i)
    else:
        print(json.dumps(stats, indent=1), file=sys.stderr)


if __name__ == "__main__":
    main()

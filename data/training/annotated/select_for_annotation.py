#!/usr/bin/env python3
"""Select real texts for careful manual annotation against ../shared/eval/RUBRIC.md.

This script only SELECTS and PRESENTS texts; it assigns no labels. Labels in
real_annotations.jsonl were written by an annotator reading each presented text.

Selection (all reproducible, seed 7):
  1. wikipedia_chinapedia/wiki_pages_with_plot_section.jsonl: every page with
     ai_keyword_hits > 0, plus a random sample (random.Random(7)) of the pages with
     ai_keyword_hits == 0, so that the total is --n-plot (default 350). Whole page = one record.
  2. wikipedia_chinapedia/wiki_pages_ai_keyword.jsonl: random.Random(7).sample of
     --n-ai (default 120) pages. Whole page = one record.
  3. gutenberg_ai_fiction/*.txt: Project Gutenberg header/footer stripped, text split on
     paragraph boundaries into passages of about 250-400 words (paragraphs longer than
     450 words are split at sentence boundaries), then up to 12 passages per book sampled
     with random.Random(7) (books processed in sorted file order, one generator per book).

Exclusions: any text that matches an item of ../shared/eval/dev_labels.jsonl, compared on the
first 200 characters of normalized text (lower-cased, markup underscores removed, whitespace
collapsed); for Wikipedia also when a dev text starts with the page title; for Gutenberg
also when a dev passage's opening 200 normalized characters occur inside a candidate passage
or vice versa (overlapping passages). Only the dev texts are used, never their labels.

Usage:
  python select_for_annotation.py [--corpus DIR] [--dev FILE] [--out FILE]
  python select_for_annotation.py --out sel.jsonl --show 0 10   # print items 0..9 for reading
Defaults: corpus = <repo root>/../shared/corpus, dev = <corpus>/../eval/dev_labels.jsonl.
"""
import argparse
import json
import os
import random
import re
import sys

SEED = 7
HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def norm(s):
    s = s.lower().replace("_", " ")
    s = re.sub(r"\s+", " ", s)
    return s.strip()


def load_dev(path):
    """Return (prefixes, wiki_texts_norm, gutenberg_texts_norm) from dev texts only."""
    prefixes, wiki, gut = set(), [], []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            t = norm(r["text"])
            prefixes.add(t[:200])
            src = r.get("source", "")
            if src.startswith("wiki"):
                wiki.append(t)
            elif src.startswith("gutenberg"):
                gut.append(t)
    return prefixes, wiki, gut


def wiki_excluded(rec, prefixes, dev_wiki):
    t = norm(rec["text"])
    if t[:200] in prefixes:
        return True
    title = norm(rec["title"])
    if len(title) >= 3:
        pat = re.compile(r"^" + re.escape(title) + r"(?![a-z0-9])")
        for d in dev_wiki:
            if pat.match(d):
                return True
    return False


def load_jsonl(path):
    with open(path) as f:
        return [json.loads(l) for l in f]


START_RE = re.compile(r"^\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
END_RE = re.compile(r"^(\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG|End of (the )?Project Gutenberg)", re.M | re.I)


def strip_gutenberg(raw):
    m = START_RE.search(raw)
    if m:
        raw = raw[m.end():]
    m = END_RE.search(raw)
    if m:
        raw = raw[:m.start()]
    return raw.strip()


def words(s):
    return len(s.split())


def split_long_paragraph(p, target=300):
    sents = re.split(r"(?<=[.!?;:][\"'”’)]?)\s+", p)
    out, cur = [], []
    for s in sents:
        cur.append(s)
        if words(" ".join(cur)) >= target:
            out.append(" ".join(cur))
            cur = []
    if cur:
        if out and words(" ".join(cur)) < 100:
            out[-1] = out[-1] + " " + " ".join(cur)
        else:
            out.append(" ".join(cur))
    return out


def passages(text, lo=250, hi=400):
    paras = []
    for p in re.split(r"\n\s*\n", text):
        p = p.strip("\n")
        if not p.strip():
            continue
        # re-flow hard-wrapped lines (keep leading indentation out)
        p = re.sub(r"\s*\n\s*", " ", p.strip())
        if words(p) > 450:
            paras.extend(split_long_paragraph(p))
        else:
            paras.append(p)
    out, cur = [], []
    for p in paras:
        cw = words("\n\n".join(cur)) if cur else 0
        if cur and cw >= lo and cw + words(p) > hi:
            out.append("\n\n".join(cur))
            cur = []
        cur.append(p)
    if cur:
        tail = "\n\n".join(cur)
        if out and words(tail) < lo and words(out[-1]) + words(tail) <= hi + 150:
            out[-1] = out[-1] + "\n\n" + tail
        elif words(tail) >= 100 or not out:
            out.append(tail)
    return out


def select(corpus, dev_path, n_plot=350, n_ai=120, per_book=12):
    prefixes, dev_wiki, dev_gut = load_dev(dev_path)
    dev_gut_pref = [d[:200] for d in dev_gut]
    items = []
    stats = {}

    # 1. plot pages
    rel = "wikipedia_chinapedia/wiki_pages_with_plot_section.jsonl"
    rows = load_jsonl(os.path.join(corpus, rel))
    keep = [r for r in rows if not wiki_excluded(r, prefixes, dev_wiki)]
    hit = [r for r in keep if r.get("ai_keyword_hits", 0) > 0]
    rest = [r for r in keep if r.get("ai_keyword_hits", 0) == 0]
    k = max(0, min(len(rest), n_plot - len(hit)))
    sample = random.Random(SEED).sample(rest, k)
    stats[rel] = dict(total=len(rows), excluded=len(rows) - len(keep), with_hits=len(hit), sampled_rest=k)
    for r in sorted(hit + sample, key=lambda r: r["source_path"]):
        items.append(dict(source_file=rel, source_key=r["source_path"], title=r["title"],
                          ai_keyword_hits=r.get("ai_keyword_hits", 0), text=r["text"]))

    # 2. AI keyword pages
    rel = "wikipedia_chinapedia/wiki_pages_ai_keyword.jsonl"
    rows = load_jsonl(os.path.join(corpus, rel))
    keep = [r for r in rows if not wiki_excluded(r, prefixes, dev_wiki)]
    sample = random.Random(SEED).sample(keep, min(n_ai, len(keep)))
    stats[rel] = dict(total=len(rows), excluded=len(rows) - len(keep), sampled=len(sample))
    for r in sorted(sample, key=lambda r: r["source_path"]):
        items.append(dict(source_file=rel, source_key=r["source_path"], title=r["title"],
                          ai_keyword_hits=r.get("ai_keyword_hits", 0), text=r["text"]))

    # 3. Gutenberg passages
    gdir = os.path.join(corpus, "gutenberg_ai_fiction")
    titles = {}
    meta = os.path.join(gdir, "metadata.tsv")
    if os.path.exists(meta):
        with open(meta) as f:
            hdr = f.readline().rstrip("\n").split("\t")
            for line in f:
                row = dict(zip(hdr, line.rstrip("\n").split("\t")))
                titles[row["file"]] = row["title"]
    for fn in sorted(x for x in os.listdir(gdir) if x.endswith(".txt")):
        with open(os.path.join(gdir, fn), encoding="utf-8") as f:
            body = strip_gutenberg(f.read())
        ps = passages(body)
        cand = []
        for i, p in enumerate(ps):
            n = norm(p)
            if n[:200] in prefixes or any(d in n for d in dev_gut_pref) or any(n[:200] in d for d in dev_gut):
                continue
            cand.append((i, p))
        rng = random.Random(SEED)
        chosen = sorted(rng.sample(cand, min(per_book, len(cand))))
        stats["gutenberg_ai_fiction/" + fn] = dict(passages=len(ps), excluded=len(ps) - len(cand), sampled=len(chosen))
        for i, p in chosen:
            items.append(dict(source_file="gutenberg_ai_fiction/" + fn, source_key=f"{fn}#{i}",
                              title=titles.get(fn, fn), ai_keyword_hits=None, text=p))
    return items, stats


PRESENT_RE = re.compile(r"robot|android|artificial intelligence|\bA\.?I\.?\b|cyborg|computer|automat|"
                        r"machine|synthetic|replicant|droid|mechanical|clockwork", re.I)


def present(item, idx, head=2500, snips=6):
    t = item["text"]
    print(f"##### [{idx}] {item['source_key']} | {item['title']} | chars={len(t)} | hits={item['ai_keyword_hits']}")
    print(t[:head])
    if len(t) > head:
        # reading aid only: show where the rest of the page talks about machines, so the whole
        # page can be judged without printing all of it
        rest = t[head:]
        shown = 0
        last = -1000
        for m in PRESENT_RE.finditer(rest):
            if m.start() < last + 400:
                continue
            last = m.start()
            a, b = max(0, m.start() - 200), min(len(rest), m.end() + 200)
            print("   ...[+%d] %s" % (head + a, rest[a:b].replace("\n", " ")))
            shown += 1
            if shown >= snips:
                break
        print(f"   ...[truncated; {len(t) - head} more chars]")
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.path.join(REPO_ROOT, "..", "shared", "corpus"))
    ap.add_argument("--dev", default=None)
    ap.add_argument("--out", default=None, help="write the selection (no labels) as JSONL")
    ap.add_argument("--show", nargs=2, type=int, metavar=("START", "END"))
    ap.add_argument("--head", type=int, default=2500)
    ap.add_argument("--snips", type=int, default=6, help="max keyword-context snippets shown beyond --head")
    a = ap.parse_args()
    corpus = os.path.abspath(a.corpus)
    dev = a.dev or os.path.join(corpus, "..", "eval", "dev_labels.jsonl")
    items, stats = select(corpus, dev)
    if a.out:
        with open(a.out, "w") as f:
            for it in items:
                f.write(json.dumps(it, ensure_ascii=False) + "\n")
    if a.show:
        for i in range(a.show[0], min(a.show[1], len(items))):
            present(items[i], i, a.head, a.snips)
    else:
        print(json.dumps(stats, indent=1), file=sys.stderr)
        print(f"{len(items)} items selected", file=sys.stderr)


if __name__ == "__main__":
    main()

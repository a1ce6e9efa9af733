"""Build the labelled training sets for the topic and stance models.

Recipe (every example records its provenance: source file, how it was labelled):

====================================  =========  ====================================================
source                                labels     how
====================================  =========  ====================================================
data/training/synthetic/*.jsonl       both       written to label against RUBRIC.md (synthetic; the
                                                 text kinds the corpus lacks: synopses, blurbs,
                                                 magazine story excerpts, AI-safety Q&A, summaries)
data/training/annotated/*.jsonl       both       real Wikipedia / Gutenberg text read and labelled
                                                 against RUBRIC.md
shared eval/dev_labels.jsonl (half)   both       hand labels; the other half is held out
shared wiki_background_sample         topic      weak: random encyclopedia articles -> other
shared wiki_pages_with_plot_section   topic      weak: plot pages with no AI keyword hit -> other
                                                 (fiction without artificial minds)
shared dolma_cc_sample                topic      weak: Common Crawl pages cut at line breaks into pieces of
                                                 5-400 words, pieces with no AI-evidence word -> other
shared gutenberg_ai_fiction           topic      weak: 120-400-word passages of the AI stories with >= 4
                                                 AI-evidence words -> ai_fiction (none overlapping the
                                                 dev holdout by 8 words; training split only)
shared ai_character_db                both       silver: fictional AI characters -> ai_fiction; stance
                                                 only where benevolence and alignment ratings agree
shared alignment_research             both       ~720 abstracts and ~80 newsletter summaries read and
                                                 labelled (labels committed in annotated/alignment_paper_
                                                 labels.jsonl and alignment_summary_labels.jsonl, text
                                                 joined here; one split group per paper); 200 more
                                                 abstracts as topic-only -> ai_nonfiction
====================================  =========  ====================================================

Texts from shared/ are read at build time and never committed (internal-only licences). The
build writes fastText files plus ``manifest.json`` (inputs with sha256, counts per label and
source, sha256 of each final training file) under ``build/training``.

Training lines match how the label job scores (udfs/scoring.py: windows of ``model.window_words`` =
400 words, a document judged by its most AI-focused windows): an example longer than a window becomes
up to 3 window-sized lines, and every example also gives up to 2 short passages (4-80 tokens,
log-uniform length), so short inputs are seen in every class (see ``_train_lines``). Windows and
passages keep their parent's label only where that label still holds: those of AI examples must
carry AI evidence (``AI_EVIDENCE``; a passage is centred on such a word), those of ``other`` examples
may come from anywhere. Validation files keep one line per example, cut to ``MAX_WORDS``.

Balancing: smaller classes are repeated (at most 3x, whole examples in sha256 order) towards the
largest class's size, after a hash-based validation split; nothing is thrown away.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
import math
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from udfs.scoring import window_spans
from udfs.text import model_text, normalize_text

log = logging.getLogger(__name__)

TOPICS = ("ai_fiction", "ai_nonfiction", "other")
STANCES = ("villain", "aligned", "neutral")
AI_TOPICS = ("ai_fiction", "ai_nonfiction")
MAX_WORDS = 1200  # validation lines are cut to this many words
ALIGNMENT_LABELS = "alignment_paper_labels.jsonl"  # careful-reading labels keyed by the CSV's Key
# More careful-reading labels of the same CSV: abstracts and Rohin Shah's newsletter summaries
# (``text_field``), keyed by Key, or ``NOKEY_ROW<n>`` (0-based data row) for rows without a Key.
SUMMARY_LABELS = "alignment_summary_labels.jsonl"
LABEL_ONLY = (ALIGNMENT_LABELS, SUMMARY_LABELS)  # their text is joined from shared/ at build time


@dataclass
class Example:
    id: str
    text: str
    topic: Optional[str]
    stance: Optional[str]  # None: not usable for the stance model
    source: str
    labelled_by: str
    group: str = ""  # examples sharing a group land in the same split (default: the id)


def _h(*parts: str) -> float:
    """Deterministic [0, 1) from sha256 (never Python's salted hash())."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _cut(text: str, max_words: int = MAX_WORDS) -> str:
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:max_words])


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _jsonl(path: Path) -> Iterator[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _fingerprint(text: str) -> str:
    return " ".join(normalize_text(text).lower().split())[:200]


def _stance(topic: str, stance: Optional[str]) -> Optional[str]:
    return stance if topic in AI_TOPICS and stance in STANCES else None


def committed_examples(repo: Path) -> Iterator[Example]:
    for path in sorted((repo / "data/training/synthetic").glob("*.jsonl")):
        for r in _jsonl(path):
            yield Example(f"syn:{r['id']}", r["text"], r["topic"], _stance(r["topic"], r["stance"]),
                          f"synthetic/{path.name}:{r.get('kind', '')}", r.get("labelled_by", "synthetic"))
    for path in sorted((repo / "data/training/annotated").glob("*.jsonl")):
        if path.name in LABEL_ONLY:
            continue  # labels only: their text is joined from shared/ at build time
        for r in _jsonl(path):
            yield Example(f"ann:{r['id']}", r["text"], r["topic"], _stance(r["topic"], r["stance"]),
                          f"annotated/{r['source_file']}", r.get("labelled_by", "annotated"))


def dev_split(dev_path: Path, holdout_share: float = 0.5, seed: str = "dev") -> tuple[list[dict], list[dict]]:
    """Stratified split of the dev set by (topic, stance) in sha256 order: (train part, holdout)."""
    rows = list(_jsonl(dev_path))
    by_class: dict[tuple, list[dict]] = {}
    for r in rows:
        by_class.setdefault((r["topic"], r["stance"]), []).append(r)
    train, holdout = [], []
    for key in sorted(by_class):
        members = sorted(by_class[key], key=lambda r: _h(seed, r["id"]))
        n_hold = int(round(len(members) * holdout_share))
        holdout += members[:n_hold]
        train += members[n_hold:]
    return train, holdout


BACKGROUND_OTHER = 1200  # random encyclopedia articles -> other
PLOT_OTHER = 400  # plot pages without an AI keyword -> other


def shared_examples(repo: Path, shared: Path, exclude: set[str], rng_seed: int,
                    avoid: Optional[set[str]] = None) -> Iterator[Example]:
    corpus = shared / "corpus"
    rng = random.Random(rng_seed)
    # Background encyclopedia text -> other.
    bg = [r for r in _jsonl(corpus / "wikipedia_chinapedia/wiki_background_sample.jsonl.gz")
          if _fingerprint(r["text"]) not in exclude]
    for r in rng.sample(bg, min(BACKGROUND_OTHER, len(bg))):
        yield Example(f"wiki_bg:{r['source_path']}", r["text"], "other", None,
                      "wikipedia_chinapedia/wiki_background_sample.jsonl.gz", "weak: random article -> other")
    # Plot pages without any AI keyword -> fiction (mostly) without an artificial mind -> other.
    plots = [r for r in _jsonl(corpus / "wikipedia_chinapedia/wiki_pages_with_plot_section.jsonl")
             if r.get("ai_keyword_hits", 0) == 0 and _fingerprint(r["text"]) not in exclude]
    for r in rng.sample(plots, min(PLOT_OTHER, len(plots))):
        yield Example(f"wiki_plot:{r['source_path']}", r["text"], "other", None,
                      "wikipedia_chinapedia/wiki_pages_with_plot_section.jsonl", "weak: no AI keyword -> other")
    # Real web text (Common Crawl) of every length -> other: product pages, blogs, news, lists.
    yield from web_examples(corpus / "dolma_cc_sample", exclude)
    # Real magazine-story prose with artificial minds (public domain).
    yield from gutenberg_examples(corpus / "gutenberg_ai_fiction", avoid or set())
    # Fictional AI characters (silver ratings; keep only agreeing, qualified ones).
    stance_of = {("Malevolent", "Misaligned"): "villain", ("Benevolent", "Aligned"): "aligned",
                 ("Ambiguous", "Ambiguous"): "neutral"}
    chars = []
    for r in _jsonl(corpus / "ai_character_db/ai_characters.jsonl"):
        if r.get("ai_qualification") != "Pass" or not r.get("character_description"):
            continue
        stance = stance_of.get((r.get("benevolence_rating"), r.get("alignment_rating")))
        text = f"{r['character_description']}"
        chars.append(Example(f"chardb:{r.get('work_name')}:{r.get('character_name')}", text, "ai_fiction", stance,
                             "ai_character_db/ai_characters.jsonl",
                             "silver: model-assisted ratings, kept where benevolence and alignment agree"))
    per_stance: Counter = Counter()
    for ex in sorted(chars, key=lambda e: _h("chardb", e.id)):
        key = ex.stance or "none"
        if per_stance[key] < 220:
            per_stance[key] += 1
            yield ex
    yield from alignment_examples(repo, corpus / "alignment_research/ai-alignment-papers.csv", exclude, rng)


def _title_group(title: str) -> str:
    return "paper:" + " ".join(re.findall(r"\w+", title.lower()))


def alignment_examples(repo: Path, csv_path: Path, exclude: set[str], rng: random.Random) -> Iterator[Example]:
    """Alignment research CSV: the carefully read abstracts and newsletter summaries with both labels
    (labels committed in data/training/annotated, text joined here), then 200 more abstracts as
    topic-only weak labels. Every text of one paper (by title) shares a split group, so an abstract and
    a summary of the same paper never sit on both sides of the validation split."""
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_key = {r["Key"]: r for r in rows if r.get("Key")}
    labelled: set[str] = set()
    annotated_dir = repo / "data/training/annotated"
    labels_path = annotated_dir / ALIGNMENT_LABELS
    for label in (sorted(_jsonl(labels_path), key=lambda r: r["key"]) if labels_path.is_file() else []):
        paper = by_key.get(label["key"])
        if paper is None or len((paper.get("Abstract Note") or "").split()) < 40:
            continue
        labelled.add(label["key"])
        if _fingerprint(paper["Abstract Note"]) in exclude:
            continue
        yield Example(f"paper_ann:{label['key']}", f"{paper.get('Title', '')}\n\n{paper['Abstract Note']}",
                      label["topic"], _stance(label["topic"], label["stance"]),
                      "alignment_research/ai-alignment-papers.csv (annotated)",
                      label.get("labelled_by", "careful reading"), _title_group(paper.get("Title", "")))
    summaries = annotated_dir / SUMMARY_LABELS
    for label in (sorted(_jsonl(summaries), key=lambda r: (r["key"], r["text_field"])) if summaries.is_file() else []):
        key, field = label["key"], label["text_field"]
        if key.startswith("NOKEY_ROW"):
            n = int(key[len("NOKEY_ROW"):])
            paper = rows[n] if n < len(rows) else None
        else:
            paper = by_key.get(key)
        if paper is None or paper.get("Title", "").strip() != label["title"].strip():
            raise ValueError(f"{summaries}: key {key!r} does not match the CSV row titled {label['title']!r} "
                             f"in {csv_path} (labels must be re-keyed if the CSV changed)")
        labelled.add(key)
        text = (paper.get(field) or "").strip()
        if len(text.split()) < 20 or _fingerprint(text) in exclude:
            continue
        tag = "summary" if field == "Rohin_Shah_Blurb" else "abstract"
        yield Example(f"paper_{tag}:{key}", f"{paper.get('Title', '')}\n\n{text}", label["topic"],
                      _stance(label["topic"], label["stance"]), f"alignment_research/ai-alignment-papers.csv ({tag}, annotated)",
                      label.get("labelled_by", "careful reading"), _title_group(paper.get("Title", "")))
    rest = [r for r in rows if r.get("Key") and r["Key"] not in labelled
            and len((r.get("Abstract Note") or "").split()) >= 40]
    for r in rng.sample(rest, min(200, len(rest))):
        text = f"{r.get('Title', '')}\n\n{r['Abstract Note']}"
        yield Example(f"paper:{r.get('Key')}", text, "ai_nonfiction", None,
                      "alignment_research/ai-alignment-papers.csv", "weak: alignment paper abstract -> ai_nonfiction",
                      _title_group(r.get("Title", "")))


GUTENBERG_MIN_EVIDENCE = 4  # AI-evidence words a 120-400-word passage needs to be weakly labelled ai_fiction
GUTENBERG_PER_BOOK = 25
SHINGLE = 8  # word n-gram length for overlap checks against held-out text


def shingles(text: str) -> set[str]:
    words = model_text(normalize_text(text)).split()
    return {" ".join(words[i:i + SHINGLE]) for i in range(max(0, len(words) - SHINGLE + 1))}


def _strip_gutenberg(raw: str) -> str:
    start = re.search(r"^\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG.*$", raw, re.M | re.I)
    if start:
        raw = raw[start.end():]
    end = re.search(r"^(\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG|End of (the )?Project Gutenberg)", raw, re.M | re.I)
    return (raw[:end.start()] if end else raw).strip()


def gutenberg_examples(folder: Path, avoid: set[str]) -> Iterator[Example]:
    """Passages (120-400 words, cut at paragraph breaks) of the public-domain AI stories -> ai_fiction (topic only).

    Real magazine-story prose (most of these appeared in 1950s SF magazines), which the synthetic excerpts
    only imitate. Weak label: a passage counts only with at least GUTENBERG_MIN_EVIDENCE AI-evidence words
    (a passage about a dusty road in a robot story is not evidence of anything). Passages sharing any
    SHINGLE-word run with ``avoid`` (the dev holdout) are left out, so no held-out text reaches training
    through an overlapping window; they go to the training split only (they may overlap annotated passages).
    """
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("pg*.txt")):
        paragraphs = [p for p in re.split(r"\n\s*\n", _strip_gutenberg(path.read_text(encoding="utf-8"))) if p.strip()]
        passages, chunk, n = [], [], 0
        for para in paragraphs:
            chunk.append(para)
            n += len(para.split())
            if n >= 120 + int(_h("gut-len", path.name, str(len(passages))) * 280):
                passages.append("\n\n".join(chunk))
                chunk, n = [], 0
        kept = []
        for i, text in enumerate(passages):
            if len(text.split()) > 600 or _evidence(model_text(text).split()) < GUTENBERG_MIN_EVIDENCE:
                continue
            if shingles(text) & avoid:
                continue
            kept.append(Example(f"gut:{path.name}#{i}", text, "ai_fiction", None, f"gutenberg_ai_fiction/{path.name}",
                                f"weak: passage of an AI story with >= {GUTENBERG_MIN_EVIDENCE} AI-evidence words -> ai_fiction"))
        kept.sort(key=lambda e: _h("gut-pick", e.id))
        yield from kept[:GUTENBERG_PER_BOOK]


WEB_PIECE_WORDS = (5, 400)  # web documents are cut into pieces of log-uniform length in this range
WEB_MAX_PIECES = 400


def web_examples(folder: Path, exclude: set[str]) -> Iterator[Example]:
    """Common Crawl documents cut at line breaks into pieces of 5-400 words -> ``other``.

    Web text is the background the label job mostly sees, and it comes in every length (a one-line
    listing, a product blurb, a 3,000-word blog page). Pieces with any word of AI evidence are left out,
    so the weak label holds. The text is read at build time only (not committed: see corpus/README).
    """
    if not folder.is_dir():
        return
    pieces = []
    for path in sorted(folder.glob("*.jsonl")):
        for r in _jsonl(path):
            text = normalize_text(r.get("text") or "")
            if not text or _fingerprint(text) in exclude:
                continue
            lines = [l for l in text.split("\n") if l.strip()]
            doc_id = str(r.get("id", ""))
            lo, hi = WEB_PIECE_WORDS
            i, k = 0, 0
            while i < len(lines):
                target = int(round(math.exp(math.log(lo) + _h("web", doc_id, str(k)) * (math.log(hi) - math.log(lo)))))
                chunk, n = [], 0
                while i < len(lines) and n < target:
                    chunk.append(lines[i])
                    n += len(lines[i].split())
                    i += 1
                k += 1
                piece = "\n".join(chunk)
                if n >= 3 and not AI_EVIDENCE.search(model_text(piece)):
                    pieces.append(Example(f"web:{doc_id}#{k}", piece, "other", None, f"dolma_cc_sample/{path.name}",
                                          "weak: web page piece without AI evidence -> other"))
    pieces.sort(key=lambda e: _h("web-pick", e.id))
    yield from pieces[:WEB_MAX_PIECES]


def _balance(examples: list[Example], label_of, seed: str) -> list[Example]:
    counts = Counter(label_of(e) for e in examples)
    target = max(counts.values())
    out = []
    for label in sorted(counts):
        members = sorted((e for e in examples if label_of(e) == label), key=lambda e: _h(seed, e.id))
        if len(members) >= target:
            out += members[:target]
        else:
            reps = min(3, math.ceil(target / len(members)))
            out += (members * reps)[: max(len(members), min(target, len(members) * reps))]
    # Interleave deterministically: each copy of an example gets its own position in sha256 order.
    copies: Counter = Counter()
    keyed = []
    for e in out:
        copies[e.id] += 1
        keyed.append((_h(seed, "order", e.id, str(copies[e.id])), e.id, copies[e.id], e))
    return [e for *_, e in sorted(keyed, key=lambda k: k[:3])]


WINDOW_WORDS = 400  # = model.window_words: long training texts become window-sized lines, as the label job scores
MAX_WINDOWS = 3  # window lines per long example (evidence-bearing windows first for AI examples)
SNIPPET_WORDS = (4, 80)  # short passages: lengths log-uniform in this range
SNIPPETS_PER_EXAMPLE = 2
# Words that show an artificial mind (or AI as a subject) is present in a passage of model text. A window
# or snippet of an AI example is only given its parent's AI label when it carries such evidence: a stray
# sentence about soup from a robot story is not evidence for ai_fiction, and training it as such taught the
# model that any short text is ai_fiction.
AI_EVIDENCE = re.compile(
    r"\b(?:robot\w*|androids?|cyborgs?|droids?|replicants?|automat(?:on|ons|a|ic|ed)|artificial|a \. i|ai|ais|agi|"
    r"computers?|machines?|mechanical|synthetic\w*|sentien\w*|superintelligen\w*|intelligen\w*|algorithm\w*|"
    r"neural|deep learning|classifiers?|chatbots?|models?|software|programm?\w*|circuit\w*|mecha\w*|cybern\w*|hologra\w*|nanit\w*|"
    r"alignment|aligned|misaligned|agents?|autonomous|golems?|simulat\w*|upload\w*|digital|drones?|"
    r"mainframe|supercomputer|hal|skynet|terminators?|positronic|bots?|ship's|uploaded|construct)\b")


def _evidence(words: list[str]) -> int:
    return len(AI_EVIDENCE.findall(" ".join(words)))


def _snippets(words: list[str], ai: bool, example_id: str, seed: str) -> list[str]:
    """Up to SNIPPETS_PER_EXAMPLE deterministic runs of consecutive tokens (4-80, log-uniform length).

    fastText averages word vectors plus an end-of-line vector; trained only on long lines, that vector
    grows unchecked and decides short inputs alone. Short passages keep short inputs honest, but only
    if they keep their label: a passage of an AI example is centred on a word of AI evidence (and
    dropped when the example has none); a passage of an ``other`` example may come from anywhere.
    """
    lo, hi = SNIPPET_WORDS
    if len(words) < 2 * lo:
        return []
    hits = [i for i, w in enumerate(words) if AI_EVIDENCE.fullmatch(w)] if ai else []
    if ai and not hits:
        return []
    out = []
    for k in range(SNIPPETS_PER_EXAMPLE):
        top = min(hi, len(words) // 2)
        n = int(round(math.exp(math.log(lo) + _h(seed, "snip-len", example_id, str(k)) * (math.log(top) - math.log(lo)))))
        n = max(lo, min(top, n))
        if ai:
            centre = hits[int(_h(seed, "snip-hit", example_id, str(k)) * len(hits))]
            start = max(0, min(len(words) - n, centre - int(_h(seed, "snip-off", example_id, str(k)) * n)))
        else:
            start = int(_h(seed, "snip-start", example_id, str(k)) * (len(words) - n + 1))
        out.append(" ".join(words[start:start + n]))
    return out


def _train_lines(line: str, ai: bool, example_id: str, seed: str) -> list[str]:
    """An example as training lines: itself (or up to MAX_WINDOWS window-sized parts of it) plus snippets.

    Windows of an AI example must carry AI evidence (the label job judges a document by its most
    AI-focused windows, so a window without any is not a positive); windows of other examples are
    taken in sha256 order.
    """
    words = line.split()
    if len(words) <= WINDOW_WORDS + WINDOW_WORDS // 4:
        lines = [line]
    else:
        spans = window_spans(words, WINDOW_WORDS)
        if ai:
            scored = [(-_evidence(s), _h(seed, "win", example_id, str(i)), s) for i, s in enumerate(spans)]
            picked = [s for e, _, s in sorted(scored, key=lambda t: t[:2]) if e <= -2][:MAX_WINDOWS]
            picked = picked or [min(scored, key=lambda t: t[:2])[2]]
        else:
            picked = [s for _, s in sorted((_h(seed, "win", example_id, str(i)), s) for i, s in enumerate(spans))][:MAX_WINDOWS]
        lines = [" ".join(s) for s in picked]
    return lines + _snippets(words, ai, example_id, seed)


def _write_fasttext(path: Path, examples: Iterable[Example], label_of, snippets: bool = False) -> Counter:
    """Validation files: one line per example, cut to MAX_WORDS. Training files (``snippets``): window-sized
    lines plus label-preserving short passages of every example (see :func:`_train_lines`).
    Returns the lines written per label."""
    written: Counter = Counter()
    with open(path, "w", encoding="utf-8") as handle:
        for i, e in enumerate(examples):
            label = label_of(e)
            if snippets:
                line = model_text(normalize_text(e.text))
                lines = _train_lines(line, e.topic in AI_TOPICS, f"{e.id}:{i}", path.name) if line else []
            else:
                line = model_text(_cut(normalize_text(e.text)))
                lines = [line] if line else []
            for text in lines:
                handle.write(f"__label__{label} {text}\n")
                written[label] += 1
    return written


def build(repo: Path, shared: Optional[Path], out_dir: Path, seed: int = 13, valid_share: float = 0.15) -> dict:
    """Assemble, split, balance and write the training files; return the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    examples = list(committed_examples(repo))
    inputs = sorted({*(repo / "data/training/synthetic").glob("*.jsonl"), *(repo / "data/training/annotated").glob("*.jsonl")})
    dev_holdout: list[dict] = []
    if shared is not None and (shared / "eval/dev_labels.jsonl").is_file():
        dev_train, dev_holdout = dev_split(shared / "eval/dev_labels.jsonl")
        for r in dev_train:
            examples.append(Example(f"dev:{r['id']}", r["text"], r["topic"], _stance(r["topic"], r["stance"]),
                                    "eval/dev_labels.jsonl (training half)", "hand label"))
        exclude = {_fingerprint(r["text"]) for r in dev_holdout}
        avoid = set().union(*(shingles(r["text"]) for r in dev_holdout))
        examples += list(shared_examples(repo, shared, exclude, seed, avoid))
        inputs += [shared / "eval/dev_labels.jsonl", shared / "corpus/wikipedia_chinapedia/wiki_background_sample.jsonl.gz",
                   shared / "corpus/wikipedia_chinapedia/wiki_pages_with_plot_section.jsonl",
                   shared / "corpus/ai_character_db/ai_characters.jsonl",
                   shared / "corpus/alignment_research/ai-alignment-papers.csv",
                   *sorted((shared / "corpus/dolma_cc_sample").glob("*.jsonl")),
                   *sorted((shared / "corpus/gutenberg_ai_fiction").glob("pg*.txt")),
                   repo / "data/training/annotated" / ALIGNMENT_LABELS,
                   repo / "data/training/annotated" / SUMMARY_LABELS]
        holdout_fp = exclude
        examples = [e for e in examples if _fingerprint(e.text) not in holdout_fp]
    else:
        log.warning("shared data not found: building from committed examples only")
    # Drop exact duplicate texts (first by id wins) so no text sits in both train and valid.
    seen, unique = set(), []
    for e in sorted(examples, key=lambda e: e.id):
        fp = _fingerprint(e.text)
        if fp and fp not in seen:
            seen.add(fp)
            unique.append(e)
    # Weak Gutenberg passages may overlap the annotated passages of the same books: training only, so
    # no validation line shares text with a training line.
    in_valid = lambda e: not e.id.startswith("gut:") and _h(str(seed), "valid", e.group or e.id) < valid_share  # noqa: E731
    valid = [e for e in unique if in_valid(e)]
    train = [e for e in unique if not in_valid(e)]

    files = {}
    topic_train = _balance([e for e in train if e.topic in TOPICS], lambda e: e.topic, f"{seed}:topic")
    stance_train = _balance([e for e in train if e.stance in STANCES], lambda e: e.stance, f"{seed}:stance")
    specs = {
        "topic_train.txt": (topic_train, lambda e: e.topic),
        "topic_valid.txt": ([e for e in valid if e.topic in TOPICS], lambda e: e.topic),
        "stance_train.txt": (stance_train, lambda e: e.stance),
        "stance_valid.txt": ([e for e in valid if e.stance in STANCES], lambda e: e.stance),
    }
    for name, (rows, label_of) in specs.items():
        written = _write_fasttext(out_dir / name, rows, label_of, snippets=name.endswith("_train.txt"))
        files[name] = {"lines": sum(written.values()), "sha256": file_sha256(out_dir / name),
                       "labels": dict(sorted(written.items())),  # lines per label, snippets included
                       "examples_by_label": dict(sorted(Counter(label_of(e) for e in rows).items())),
                       "by_source": dict(sorted(Counter(e.source.split(":")[0] for e in rows).items()))}
    with open(out_dir / "examples.jsonl", "w", encoding="utf-8") as handle:
        for e in unique:
            split = "valid" if e in valid else "train"
            handle.write(json.dumps({**asdict(e), "text": None, "split": split}) + "\n")
    with open(out_dir / "dev_holdout.jsonl", "w", encoding="utf-8") as handle:
        for r in dev_holdout:
            handle.write(json.dumps({"id": r["id"], "text": r["text"], "topic": r["topic"], "stance": r["stance"]}) + "\n")
    manifest = {
        "seed": seed,
        "valid_share": valid_share,
        "inputs": [{"path": str(p.relative_to(p.parents[2]) if shared and shared in p.parents else p.relative_to(repo)),
                    "sha256": file_sha256(p)} for p in inputs if p.is_file()],
        "examples": len(unique),
        "examples_by_source": dict(sorted(Counter(e.source.split(":")[0] for e in unique).items())),
        "dev_holdout": len(dev_holdout),
        "files": files,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest

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
shared ai_character_db                both       silver: fictional AI characters -> ai_fiction; stance
                                                 only where benevolence and alignment ratings agree
shared alignment_research             both       ~400 abstracts read and labelled (labels committed in
                                                 annotated/alignment_paper_labels.jsonl, text joined
                                                 here); 200 more as topic-only -> ai_nonfiction
====================================  =========  ====================================================

Texts from shared/ are read at build time and never committed (internal-only licences). The
build writes fastText files plus ``manifest.json`` (inputs with sha256, counts per label and
source, sha256 of each final training file) under ``build/training``.

Training files (not validation files) also carry one short passage (8-60 tokens) of every longer
example with its parent's label, so the models see short inputs too (see ``_snippet``).

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
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from udfs.text import model_text, normalize_text

log = logging.getLogger(__name__)

TOPICS = ("ai_fiction", "ai_nonfiction", "other")
STANCES = ("villain", "aligned", "neutral")
AI_TOPICS = ("ai_fiction", "ai_nonfiction")
MAX_WORDS = 1200
ALIGNMENT_LABELS = "alignment_paper_labels.jsonl"  # careful-reading labels keyed by the CSV's Key  # training texts are cut to this many words (the label job scores windows)


@dataclass
class Example:
    id: str
    text: str
    topic: Optional[str]
    stance: Optional[str]  # None: not usable for the stance model
    source: str
    labelled_by: str


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
        if path.name == ALIGNMENT_LABELS:
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


def shared_examples(repo: Path, shared: Path, exclude: set[str], rng_seed: int) -> Iterator[Example]:
    corpus = shared / "corpus"
    rng = random.Random(rng_seed)
    # Background encyclopedia text -> other.
    bg = [r for r in _jsonl(corpus / "wikipedia_chinapedia/wiki_background_sample.jsonl.gz")
          if _fingerprint(r["text"]) not in exclude]
    for r in rng.sample(bg, min(1200, len(bg))):
        yield Example(f"wiki_bg:{r['source_path']}", r["text"], "other", None,
                      "wikipedia_chinapedia/wiki_background_sample.jsonl.gz", "weak: random article -> other")
    # Plot pages without any AI keyword -> fiction (mostly) without an artificial mind -> other.
    plots = [r for r in _jsonl(corpus / "wikipedia_chinapedia/wiki_pages_with_plot_section.jsonl")
             if r.get("ai_keyword_hits", 0) == 0 and _fingerprint(r["text"]) not in exclude]
    for r in rng.sample(plots, min(400, len(plots))):
        yield Example(f"wiki_plot:{r['source_path']}", r["text"], "other", None,
                      "wikipedia_chinapedia/wiki_pages_with_plot_section.jsonl", "weak: no AI keyword -> other")
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
    # Alignment research abstracts: the carefully read ones with both labels, more as topic-only weak labels.
    with open(corpus / "alignment_research/ai-alignment-papers.csv", newline="", encoding="utf-8") as handle:
        papers = [r for r in csv.DictReader(handle) if len((r.get("Abstract Note") or "").split()) >= 40]
    by_key = {r["Key"]: r for r in papers if r.get("Key")}
    annotated = {}
    labels_path = repo / "data/training/annotated" / ALIGNMENT_LABELS
    if labels_path.is_file():
        annotated = {r["key"]: r for r in _jsonl(labels_path)}
    for key in sorted(annotated):
        paper, label = by_key.get(key), annotated[key]
        if paper is None or _fingerprint(paper["Abstract Note"]) in exclude:
            continue
        yield Example(f"paper_ann:{key}", f"{paper.get('Title', '')}\n\n{paper['Abstract Note']}", label["topic"],
                      _stance(label["topic"], label["stance"]), "alignment_research/ai-alignment-papers.csv (annotated)",
                      label.get("labelled_by", "careful reading"))
    rest = [r for r in papers if r.get("Key") not in annotated]
    for r in rng.sample(rest, min(200, len(rest))):
        text = f"{r.get('Title', '')}\n\n{r['Abstract Note']}"
        yield Example(f"paper:{r.get('Key')}", text, "ai_nonfiction", None,
                      "alignment_research/ai-alignment-papers.csv", "weak: alignment paper abstract -> ai_nonfiction")


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


SNIPPET_WORDS = (8, 60)  # training files also get one short passage of every longer example


def _snippet(line: str, example_id: str, seed: str) -> Optional[str]:
    """A deterministic run of 8-60 consecutive tokens from a longer training line, or None.

    fastText averages word vectors plus an end-of-line vector; trained only on long lines, that
    vector grows unchecked and decides short inputs alone (every 5-word text came out ai_fiction
    with p=1.0). Short passages with their parent's label keep short inputs honest.
    """
    words = line.split()
    if len(words) <= 2 * SNIPPET_WORDS[0]:
        return None
    lo, hi = SNIPPET_WORDS
    n = lo + int(_h(seed, "snippet-len", example_id) * (min(hi, len(words) // 2) - lo + 1))
    start = int(_h(seed, "snippet-start", example_id) * (len(words) - n + 1))
    return " ".join(words[start:start + n])


def _write_fasttext(path: Path, examples: Iterable[Example], label_of, snippets: bool = False) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as handle:
        for e in examples:
            line = model_text(_cut(normalize_text(e.text)))
            if not line:
                continue
            handle.write(f"__label__{label_of(e)} {line}\n")
            n += 1
            short = _snippet(line, f"{e.id}:{n}", path.name) if snippets else None
            if short:
                handle.write(f"__label__{label_of(e)} {short}\n")
                n += 1
    return n


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
        examples += list(shared_examples(repo, shared, exclude, seed))
        inputs += [shared / "eval/dev_labels.jsonl", shared / "corpus/wikipedia_chinapedia/wiki_background_sample.jsonl.gz",
                   shared / "corpus/wikipedia_chinapedia/wiki_pages_with_plot_section.jsonl",
                   shared / "corpus/ai_character_db/ai_characters.jsonl",
                   shared / "corpus/alignment_research/ai-alignment-papers.csv",
                   repo / "data/training/annotated" / ALIGNMENT_LABELS]
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
    valid = [e for e in unique if _h(str(seed), "valid", e.id) < valid_share]
    train = [e for e in unique if _h(str(seed), "valid", e.id) >= valid_share]

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
        n = _write_fasttext(out_dir / name, rows, label_of, snippets=name.endswith("_train.txt"))
        written = Counter(line.split(" ", 1)[0].removeprefix("__label__")
                          for line in (out_dir / name).read_text(encoding="utf-8").splitlines())
        files[name] = {"lines": n, "sha256": file_sha256(out_dir / name),
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

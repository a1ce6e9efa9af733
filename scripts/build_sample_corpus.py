#!/usr/bin/env python3
"""Build the bundled sample corpus ``data/sample/sample.jsonl.gz`` and its ``ATTRIBUTION.md``.

Standard library only, no network, deterministic: the same corpus, seed and script give byte-identical output
(records sorted by id, compact JSON with a fixed key order, gzip header with mtime=0 and no file name).

Only the redistributable sources of the shared corpus are read (see ``shared/corpus/README.md``, "Licences"):

* ``wikipedia_chinapedia/wiki_background_sample.jsonl.gz``    CC BY-SA 3.0  -> source ``wiki_background``
* ``wikipedia_chinapedia/wiki_pages_with_plot_section.jsonl`` CC BY-SA 3.0  -> source ``wiki_plot``
* ``wikipedia_chinapedia/wiki_pages_ai_keyword.jsonl``        CC BY-SA 3.0  -> source ``wiki_ai``
* ``gutenberg_ai_fiction/pg*.txt`` + ``metadata.tsv``         public domain -> source ``gutenberg``

The internal-only folders (``ai_character_db``, ``alignment_research``, ``dolma_cc_sample``) are never opened.

Selection (``--seed``, default 13, drives every random choice):

* ``wiki_background``: a seeded random sample of ``N_BACKGROUND`` articles;
* ``wiki_plot``: every plot-section page with ``ai_keyword_hits > 0`` plus a seeded sample of
  ``N_PLOT_OTHER`` pages without keyword hits (non-AI fiction);
* ``wiki_ai``: the ``N_AI`` pages with the most ``ai_keyword_hits`` (ties broken by a seeded shuffle), which
  drops the noisiest low-hit matches (pages such as "Accounting" or "Britney Spears");
* ``gutenberg``: all books, Project Gutenberg header and footer removed, split on paragraph boundaries into
  near-equal chunks of about ``CHUNK_TARGET_WORDS`` words, each chunk its own document.

Texts are kept as in the source (no normalisation). The only changes: Gutenberg files are decoded as UTF-8
with universal newlines (CRLF -> LF, byte-order mark dropped) and cut to the book body; Wikipedia pages longer
than the per-source cap in ``MAX_CHARS`` are truncated at the last paragraph boundary before the cap (the lead
and, for fiction, the plot come first, so the beginning is the part worth keeping). The caps keep the whole
sample within a few megabytes; the ``origin`` field of a truncated record says how much was kept.

Usage (from the repository root)::

    python3 scripts/build_sample_corpus.py --corpus ../shared/corpus --out data/sample --seed 13
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import random
import re
import sys
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus"
DEFAULT_OUT = REPO_ROOT / "data" / "sample"
DEFAULT_SEED = 13

WIKI_DIR = "wikipedia_chinapedia"
GUTENBERG_DIR = "gutenberg_ai_fiction"
WIKI_BACKGROUND_FILE = f"{WIKI_DIR}/wiki_background_sample.jsonl.gz"
WIKI_PLOT_FILE = f"{WIKI_DIR}/wiki_pages_with_plot_section.jsonl"
WIKI_AI_FILE = f"{WIKI_DIR}/wiki_pages_ai_keyword.jsonl"
GUTENBERG_METADATA_FILE = f"{GUTENBERG_DIR}/metadata.tsv"

LICENSE_WIKI = "CC BY-SA 3.0"
LICENSE_PD = "public domain (US)"

N_BACKGROUND = 2000
N_PLOT_OTHER = 400
N_AI = 250

# Hard ceiling for any document, and tighter per-source caps so the sample stays within a few megabytes
# (uncapped, the selected Wikipedia pages alone would be about 33 million characters, over 10 MB gzipped).
# Fiction pages keep the full ceiling: their plot sections are what the demo is about.
HARD_MAX_CHARS = 60_000
MAX_CHARS = {
    "wiki_background": 8_000,
    "wiki_plot": HARD_MAX_CHARS,
    "wiki_ai": 15_000,
}

CHUNK_TARGET_WORDS = 2000  # chunks come out between about 1,500 and 2,500 words

ID_PREFIX = {"wiki_background": "wiki_bg", "wiki_plot": "wiki_plot", "wiki_ai": "wiki_ai", "gutenberg": "gutenberg"}

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (THIS|THE) PROJECT GUTENBERG EBOOK.*$", re.MULTILINE)
_GUTENBERG_END = re.compile(
    r"^\*\*\* ?END OF (THIS|THE) PROJECT GUTENBERG EBOOK.*$"
    r"|^[ \t]*End of (the )?Project Gutenberg'?s? .*$",
    re.MULTILINE | re.IGNORECASE,
)


# --------------------------------------------------------------------------------------------- reading


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.name.endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{line_no}: not valid JSON ({exc})") from exc
    # Stable order independent of how the file happens to be ordered.
    rows.sort(key=lambda row: row["source_path"])
    return rows


def read_gutenberg_metadata(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    rows.sort(key=lambda row: int(row["pg_id"]))
    return rows


# --------------------------------------------------------------------------------------------- text helpers


def truncate_at_paragraph(text: str, max_chars: int) -> str:
    """Return ``text`` unchanged if short enough, else its longest prefix that ends on a paragraph boundary."""
    if len(text) <= max_chars:
        return text
    head = text[: max_chars + 1]
    for separator in ("\n\n", "\n", " "):
        cut = head.rfind(separator)
        if cut >= max_chars // 2:
            kept = head[:cut].rstrip()
            if separator == "\n\n":
                kept = _drop_dangling_heading(kept)
            return kept
    return text[:max_chars]


def _drop_dangling_heading(text: str) -> str:
    """Drop a section heading left as the last paragraph by a cut (e.g. "Reception" with its section gone)."""
    cut = text.rfind("\n\n")
    if cut <= 0:
        return text
    last = text[cut:].strip()
    if len(last) <= 80 and "\n" not in last and not last.endswith((".", "!", "?", ":", '"', "\u201d", ")", "]")):
        return text[:cut].rstrip()
    return text


def strip_gutenberg(raw: str, name: str) -> str:
    """Cut a Project Gutenberg file to its body, between the START and END markers.

    A few files in the corpus arrive with the header already removed and only a short
    "End of Project Gutenberg's ..." footer line; those are handled by the same patterns.
    """
    start_match = _GUTENBERG_START.search(raw)
    start = start_match.end() if start_match else 0
    end_match = _GUTENBERG_END.search(raw, start)
    if end_match is None:
        raise SystemExit(f"{name}: no Project Gutenberg end marker found")
    body = raw[start : end_match.start()].strip("\n")
    if not body.strip():
        raise SystemExit(f"{name}: empty body after stripping the Project Gutenberg header and footer")
    return body


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the non-blank paragraphs of ``text``."""
    spans = []
    position = 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        if text[position : match.start()].strip():
            spans.append((position, match.start()))
        position = match.end()
    if text[position:].strip():
        spans.append((position, len(text)))
    return spans


def chunk_paragraphs(text: str, target_words: int = CHUNK_TARGET_WORDS) -> list[str]:
    """Split ``text`` on paragraph boundaries into near-equal chunks of about ``target_words`` words.

    The number of chunks is round(words / target), so the mean chunk is within [0.75, 1.25) x target
    whenever there is more than one; each cut goes to the paragraph boundary nearest its ideal place.
    Chunks are verbatim slices of ``text`` (inner blank lines preserved).
    """
    spans = paragraph_spans(text)
    counts = [len(text[a:b].split()) for a, b in spans]
    total = sum(counts)
    n_chunks = max(1, int(total / target_words + 0.5))
    cumulative = []
    running = 0
    for count in counts:
        running += count
        cumulative.append(running)
    cuts = []  # index of the last paragraph of each chunk but the final one
    previous = -1
    for k in range(1, n_chunks):
        ideal = k * total / n_chunks
        candidates = range(previous + 1, len(spans) - (n_chunks - k))
        best = min(candidates, key=lambda i: (abs(cumulative[i] - ideal), i))
        cuts.append(best)
        previous = best
    chunks = []
    first = 0
    for last in cuts + [len(spans) - 1]:
        chunks.append(text[spans[first][0] : spans[last][1]])
        first = last + 1
    return chunks


# --------------------------------------------------------------------------------------------- records


def make_record(doc_id: str, text: str, source: str, title: str, license_: str, origin: str) -> dict:
    # Fixed key order: id, text, source, title, license, origin.
    return {"id": doc_id, "text": text, "source": source, "title": title, "license": license_, "origin": origin}


def wiki_records(rows: list[dict], source: str, source_file: str, stats: Counter) -> list[dict]:
    records = []
    cap = min(MAX_CHARS[source], HARD_MAX_CHARS)
    for row in rows:
        original = row["text"]
        if not isinstance(original, str) or not original.strip():
            stats[f"{source}:skipped_empty"] += 1
            continue
        text = truncate_at_paragraph(original, cap)
        origin = f"{source_file}:{row['source_path']}"
        if len(text) < len(original):
            stats[f"{source}:truncated"] += 1
            origin += f" (first {len(text)} of {len(original)} characters)"
        records.append(
            make_record(f"{ID_PREFIX[source]}:{row['source_path']}", text, source, row["title"], LICENSE_WIKI, origin)
        )
    return records


def select_wikipedia(corpus: Path, seed: int) -> tuple[dict[str, list[dict]], dict]:
    background = read_jsonl(corpus / WIKI_BACKGROUND_FILE)
    plot = read_jsonl(corpus / WIKI_PLOT_FILE)
    ai = read_jsonl(corpus / WIKI_AI_FILE)

    # One generator per source, each derived from the seed, so changing one quota leaves the others alone.
    rng_background = random.Random(f"{seed}:wiki_background")
    rng_plot = random.Random(f"{seed}:wiki_plot")
    rng_ai = random.Random(f"{seed}:wiki_ai")

    background_pick = rng_background.sample(background, min(N_BACKGROUND, len(background)))

    plot_ai = [row for row in plot if row.get("ai_keyword_hits", 0) > 0]
    plot_other = [row for row in plot if row.get("ai_keyword_hits", 0) <= 0]
    plot_pick = plot_ai + rng_plot.sample(plot_other, min(N_PLOT_OTHER, len(plot_other)))

    tiebreak = {row["source_path"]: rng_ai.random() for row in ai}
    ai_ranked = sorted(ai, key=lambda row: (-row.get("ai_keyword_hits", 0), tiebreak[row["source_path"]]))
    ai_pick = ai_ranked[:N_AI]

    # The three files are disjoint today; keep it that way in the sample even if they stop being so.
    seen: set[str] = set()
    picks = {}
    for source, rows in (("wiki_ai", ai_pick), ("wiki_plot", plot_pick), ("wiki_background", background_pick)):
        kept = []
        for row in rows:
            if row["source_path"] not in seen:
                seen.add(row["source_path"])
                kept.append(row)
        picks[source] = kept

    info = {
        "background_pool": len(background),
        "plot_pool": len(plot),
        "plot_ai_hits": len(plot_ai),
        "ai_pool": len(ai),
        "ai_min_hits": min((row.get("ai_keyword_hits", 0) for row in ai_pick), default=0),
    }
    return picks, info


def gutenberg_records(corpus: Path, metadata: list[dict], stats: Counter) -> tuple[list[dict], list[dict]]:
    records = []
    books = []
    for meta in metadata:
        file_name = meta["file"]
        path = corpus / GUTENBERG_DIR / file_name
        with path.open(encoding="utf-8-sig") as handle:  # universal newlines; drops a UTF-8 byte-order mark
            raw = handle.read()
        body = strip_gutenberg(raw, file_name)
        chunks = chunk_paragraphs(body)
        words = []
        for index, chunk in enumerate(chunks):
            text = chunk
            if len(text) > HARD_MAX_CHARS:  # cannot happen with ~2,000-word chunks, but keep the promise
                text = truncate_at_paragraph(text, HARD_MAX_CHARS)
                stats["gutenberg:truncated"] += 1
            words.append(len(text.split()))
            records.append(
                make_record(
                    f"gutenberg:pg{meta['pg_id']}:chunk-{index:04d}",
                    text,
                    "gutenberg",
                    meta["title"],
                    LICENSE_PD,
                    f"{GUTENBERG_DIR}/{file_name} (Project Gutenberg eBook #{meta['pg_id']}), "
                    f"chunk {index + 1} of {len(chunks)}",
                )
            )
        books.append(
            {**meta, "chunks": len(chunks), "words": sum(words), "min_words": min(words), "max_words": max(words)}
        )
    return records, books


# --------------------------------------------------------------------------------------------- writing


def encode_jsonl_gz(records: list[dict]) -> bytes:
    lines = [json.dumps(record, ensure_ascii=False, separators=(",", ":")) for record in records]
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    return buffer.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def attribution_markdown(
    counts: Counter,
    stats: Counter,
    info: dict,
    books: list[dict],
    input_hashes: dict[str, str],
    output_sha256: str,
    output_size: int,
    seed: int,
) -> str:
    total = sum(counts.values())
    wiki_total = counts["wiki_background"] + counts["wiki_plot"] + counts["wiki_ai"]
    lines = [
        "# Sample corpus: contents, sources and licences",
        "",
        "`sample.jsonl.gz` is a small, real-text corpus bundled with Counterweight so that the pipeline, its tests "
        "and the demo notebooks run on a fresh clone. It is gzip-compressed JSON Lines, one document per line:",
        "",
        "```json",
        '{"id": "...", "text": "...", "source": "wiki_background | wiki_plot | wiki_ai | gutenberg", '
        '"title": "...", "license": "CC BY-SA 3.0 | public domain (US)", "origin": "..."}',
        "```",
        "",
        "It is generated, not edited by hand: rebuild it with the command at the end of this file.",
        "",
        "## Contents",
        "",
        "| source | documents | what | licence |",
        "|---|---:|---|---|",
        f"| `wiki_background` | {counts['wiki_background']:,} | random English Wikipedia articles "
        f"(seeded sample of {N_BACKGROUND:,} from {info['background_pool']:,}): background \"web\" text "
        f"| {LICENSE_WIKI} |",
        f"| `wiki_plot` | {counts['wiki_plot']:,} | English Wikipedia articles on films, novels, games and TV with a "
        f"Plot section: all {info['plot_ai_hits']} whose text matches AI keywords plus a seeded sample of "
        f"{N_PLOT_OTHER} others (non-AI fiction), from {info['plot_pool']:,} | {LICENSE_WIKI} |",
        f"| `wiki_ai` | {counts['wiki_ai']:,} | English Wikipedia articles about AI, robots and computing "
        f"(non-fiction): the {N_AI} of {info['ai_pool']} with the most AI-keyword hits (at least "
        f"{info['ai_min_hits']}; ties broken by the seed) | {LICENSE_WIKI} |",
        f"| `gutenberg` | {counts['gutenberg']:,} | {len(books)} public-domain novels, plays and stories with robots "
        f"or artificial minds, each split into chunks of about {CHUNK_TARGET_WORDS:,} words | {LICENSE_PD} |",
        f"| **total** | **{total:,}** | | |",
        "",
        f"`sample.jsonl.gz`: {output_size:,} bytes, sha256 `{output_sha256}`, built with seed {seed}.",
        "",
        "Ids are stable: `wiki_bg:<source_path>`, `wiki_plot:<source_path>`, `wiki_ai:<source_path>` (the article's "
        "path in the Markdown export, e.g. `Page/Alan_Turing.md`) and `gutenberg:pg<id>:chunk-<nnnn>` (chunks "
        "numbered from 0000 in reading order). Records are sorted by id.",
        "",
        "## Wikipedia text (CC BY-SA 3.0)",
        "",
        f"The {wiki_total:,} `wiki_*` documents are derived from English Wikipedia articles, written by Wikipedia "
        "contributors and licensed under the Creative Commons Attribution-ShareAlike 3.0 Unported licence "
        "(https://creativecommons.org/licenses/by-sa/3.0/). The article titles are inside the file (the `title` "
        "field of every record; `origin` gives the source file and the article's path). Each article is at "
        "`https://en.wikipedia.org/wiki/<title, spaces as underscores>`, and its authors are listed in that "
        "article's history.",
        "",
        "The text comes from a Pandoc conversion of the English Wikipedia dump to Markdown published on GitHub by the "
        "chinapedia project (github.com/chinapedia, e.g. `wikipedia.en` / `wikipedia.abstract.en`), as collected "
        "in the "
        f"project's shared corpus folder `{WIKI_DIR}/`. Changes made here: a sample of articles was selected, and "
        "articles longer than a per-source cap were shortened to their beginning, cut at a paragraph boundary "
        f"(background articles at {MAX_CHARS['wiki_background']:,} characters: {stats['wiki_background:truncated']} "
        f"shortened; plot articles at {MAX_CHARS['wiki_plot']:,}: {stats['wiki_plot:truncated']}; AI articles at "
        f"{MAX_CHARS['wiki_ai']:,}: {stats['wiki_ai:truncated']}). A shortened record's `origin` ends with "
        "\"(first N of M characters)\". The text is otherwise as in the source, unnormalised.",
        "",
        "ShareAlike: the Wikipedia-derived documents, and any adaptation of them you distribute, stay under "
        "CC BY-SA 3.0 (or a compatible licence), whatever the licence of the code in this repository.",
        "",
        "## Project Gutenberg texts (public domain in the United States)",
        "",
        "The `gutenberg` documents come from these Project Gutenberg eBooks (https://www.gutenberg.org/), as "
        f"collected in the shared corpus folder `{GUTENBERG_DIR}/` (details in its `metadata.tsv`). They are in the "
        "public domain in the United States; check the law of your country before using them elsewhere. The "
        "Project Gutenberg header and footer (licence boilerplate) were removed, line endings normalised to LF, and "
        "the body split on paragraph boundaries into chunks; the words are otherwise unchanged. \"Project "
        "Gutenberg\" is a trademark of the Project Gutenberg Literary Archive Foundation; these chunks are not "
        "Project Gutenberg eBooks.",
        "",
        "| eBook | title | author | first published | chunks | words |",
        "|---|---|---|---|---:|---:|",
    ]
    for book in books:
        lines.append(
            f"| [#{book['pg_id']}](https://www.gutenberg.org/ebooks/{book['pg_id']}) | {md_escape(book['title'])} | "
            f"{md_escape(book['author'])} | {md_escape(book['year_first_pub'])} | {book['chunks']} "
            f"| {book['words']:,} |"
        )
    lines += [
        "",
        "## Inputs",
        "",
        "Read from the shared corpus (`shared/corpus`, beside the repository checkout). Only these redistributable "
        "files are read; the internal-only sources (`ai_character_db/`, `alignment_research/`, `dolma_cc_sample/`) "
        "are not, and nothing from them is in this folder.",
        "",
        "| file | sha256 |",
        "|---|---|",
    ]
    for name, digest in sorted(input_hashes.items()):
        lines.append(f"| `{name}` | `{digest}` |")
    lines += [
        "",
        "## Rebuild",
        "",
        "From the repository root (standard library only, no network; the output is byte-identical for the same "
        "inputs and seed):",
        "",
        "```bash",
        f"python3 scripts/build_sample_corpus.py --corpus ../shared/corpus --out data/sample --seed {seed}",
        "sha256sum data/sample/sample.jsonl.gz",
        "```",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- main


def build(corpus: Path, out: Path, seed: int) -> dict:
    for relative in (WIKI_BACKGROUND_FILE, WIKI_PLOT_FILE, WIKI_AI_FILE, GUTENBERG_METADATA_FILE):
        if not (corpus / relative).is_file():
            raise SystemExit(f"missing input: {corpus / relative} (is --corpus pointing at shared/corpus?)")

    stats: Counter = Counter()
    picks, info = select_wikipedia(corpus, seed)
    records = []
    records += wiki_records(picks["wiki_background"], "wiki_background", WIKI_BACKGROUND_FILE, stats)
    records += wiki_records(picks["wiki_plot"], "wiki_plot", WIKI_PLOT_FILE, stats)
    records += wiki_records(picks["wiki_ai"], "wiki_ai", WIKI_AI_FILE, stats)

    metadata = read_gutenberg_metadata(corpus / GUTENBERG_METADATA_FILE)
    gutenberg, books = gutenberg_records(corpus, metadata, stats)
    records += gutenberg

    records.sort(key=lambda record: record["id"])
    ids = [record["id"] for record in records]
    if len(set(ids)) != len(ids):
        duplicates = sorted(doc_id for doc_id, n in Counter(ids).items() if n > 1)
        raise SystemExit(f"duplicate ids: {duplicates[:5]}")

    data = encode_jsonl_gz(records)
    output_sha256 = hashlib.sha256(data).hexdigest()
    counts = Counter(record["source"] for record in records)

    input_files = [WIKI_BACKGROUND_FILE, WIKI_PLOT_FILE, WIKI_AI_FILE, GUTENBERG_METADATA_FILE]
    input_files += [f"{GUTENBERG_DIR}/{meta['file']}" for meta in metadata]
    input_hashes = {name: sha256_file(corpus / name) for name in input_files}

    attribution = attribution_markdown(counts, stats, info, books, input_hashes, output_sha256, len(data), seed)
    write_atomic(out / "sample.jsonl.gz", data)
    write_atomic(out / "ATTRIBUTION.md", attribution.encode("utf-8"))
    return {
        "counts": dict(sorted(counts.items())),
        "total": len(records),
        "bytes": len(data),
        "sha256": output_sha256,
        "truncated": {key: value for key, value in sorted(stats.items())},
        "books": [(book["file"], book["chunks"], book["min_words"], book["max_words"]) for book in books],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help=f"shared corpus folder (default: {DEFAULT_CORPUS})"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"sampling seed (default: {DEFAULT_SEED})")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"error: corpus folder not found: {args.corpus}", file=sys.stderr)
        return 2
    summary = build(args.corpus, args.out, args.seed)
    for source, count in summary["counts"].items():
        print(f"{source:16s} {count:6,d}")
    print(f"{'total':16s} {summary['total']:6,d}")
    print(f"wrote {args.out / 'sample.jsonl.gz'}: {summary['bytes']:,} bytes, sha256 {summary['sha256']}")
    print(f"truncated: {summary['truncated']}")
    for file_name, chunks, low, high in summary["books"]:
        print(f"  {file_name}: {chunks} chunks, {low}-{high} words")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Check labelled example files (training or proxy-evaluation JSONL) against the label rules.

    python scripts/check_examples.py data/training/synthetic/*.jsonl data/eval/proxy/*.jsonl

Every line must be a JSON object with a unique ``id`` (unique across all files given), a non-empty
``text``, a ``topic`` in {ai_fiction, ai_nonfiction, other} and a ``stance`` that is ``none`` exactly
when the topic is ``other`` (else villain / aligned / neutral), and a ``provenance``. Prints one line
per problem naming the file, line and field, and exits 1 if there is any.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

TOPICS = {"ai_fiction", "ai_nonfiction", "other"}
STANCES = {"villain", "aligned", "neutral"}
REQUIRED = ("id", "topic", "stance", "text", "provenance")


def check(paths: list[str]) -> list[str]:
    problems, seen = [], {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for n, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                where = f"{path}:{n}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    problems.append(f"{where}: not valid JSON ({exc})")
                    continue
                if not isinstance(row, dict):
                    problems.append(f"{where}: not a JSON object")
                    continue
                missing = [k for k in REQUIRED if k not in row]
                if missing:
                    problems.append(f"{where}: missing field(s) {missing}")
                    continue
                if row["id"] in seen:
                    problems.append(f"{where}: id {row['id']!r} repeats {seen[row['id']]}")
                seen[row["id"]] = where
                if not isinstance(row["text"], str) or len(row["text"].split()) < 3:
                    problems.append(f"{where}: text must be a string of at least 3 words")
                topic, stance = row["topic"], row["stance"]
                if topic not in TOPICS:
                    problems.append(f"{where}: topic {topic!r} is not one of {sorted(TOPICS)}")
                elif topic == "other" and stance != "none":
                    problems.append(f"{where}: topic 'other' needs stance 'none', got {stance!r}")
                elif topic != "other" and stance not in STANCES:
                    problems.append(f"{where}: topic {topic!r} needs a stance in {sorted(STANCES)}, got {stance!r}")
    return problems


def summary(paths: list[str]) -> str:
    counts: Counter = Counter()
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    counts[(row.get("kind", "?"), row.get("topic"), row.get("stance"))] += 1
    return "\n".join(f"{n:5d}  {k}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    problems = check(argv)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s)")
        return 1
    print(summary(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

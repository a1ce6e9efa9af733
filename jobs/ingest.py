"""Ingest raw text (JSONL, JSONL.gz, Parquet or a folder of .txt) into ``documents`` and ``quarantine``.

    .venv/bin/spark-submit jobs/ingest.py input.path=data/raw/*.jsonl.gz lake.root=./lake
    .venv/bin/python -m jobs.ingest input.path=... lake.root=...

Prints the reconciliation ``read = documents + quarantined + duplicates_removed``.
"""

import sys

from counterweight.cli import main

if __name__ == "__main__":
    sys.exit(main("ingest", sys.argv[1:]))

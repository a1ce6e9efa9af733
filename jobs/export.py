"""Materialise a mix into shuffled training shards (JSONL.gz or Parquet) with a manifest.

    .venv/bin/spark-submit jobs/export.py mix.name=default export.path=exports/default
    .venv/bin/python -m jobs.export mix.name=bal3 export.format=parquet export.shard_records=100000
"""

import sys

from counterweight.cli import main

if __name__ == "__main__":
    sys.exit(main("export", sys.argv[1:]))

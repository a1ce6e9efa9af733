"""Run ingest -> label -> mix -> report in one SparkSession (what `make demo` runs).

    .venv/bin/spark-submit jobs/pipeline.py lake.root=./lake
    .venv/bin/python -m jobs.pipeline input=jsonl input.path=data/raw/part-*.jsonl.gz lake.root=/data/lake
"""

import sys

from counterweight.cli import main

if __name__ == "__main__":
    sys.exit(main("pipeline", sys.argv[1:]))

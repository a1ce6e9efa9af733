"""Train the fastText topic and stance models; write models/<name>.ftz and model cards.

    .venv/bin/spark-submit jobs/train.py                 # or: .venv/bin/python -m jobs.train
    .venv/bin/python -m jobs.train train.out_dir=/tmp/models train.quantize=false

Reads the committed training data (data/training/) and, when present, ../shared (corpus and
dev labels). Does not start Spark.
"""

import sys

from counterweight.cli import main

if __name__ == "__main__":
    sys.exit(main("train", sys.argv[1:]))

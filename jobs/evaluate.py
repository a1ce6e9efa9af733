"""Evaluate the configured models on a labelled JSONL (id, text, topic, stance).

    .venv/bin/spark-submit jobs/evaluate.py evaluate.path=../shared/eval/dev_labels.jsonl evaluate.out=reports/eval/dev.json
    make eval
"""

import sys

from counterweight.cli import main

if __name__ == "__main__":
    sys.exit(main("evaluate", sys.argv[1:]))

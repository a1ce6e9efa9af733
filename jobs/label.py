"""Label documents with the fastText topic and stance models: ``documents`` -> ``labels``.

    .venv/bin/spark-submit jobs/label.py lake.root=./lake
    .venv/bin/spark-submit --master spark://host:7077 --py-files dist/counterweight.zip \
        --files models/topic.ftz,models/stance.ftz jobs/label.py lake.root=/shared/lake
    .venv/bin/python -m jobs.label lake.root=./lake label.relabel_all=true

Incremental: only documents without labels from the current model versions are scored.
"""

import sys

from counterweight.cli import main

if __name__ == "__main__":
    sys.exit(main("label", sys.argv[1:]))

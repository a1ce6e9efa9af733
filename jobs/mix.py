"""Turn labels into a reweighted pretraining mix: ``documents`` + ``labels`` -> ``mix`` + ``mix_report``.

    .venv/bin/spark-submit jobs/mix.py policy=balance policy.balance.aligned_to_villain=3 mix.name=bal3
    .venv/bin/spark-submit jobs/mix.py policy=conditional mix.name=tagged
    .venv/bin/python -m jobs.mix policy=downweight mix.name=filtered lake.root=./lake
"""

import sys

from counterweight.cli import main

if __name__ == "__main__":
    sys.exit(main("mix", sys.argv[1:]))

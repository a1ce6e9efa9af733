"""Write a static report of a mix: summary.json, PNG charts and index.html.

    .venv/bin/spark-submit jobs/report.py lake.root=./lake mix.name=default
    .venv/bin/python -m jobs.report mix.name=bal3 report.path=/www/mixes/bal3
"""

import sys

from counterweight.cli import main

if __name__ == "__main__":
    sys.exit(main("report", sys.argv[1:]))

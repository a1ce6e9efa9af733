"""Maintain the lake: compact small files, then vacuum unreferenced ones (staged files of killed runs,
files only old versions reference) older than ``maintain.retention_hours``.

    .venv/bin/spark-submit jobs/maintain.py lake.root=./lake
    .venv/bin/spark-submit jobs/maintain.py lake.root=./lake maintain.tables=[mix] maintain.dry_run=true
    .venv/bin/python -m jobs.maintain lake.root=./lake maintain.retention_hours=0 maintain.force_retention=true

Prints one summary line per table. Run it when no job is writing (a job that commits after a
compaction it did not plan on exits 4 and can simply be re-run).
"""

import sys

from counterweight.cli import main

if __name__ == "__main__":
    sys.exit(main("maintain", sys.argv[1:]))

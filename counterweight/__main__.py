"""``python -m counterweight <job> [overrides]``: the same as ``spark-submit jobs/<job>.py``."""

import sys

from counterweight.cli import main

sys.exit(main(None, sys.argv[1:]))

"""Point pip-installed Spark at this virtualenv's Python (run by ``make setup``).

``spark-submit`` starts the driver and Python workers with ``$PYSPARK_PYTHON`` (default: whatever
``python3`` is first on PATH, usually not the virtualenv). Spark sources ``conf/spark-env.sh``
from its home directory, so writing the virtualenv's interpreter there makes
``.venv/bin/spark-submit jobs/<job>.py`` work without activating anything. pip's launcher also
runs ``python3`` from PATH just to find Spark's home, so that default is pointed here too. An
explicit ``PYSPARK_PYTHON`` in the environment still wins.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _patch_find_spark_home(script: Path) -> None:
    """pip's ``find-spark-home`` runs ``python3`` from PATH to locate Spark; use this virtualenv's."""
    if not script.is_file():
        return
    text = script.read_text()
    default = 'PYSPARK_DRIVER_PYTHON="${PYSPARK_PYTHON:-"python3"}"'
    if default in text:
        script.write_text(text.replace(default, f'PYSPARK_DRIVER_PYTHON="${{PYSPARK_PYTHON:-"{sys.executable}"}}"'))


def main() -> int:
    import pyspark

    conf_dir = Path(pyspark.__file__).parent / "conf"
    conf_dir.mkdir(exist_ok=True)
    env_file = conf_dir / "spark-env.sh"
    python = sys.executable
    env_file.write_text(
        "# written by counterweight.setup_env: Spark uses this virtualenv's Python\n"
        f'export PYSPARK_PYTHON="${{PYSPARK_PYTHON:-{python}}}"\n'
        f'export PYSPARK_DRIVER_PYTHON="${{PYSPARK_DRIVER_PYTHON:-{python}}}"\n'
    )
    os.chmod(env_file, 0o755)
    _patch_find_spark_home(Path(sys.executable).parent / "find-spark-home")
    print(f"[counterweight] Spark will use {python} (set in {env_file})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

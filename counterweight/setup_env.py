"""Point pip-installed Spark at this virtualenv's Python (run by ``make setup``).

``spark-submit`` starts the driver and Python workers with ``$PYSPARK_PYTHON`` (default: whatever
``python3`` is first on PATH, usually not the virtualenv). Spark sources ``conf/spark-env.sh``
from its home directory, so writing the virtualenv's interpreter there makes
``.venv/bin/spark-submit jobs/<job>.py`` work without activating anything. pip's launcher also
runs ``python3`` from PATH just to find Spark's home, so that default is pointed here too. An
explicit ``PYSPARK_PYTHON`` in the environment still wins.

It also writes ``conf/spark-defaults.conf`` with ``spark.driver.defaultJavaOptions`` set to
:data:`DRIVER_JAVA_OPTIONS`: the driver JVM (in local mode also the executor) compiles with the C1
JIT only. On a 2-core machine HotSpot's C2 compiler threads compete with the two task threads for
most of a job; C1-only ran interleaved ``spark-submit`` label jobs 8 % (400k documents) to 27 %
(100k) faster and the 100k pipeline 5 % faster (docs/benchmarks.md, item 7 and run 5). Spark
prepends ``defaultJavaOptions`` to ``spark.driver.extraJavaOptions``, so ``--driver-java-options``
still adds to it; ``--conf spark.driver.defaultJavaOptions=`` removes it.
A spark-defaults.conf not written by this module is left alone.
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


MARKER = "# written by counterweight.setup_env"
DRIVER_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"


def write_spark_defaults(conf_dir: Path) -> bool:
    """Write ``spark-defaults.conf`` in ``conf_dir`` unless someone else's file is already there."""
    path = conf_dir / "spark-defaults.conf"
    if path.exists() and not path.read_text().startswith(MARKER):
        print(f"[counterweight] left {path} alone (not written by counterweight); "
              f"add 'spark.driver.defaultJavaOptions {DRIVER_JAVA_OPTIONS}' to it for the C1-only driver JIT")
        return False
    path.write_text(
        f"{MARKER}: the driver JVM uses the C1 JIT only (faster on few cores; see counterweight/setup_env.py)\n"
        f"spark.driver.defaultJavaOptions {DRIVER_JAVA_OPTIONS}\n"
    )
    return True


def main() -> int:
    import pyspark

    conf_dir = Path(pyspark.__file__).parent / "conf"
    conf_dir.mkdir(exist_ok=True)
    env_file = conf_dir / "spark-env.sh"
    python = sys.executable
    env_file.write_text(
        f"{MARKER}: Spark uses this virtualenv's Python\n"
        f'export PYSPARK_PYTHON="${{PYSPARK_PYTHON:-{python}}}"\n'
        f'export PYSPARK_DRIVER_PYTHON="${{PYSPARK_DRIVER_PYTHON:-{python}}}"\n'
    )
    os.chmod(env_file, 0o755)
    _patch_find_spark_home(Path(sys.executable).parent / "find-spark-home")
    write_spark_defaults(conf_dir)
    print(f"[counterweight] Spark will use {python} (set in {env_file})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

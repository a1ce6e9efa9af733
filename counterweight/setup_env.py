"""Point pip-installed Spark at this virtualenv's Python and tune its driver JVM (run by ``make setup``).

``spark-submit`` starts the driver and Python workers with ``$PYSPARK_PYTHON`` (default: whatever
``python3`` is first on PATH, usually not the virtualenv). Spark sources ``conf/spark-env.sh``
from its home directory, so writing the virtualenv's interpreter there makes
``.venv/bin/spark-submit jobs/<job>.py`` work without activating anything. pip's launcher also
runs ``python3`` from PATH just to find Spark's home, so that default is pointed here too. An
explicit ``PYSPARK_PYTHON`` in the environment still wins.

The same ``spark-env.sh`` gives the driver JVM (in local mode also the executor) two options
through ``SPARK_SUBMIT_OPTS``, which Spark's launcher adds to the ``spark-submit`` JVM only:

* ``-XX:TieredStopAtLevel=1``: the C1 JIT only. On a 2-core machine HotSpot's C2 compiler threads
  compete with the two task threads for most of a job; C1-only ran interleaved ``spark-submit``
  label jobs 8 % (400k documents) to 27 % (100k) faster (docs/benchmarks.md, item 7).
* ``-XX:SharedArchiveFile=<venv>/counterweight-spark/driver.jsa``: application class-data sharing.
  Spark loads some 15,000 classes before a job's first result; :func:`build_class_archive` runs a
  small pipeline once with ``-XX:ArchiveClassesAtExit`` and every later JVM maps those classes,
  parsed and verified, from the archive: about 3 s less per ``spark-submit`` (item 8).
  The JVM accepts an archive only when the directories on its class path are empty, and Spark puts
  its configuration directory there, so ``spark-env.sh`` points ``SPARK_CONF_DIR`` at an empty
  directory, and only while Spark's own ``conf/`` holds nothing but this ``spark-env.sh`` (with a
  ``spark-defaults.conf`` of yours there, that file is read as usual and the archive is not used).
  A stale or missing archive is skipped silently (``-Xshare:auto``, CDS logging off): it can make
  a job slower, never wrong.

Options in the environment's own ``SPARK_SUBMIT_OPTS`` come after these, so they win.
A ``spark-defaults.conf`` written by an earlier version of this module is removed; one written by
anybody else is left alone.
"""

from __future__ import annotations

import gzip
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MARKER = "# written by counterweight.setup_env"
JIT_OPTIONS = "-XX:TieredStopAtLevel=1"
CDS_QUIET = "-Xlog:cds=off,cds+dynamic=off"
ROOT = Path(__file__).resolve().parent.parent
ARCHIVE_DOCS = 400  # sample documents the archiving run processes: enough to take every code path


def jvm_dir(prefix: Path | None = None) -> Path:
    """Where the class archive and the empty class-path configuration directory live."""
    return Path(prefix or sys.prefix) / "counterweight-spark"


def archive_path(prefix: Path | None = None) -> Path:
    return jvm_dir(prefix) / "driver.jsa"


def empty_conf_dir(prefix: Path | None = None) -> Path:
    return jvm_dir(prefix) / "conf"


def _patch_find_spark_home(script: Path) -> None:
    """pip's ``find-spark-home`` runs ``python3`` from PATH to locate Spark; use this virtualenv's."""
    if not script.is_file():
        return
    text = script.read_text()
    default = 'PYSPARK_DRIVER_PYTHON="${PYSPARK_PYTHON:-"python3"}"'
    if default in text:
        script.write_text(text.replace(default, f'PYSPARK_DRIVER_PYTHON="${{PYSPARK_PYTHON:-"{sys.executable}"}}"'))


def spark_env_text(python: str, prefix: Path | None = None) -> str:
    """The ``spark-env.sh`` Spark sources (with ``set -a``) before it builds any JVM command."""
    q = shlex.quote
    archive, conf = archive_path(prefix), empty_conf_dir(prefix)
    return (
        f"{MARKER}: Spark uses this virtualenv's Python; driver JVM options (see counterweight/setup_env.py)\n"
        f'export PYSPARK_PYTHON="${{PYSPARK_PYTHON:-{python}}}"\n'
        f'export PYSPARK_DRIVER_PYTHON="${{PYSPARK_DRIVER_PYTHON:-{python}}}"\n'
        f"_cw_opts={q(JIT_OPTIONS)}\n"
        "# A class-data archive needs empty directories on the JVM class path, and Spark puts its\n"
        "# configuration directory there: use an empty one while this file is all that conf/ holds.\n"
        f'if [ "$(ls -A "$SPARK_CONF_DIR" 2>/dev/null)" = "spark-env.sh" ] && [ -d {q(str(conf))} ]; then\n'
        f"  SPARK_CONF_DIR={q(str(conf))}\n"
        f"  if [ -f {q(str(archive))} ]; then\n"
        f'    _cw_opts="$_cw_opts -XX:SharedArchiveFile={archive} {CDS_QUIET}"\n'
        "  fi\n"
        "fi\n"
        'SPARK_SUBMIT_OPTS="$_cw_opts${SPARK_SUBMIT_OPTS:+ $SPARK_SUBMIT_OPTS}"\n'
        "unset _cw_opts\n"
    )


def write_spark_env(conf_dir: Path, python: str, prefix: Path | None = None) -> Path:
    """Write ``spark-env.sh`` and the empty class-path directory; drop our old ``spark-defaults.conf``."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    empty = empty_conf_dir(prefix)
    empty.mkdir(parents=True, exist_ok=True)
    for leftover in empty.iterdir():  # must stay empty, or the JVM refuses the archive
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    env_file = conf_dir / "spark-env.sh"
    env_file.write_text(spark_env_text(python, prefix))
    os.chmod(env_file, 0o755)
    defaults = conf_dir / "spark-defaults.conf"
    if defaults.exists():
        if defaults.read_text().startswith(MARKER):
            defaults.unlink()  # its one setting now lives in spark-env.sh
        else:
            print(f"[counterweight] left {defaults} alone (not written by counterweight); while it is there "
                  f"Spark reads it and the driver JVM runs without the class-data archive")
    return env_file


def build_class_archive(prefix: Path | None = None, timeout_s: float = 900) -> bool:
    """Run a small pipeline under ``-XX:ArchiveClassesAtExit`` to write the driver's class archive.

    The run (ingest -> label -> mix -> report of the first :data:`ARCHIVE_DOCS` sample documents,
    in a temporary directory) loads the classes every job needs. On any failure the old archive
    is gone and jobs simply start without one; the reason is printed.
    """
    archive = archive_path(prefix)
    archive.unlink(missing_ok=True)  # an old dynamic archive may not be mapped while writing a new one
    spark_submit = Path(prefix or sys.prefix) / "bin" / "spark-submit"
    with tempfile.TemporaryDirectory(prefix="counterweight-cds-") as tmp:
        sample = Path(tmp) / "sample.jsonl"
        with gzip.open(ROOT / "data" / "sample" / "sample.jsonl.gz", "rt", encoding="utf-8") as src, \
                sample.open("w", encoding="utf-8") as dst:
            for _, line in zip(range(ARCHIVE_DOCS), src):
                dst.write(line)
        partial = Path(tmp) / "driver.jsa"
        env = {**os.environ, "SPARK_SUBMIT_OPTS": f"-XX:ArchiveClassesAtExit={partial}"}
        env.pop("SPARK_ENV_LOADED", None)  # spark-env.sh must be sourced, as for any job
        env.pop("SPARK_CONF_DIR", None)
        cmd = [str(spark_submit), "--master", "local[2]", str(ROOT / "jobs" / "pipeline.py"),
               f"input.path={sample}", f"lake.root={Path(tmp) / 'lake'}"]
        started = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            print(f"[counterweight] class-data archive not written: the archiving run took over {timeout_s:.0f} s")
            return False
        if proc.returncode != 0 or not partial.is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            print(f"[counterweight] class-data archive not written (rc {proc.returncode}); jobs run without "
                  f"it. Last lines of the archiving run:\n{tail}")
            return False
        archive.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(partial), str(archive))
    print(f"[counterweight] wrote the driver class-data archive {archive} "
          f"({archive.stat().st_size / 2**20:.0f} MB) in {time.perf_counter() - started:.0f} s")
    return True


def main() -> int:
    import pyspark

    conf_dir = Path(pyspark.__file__).parent / "conf"
    env_file = write_spark_env(conf_dir, sys.executable)
    _patch_find_spark_home(Path(sys.executable).parent / "find-spark-home")
    print(f"[counterweight] Spark will use {sys.executable} (set in {env_file})")
    if os.environ.get("COUNTERWEIGHT_NO_CDS"):
        archive_path().unlink(missing_ok=True)
        print("[counterweight] COUNTERWEIGHT_NO_CDS is set: no class-data archive")
    else:
        build_class_archive()
    return 0


if __name__ == "__main__":
    sys.exit(main())

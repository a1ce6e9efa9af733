"""counterweight.setup_env: the spark-env.sh it writes, and that Spark's driver JVM honours it."""

import os
import subprocess
import sys
from pathlib import Path

from counterweight import setup_env

ROOT = Path(__file__).resolve().parent.parent


def source_spark_env(env_file: Path, conf_dir: Path, submit_opts: str | None = None) -> dict[str, str]:
    """What Spark's load-spark-env.sh exports after sourcing ``env_file`` from ``conf_dir``."""
    env = {"PATH": os.environ["PATH"], "SPARK_CONF_DIR": str(conf_dir)}
    if submit_opts is not None:
        env["SPARK_SUBMIT_OPTS"] = submit_opts
    script = f'set -a; . "{env_file}"; set +a; env -0'
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def test_spark_env_uses_the_archive_and_an_empty_conf_dir_when_conf_holds_only_it(tmp_path: Path):
    conf, prefix = tmp_path / "pyspark-conf", tmp_path / "venv"
    env_file = setup_env.write_spark_env(conf, "/venv/bin/python", prefix)
    setup_env.archive_path(prefix).write_bytes(b"archive")
    got = source_spark_env(env_file, conf, submit_opts="-Dmine=1 -XX:TieredStopAtLevel=4")
    assert got["PYSPARK_PYTHON"] == "/venv/bin/python"
    assert got["SPARK_CONF_DIR"] == str(setup_env.empty_conf_dir(prefix))
    assert list(setup_env.empty_conf_dir(prefix).iterdir()) == []
    opts = got["SPARK_SUBMIT_OPTS"].split()
    assert opts[:2] == ["-XX:TieredStopAtLevel=1", f"-XX:SharedArchiveFile={setup_env.archive_path(prefix)}"]
    assert opts[-2:] == ["-Dmine=1", "-XX:TieredStopAtLevel=4"], "the caller's options must come last (they win)"
    assert "_cw_opts" not in got


def test_spark_env_without_an_archive_still_sets_the_jit(tmp_path: Path):
    conf, prefix = tmp_path / "pyspark-conf", tmp_path / "venv"
    env_file = setup_env.write_spark_env(conf, "/venv/bin/python", prefix)
    got = source_spark_env(env_file, conf)
    assert got["SPARK_SUBMIT_OPTS"] == "-XX:TieredStopAtLevel=1"
    assert got["SPARK_CONF_DIR"] == str(setup_env.empty_conf_dir(prefix))


def test_a_spark_defaults_of_yours_keeps_spark_reading_conf(tmp_path: Path, capsys):
    conf, prefix = tmp_path / "pyspark-conf", tmp_path / "venv"
    conf.mkdir()
    theirs = "spark.eventLog.enabled true\n"
    (conf / "spark-defaults.conf").write_text(theirs)
    env_file = setup_env.write_spark_env(conf, "/venv/bin/python", prefix)
    setup_env.archive_path(prefix).write_bytes(b"archive")
    assert (conf / "spark-defaults.conf").read_text() == theirs
    assert "left" in capsys.readouterr().out
    got = source_spark_env(env_file, conf)
    assert got["SPARK_CONF_DIR"] == str(conf), "Spark must still find the user's spark-defaults.conf"
    assert got["SPARK_SUBMIT_OPTS"] == "-XX:TieredStopAtLevel=1"


def test_the_spark_defaults_an_earlier_setup_wrote_is_removed(tmp_path: Path):
    conf, prefix = tmp_path / "pyspark-conf", tmp_path / "venv"
    conf.mkdir()
    (conf / "spark-defaults.conf").write_text(setup_env.MARKER + ": old\nspark.driver.defaultJavaOptions -Xint\n")
    setup_env.empty_conf_dir(prefix).mkdir(parents=True)
    (setup_env.empty_conf_dir(prefix) / "stray.txt").write_text("x")
    setup_env.write_spark_env(conf, "/venv/bin/python", prefix)
    assert sorted(p.name for p in conf.iterdir()) == ["spark-env.sh"]
    assert list(setup_env.empty_conf_dir(prefix).iterdir()) == []


def test_the_session_driver_jvm_runs_with_the_jit_and_the_archive(spark):
    # make setup wrote pyspark/conf/spark-env.sh and the archive; the test session's JVM was
    # launched through spark-submit, which sources it.
    args = list(spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert setup_env.JIT_OPTIONS in args, args
    assert f"-XX:SharedArchiveFile={setup_env.archive_path()}" in args, args


def test_spark_submit_maps_the_class_archive(tmp_path: Path):
    # -Xshare:on turns "archive unusable" (stale, class-path mismatch, non-empty conf dir) from a
    # silent fallback into a JVM start failure.
    script = tmp_path / "hello.py"
    script.write_text("from pyspark.sql import SparkSession\n"
                      "s = SparkSession.builder.master('local[1]').getOrCreate()\n"
                      "print('rows', s.range(3).count())\n")
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_ENV_LOADED", "SPARK_CONF_DIR", "SPARK_SUBMIT_OPTS")}
    env["SPARK_SUBMIT_OPTS"] = "-Xshare:on"
    proc = subprocess.run([str(Path(sys.prefix) / "bin" / "spark-submit"), str(script)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "rows 3" in proc.stdout, proc.stderr[-3000:]

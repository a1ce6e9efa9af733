"""counterweight.setup_env: the spark-defaults.conf it writes, and that Spark's driver JVM honours it."""

from pathlib import Path

from counterweight import setup_env


def test_spark_defaults_sets_the_driver_default_java_options(tmp_path: Path):
    assert setup_env.write_spark_defaults(tmp_path)
    lines = [l.split(None, 1) for l in (tmp_path / "spark-defaults.conf").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    assert lines == [["spark.driver.defaultJavaOptions", "-XX:TieredStopAtLevel=1"]]
    # Its own file is rewritten (make setup runs again after a pyproject change).
    (tmp_path / "spark-defaults.conf").write_text(setup_env.MARKER + ": old\nspark.driver.defaultJavaOptions -Xint\n")
    assert setup_env.write_spark_defaults(tmp_path)
    assert "-XX:TieredStopAtLevel=1" in (tmp_path / "spark-defaults.conf").read_text()


def test_spark_defaults_written_by_someone_else_are_left_alone(tmp_path: Path, capsys):
    theirs = "spark.eventLog.enabled true\n"
    (tmp_path / "spark-defaults.conf").write_text(theirs)
    assert not setup_env.write_spark_defaults(tmp_path)
    assert (tmp_path / "spark-defaults.conf").read_text() == theirs
    assert "left" in capsys.readouterr().out


def test_the_session_driver_jvm_runs_with_the_default_java_options(spark):
    # make setup wrote pyspark/conf/spark-defaults.conf; the test session's JVM was launched through
    # spark-submit, which reads it.
    args = list(spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert setup_env.DRIVER_JAVA_OPTIONS in args, args

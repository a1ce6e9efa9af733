"""Build the SparkSession from the ``spark`` config group.

Precedence: anything spark-submit already set (``--master``, ``--conf k=v``, ``spark-defaults.conf``)
wins; the Hydra ``spark`` group fills in the rest. So the same job runs unchanged under
``spark-submit --master spark://host:7077`` and under plain ``python -m counterweight ingest``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator

from omegaconf import DictConfig

from counterweight.config import LakeEngine, spark_properties

log = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

# Settings the pipeline relies on; user values for these keys still win.
_REQUIRED_DEFAULTS = {
    # Delta tables stay at reader version 1: timezone-aware microsecond timestamps in Parquet.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.session.timeZone": "UTC",
    # No _SUCCESS marker files inside Delta table directories.
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Rows here are documents (KBs to MBs of text). Spark caches 10,000 rows per column batch by
    # default: buffers of hundreds of MB per task, which ran a 4g driver out of heap ingesting
    # 200k web documents. 1,000 rows keeps each cached batch to tens of MB.
    "spark.sql.inMemoryColumnarStorage.batchSize": "1000",
}


def _delta_jars_requested(conf) -> bool:
    jars = " ".join(conf.get(k, "") for k in ("spark.jars.packages", "spark.jars"))
    return "delta" in jars.lower()


def build_session(cfg: DictConfig):
    """Create (or reuse) the SparkSession for a job run."""
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Under spark-submit the JVM already runs: connect first, so SparkConf() below loads what
        # spark-submit passed (--master, --conf) instead of starting empty and overriding it.
        from pyspark import SparkContext

        SparkContext._ensure_initialized()
    conf = SparkConf()  # loads spark-submit's settings (Java system properties)
    if not (os.environ.get("PYSPARK_PYTHON") or conf.contains("spark.pyspark.python")):
        # Python workers use the driver's interpreter (the project's virtualenv) unless told otherwise.
        os.environ["PYSPARK_PYTHON"] = sys.executable
    if not conf.contains("spark.master"):
        conf.setMaster(cfg.spark.master)
    if not conf.contains("spark.app.name"):
        conf.setAppName(cfg.spark.app_name)
    settings = {**_REQUIRED_DEFAULTS, **spark_properties(cfg.spark.conf)}
    for key, value in settings.items():
        if not conf.contains(key):
            conf.set(key, value)
    wants_delta_spark = cfg.lake.engine == LakeEngine.delta_spark or _delta_jars_requested(conf)
    if wants_delta_spark:
        if not conf.contains("spark.sql.extensions"):
            conf.set("spark.sql.extensions", DELTA_EXTENSION)
        if not conf.contains("spark.sql.catalog.spark_catalog"):
            conf.set("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
    spark = SparkSession.builder.config(conf=conf).getOrCreate()
    spark.sparkContext.setLogLevel(cfg.spark.log_level)
    return spark


def delta_spark_available(spark) -> bool:
    """True when the Delta Lake jars are on the JVM classpath of this session."""
    try:
        from py4j.java_gateway import JavaClass

        return isinstance(spark.sparkContext._jvm.io.delta.tables.DeltaTable, JavaClass)
    except Exception:  # Spark Connect sessions have no JVM handle: treat as absent
        return False


@contextlib.contextmanager
def session_conf(spark, settings: dict[str, str]) -> Iterator[None]:
    """Set these runtime SQL settings while the block runs; restore (or unset) them afterwards."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)

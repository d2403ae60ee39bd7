"""Start (or reuse) a Spark session for bmc-cohort: loopback only, UTC, nothing downloaded.

pyspark is an optional extra (``pip install '.[spark]'``) and needs a Java 17+ runtime; both
are checked here with a message that says what to install. A ``local[...]`` session binds the
driver to 127.0.0.1; on a cluster master the driver binds as Spark chooses (executors on other
hosts must reach it). No Spark packages are used (no ``spark.jars.packages``: nothing is
fetched at run time), sessions run in UTC and keep the shuffle small unless the caller's
settings say otherwise. Spark Connect (``sc://``) is refused: the loader needs a classic
session (``sparkContext``, RDD partition counts, ``localCheckpoint``).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from etl.errors import EtlError


class SparkUnavailable(EtlError):
    """pyspark or a Java runtime is missing."""


#: Settings every bmc session gets (a caller's ``conf`` wins over them).
DEFAULT_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC -Dlog4j2.configurationFile="
                                     + str(Path(__file__).with_name("log4j2.properties")),
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}

#: Added for ``local[...]`` masters only: a driver on loopback is unreachable from other hosts.
LOOPBACK_CONF: dict[str, str] = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}


def is_local_master(master: str) -> bool:
    """``local``, ``local[4]``, ``local[*]``, ``local[2,3]``: Spark inside this process."""
    return master == "local" or master.startswith("local[")


def materialise(df, *, exact: bool = False):
    """``df`` computed once now, so later actions read its rows instead of its plan.

    Where it is kept decides what a lost executor costs:

    * ``local[...]``: ``localCheckpoint`` (the executors are the driver's process; the lineage
      is cut, so later plans stay small);
    * a cluster with a checkpoint folder (``spark.checkpoint.dir`` or
      ``sc.setCheckpointDir``, on storage every node reaches): a reliable checkpoint, which
      survives any executor and cuts the lineage;
    * a cluster without one: ``persist(MEMORY_AND_DISK)`` and a count; a lost executor's
      blocks are recomputed from the same plan (the same input partitions), ``exact`` parts
      (the numbered lines) keep a second replica (``MEMORY_AND_DISK_2``) so they are not.
    """
    from pyspark import StorageLevel

    sc = df.sparkSession.sparkContext
    if is_local_master(sc.master):
        return df.localCheckpoint(eager=True)
    if sc.getCheckpointDir():
        kept = df.persist(StorageLevel.MEMORY_AND_DISK)
        out = kept.checkpoint(eager=True)
        kept.unpersist()
        return out
    kept = df.persist(StorageLevel.MEMORY_AND_DISK_2 if exact else StorageLevel.MEMORY_AND_DISK)
    kept.count()
    return kept


def check_master(master: str) -> None:
    """Refuse masters bmc cannot run on, before any JVM starts."""
    if master.startswith("sc://"):
        raise SparkUnavailable(
            f"{master}: Spark Connect is not supported (bmc needs a classic Spark session); "
            f"use a cluster master (spark://host:7077, yarn, k8s://...) or, inside an existing "
            f"session, the library entry load_lake(spark, ...) (docs/spark.md)")


def java_version() -> str | None:
    """The first line of ``java -version``, or None when there is no Java runtime."""
    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get(
        "JAVA_HOME") else shutil.which("java")
    if not java or not os.path.exists(java):
        return None
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (done.stderr or done.stdout).strip()
    return text.splitlines()[0] if done.returncode == 0 and text else None


def check_available() -> None:
    """Raise :class:`SparkUnavailable` with what to install when Spark cannot start here."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailable("the Spark engine needs pyspark: "
                               "pip install 'bmc-cohort[spark]' (or pip install -e '.[spark]')"
                               ) from None
    if java_version() is None:
        raise SparkUnavailable("the Spark engine needs a Java 17+ runtime (`java -version` "
                               "found none); install one (e.g. apt-get install "
                               "openjdk-17-jre-headless) or set JAVA_HOME")


def session_settings(master: str, conf: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings a session on ``master`` starts with: :data:`DEFAULT_CONF`, the loopback
    binding for ``local[...]`` only, then the caller's ``conf`` (which wins)."""
    loopback = LOOPBACK_CONF if is_local_master(master) else {}
    return {**DEFAULT_CONF, **loopback, **(conf or {})}


def spark_session(master: str = "local[*]", conf: Mapping[str, str] | None = None,
                  app_name: str = "bmc-cohort"):
    """A SparkSession on ``master`` with :data:`DEFAULT_CONF` plus ``conf``."""
    check_master(master)
    check_available()
    from pyspark.sql import SparkSession

    settings = session_settings(master, conf)
    if is_local_master(master):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    quiet_query_context_loggers()
    return spark


def quiet_query_context_loggers() -> None:
    """pyspark 4 logs every failed query's context (message and SQL fragment) as JSON on
    stderr by itself; a value in a failing cast could be patient data, and the caller reports
    the error anyway (:func:`error_message`), so these two loggers are switched off."""
    for name in ("DataFrameQueryContextLogger", "SQLQueryContextLogger"):
        logging.getLogger(name).disabled = True


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'")


#: Failures whose cause is the cluster's setup, not the data: (pattern in the error's whole
#: text, with the Java causes; the one-line message with the next step).
_SETUP_FAILURES: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r'Cannot run program "([^"]*)"'),
     "executors could not start Python (PYSPARK_PYTHON={0}); set PYSPARK_PYTHON (or "
     "spark.pyspark.python) to a Python with bmc-cohort installed on every executor"),
    (re.compile(r"No module named '?(etl|cohort|orjson)"),
     "the executors' Python has no {0} module; install bmc-cohort on every executor "
     "(docs/spark.md, Inside an existing Spark session)"),
    (re.compile(r"PYTHON_VERSION_MISMATCH|Python in worker has different version"),
     "the executors run another Python version than the driver; point PYSPARK_PYTHON at the "
     "same version on every node"),
    (re.compile(r"spark\.driver\.maxResultSize"),
     "a result sent to the driver exceeded spark.driver.maxResultSize; raise it with "
     "--spark-conf spark.driver.maxResultSize=2g"),
)


def setup_failure(error: BaseException) -> str | None:
    """The one-line message with the next step for a failure of the cluster's setup (the
    executors cannot start Python, lack bmc-cohort, ...), or None for any other error."""
    text = str(error)
    java = getattr(error, "java_exception", None)
    cause = java
    while cause is not None:  # Py4JJavaError: the causes' texts too
        text += "\n" + str(cause.toString())
        cause = cause.getCause()
    for pattern, message in _SETUP_FAILURES:
        found = pattern.search(text)
        if found:
            return message.format(*(found.groups() or ("",)))
    return None


def error_message(error: BaseException) -> str:
    """The first line of a Spark error without quoted values (an ANSI cast error quotes the
    value that failed, which may be patient data): safe to show and log. A failure of the
    cluster's setup is named with what to do instead (:func:`setup_failure`)."""
    hint = setup_failure(error)
    if hint is not None:
        return hint
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return _QUOTED.sub("'...'", first)


def parse_conf(items: list[str] | None) -> dict[str, str]:
    """``key=value`` strings (``--spark-conf``) as a dict; ValueError names a bad one."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--spark-conf {item!r}: expected key=value, e.g. "
                             f"spark.executor.memory=8g")
        out[key.strip()] = value.strip()
    return out


@contextlib.contextmanager
def spark_run(master: str = "local[*]", conf: Mapping[str, str] | None = None):
    """A session for one command: started here and stopped after, unless one was already
    active in this process (a notebook, a test session), which is reused and left running."""
    check_available()
    from pyspark.sql import SparkSession

    check_master(master)
    active = SparkSession.getActiveSession()
    spark = active or spark_session(master, conf)
    try:
        yield spark
    finally:
        if active is None:
            spark.stop()

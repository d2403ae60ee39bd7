"""The Spark session bmc starts: loopback only, nothing fetched, UTC, ANSI; clear messages
when Spark cannot start; errors shown without the values that failed."""
from __future__ import annotations

import pytest

from etl.spark import session as session_mod
from etl.spark.session import SparkUnavailable, error_message, parse_conf


def test_the_session_binds_to_loopback_and_fetches_nothing(spark):
    conf = dict(spark.sparkContext.getConf().getAll())
    assert conf["spark.driver.host"] == "127.0.0.1"
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"
    for key in ("spark.jars.packages", "spark.jars.repositories", "spark.jars.ivySettings"):
        assert key not in conf, f"{key} would download at start"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"


def test_spark_conf_pairs_are_parsed_and_a_bad_one_is_named():
    assert parse_conf(["spark.executor.memory=8g", "spark.sql.shuffle.partitions = 400"]) == {
        "spark.executor.memory": "8g", "spark.sql.shuffle.partitions": "400"}
    with pytest.raises(ValueError, match="--spark-conf 'memory': expected key=value"):
        parse_conf(["memory"])


def test_without_java_the_message_says_what_to_install(monkeypatch):
    pytest.importorskip("pyspark")
    monkeypatch.setattr(session_mod, "java_version", lambda: None)
    with pytest.raises(SparkUnavailable, match="needs a Java 17\\+ runtime"):
        session_mod.check_available()


def test_a_failing_value_is_not_repeated_in_the_message():
    failure = Exception("[CAST_INVALID_INPUT] The value 'Jane Doe' of the type \"STRING\" "
                        "cannot be cast to \"INT\".\n== SQL (line 1) ==\nSELECT 'Jane Doe'")
    shown = error_message(failure)
    assert "Jane" not in shown
    assert shown.startswith("[CAST_INVALID_INPUT] The value '...' of the type")


def test_only_a_local_master_binds_the_driver_to_loopback():
    from etl.spark.session import session_settings

    for local in ("local", "local[2]", "local[*]"):
        assert session_settings(local)["spark.driver.bindAddress"] == "127.0.0.1"
    for cluster in ("spark://10.1.2.3:7077", "yarn", "k8s://https://api:6443"):
        settings = session_settings(cluster)
        assert "spark.driver.host" not in settings, cluster  # executors must reach the driver
        assert "spark.driver.bindAddress" not in settings, cluster
    assert session_settings("yarn", {"spark.driver.host": "10.0.0.5"})[
        "spark.driver.host"] == "10.0.0.5"


def test_spark_connect_is_refused_before_any_jvm_starts(monkeypatch):
    def no_jvm():
        raise AssertionError("check_available ran: a JVM could have started")

    monkeypatch.setattr(session_mod, "check_available", no_jvm)
    with pytest.raises(SparkUnavailable, match=r"^sc://host:15002: Spark Connect is not "
                                               r"supported \(bmc needs a classic Spark session\)"):
        session_mod.spark_session("sc://host:15002")

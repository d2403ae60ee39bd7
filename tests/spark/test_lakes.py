"""Where a lake may be: a folder every node sees; object-store and HDFS URIs are refused
before anything is written, and Spark is always given file: URIs."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohort.cli import app
from etl.spark.lakes import LakeLocationError, local_lake, spark_uri


@pytest.mark.parametrize("uri", ["s3a://bucket/lakes/2024", "abfss://c@acct.dfs.core.windows.net/l",
                                 "hdfs://namenode:8020/lake", "gs://bucket/lake"])
def test_an_object_store_or_hdfs_lake_is_refused_with_the_next_step(uri):
    scheme = uri.split(":", 1)[0]
    with pytest.raises(LakeLocationError, match=f"{scheme}:// lakes are not supported; --db "
                                                f"must be a folder every Spark node sees"):
        local_lake(uri)
    with pytest.raises(LakeLocationError):  # as typer's Path option hands it over: s3a:/b/x
        local_lake(Path(uri))


def test_a_file_uri_and_a_relative_folder_name_the_same_local_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert local_lake(f"file://{tmp_path}/lake") == tmp_path / "lake"
    assert local_lake(f"file:{tmp_path}/lake") == tmp_path / "lake"
    assert local_lake("lake") == tmp_path / "lake"
    assert local_lake(tmp_path / "a lake") == tmp_path / "a lake"
    with pytest.raises(LakeLocationError, match="a file: URI with a host"):
        local_lake("file://otherhost/lake")


def test_spark_is_given_a_file_uri_whatever_its_default_file_system(tmp_path):
    assert spark_uri(tmp_path / "a lake" / "patient") == (tmp_path / "a lake" / "patient").as_uri()
    assert spark_uri(tmp_path).startswith("file:///")


@pytest.mark.parametrize("argv", [
    ["cohort", "--engine", "spark", "--db", "s3a://bucket/lake"],
    ["load", "--engine", "spark", "{inputs}", "--db", "s3a://bucket/lake"],
])
def test_the_cli_refuses_a_uri_lake_and_writes_no_local_folder(argv, tmp_path, monkeypatch):
    pytest.importorskip("pyspark")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.ndjson").write_text('{"resourceType":"Patient","id":"p1"}\n')
    argv = [a.replace("{inputs}", str(tmp_path / "in.ndjson")) for a in argv]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert "s3a:// lakes are not supported" in result.output
    assert not (tmp_path / "s3a:").exists()

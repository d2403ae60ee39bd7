"""`bmc load`, `bmc view`, `bmc tables`: exit codes and the exact user-facing messages."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from cohort.cli import app
from tests.conftest import write_json, write_ndjson

runner = CliRunner()

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-01-02"}


def test_load_exits_0_and_summarises_on_stderr(tmp_path):
    f = write_ndjson(tmp_path / "Patient.ndjson", [PATIENT])
    res = runner.invoke(app, ["load", str(f), "--db", str(tmp_path / "x.duckdb")])
    assert res.exit_code == 0, res.output
    assert "Patient" in res.stderr and "rejected records 0" in res.stderr
    assert res.stdout == ""


def test_load_with_rejected_records_exits_3_and_names_file_and_line(tmp_path):
    f = write_ndjson(tmp_path / "Patient.ndjson", [PATIENT, "{not json"])
    res = runner.invoke(app, ["load", str(f), "--db", str(tmp_path / "x.duckdb")])
    assert res.exit_code == 3
    assert "rejected records 1" in res.stderr
    assert "Patient.ndjson line 2: invalid JSON" in res.stderr


def test_strict_load_exits_1_and_says_nothing_was_loaded(tmp_path):
    f = write_ndjson(tmp_path / "Patient.ndjson", [PATIENT, "{not json"])
    res = runner.invoke(app, ["load", str(f), "--db", str(tmp_path / "x.duckdb"), "--strict"])
    assert res.exit_code == 1
    assert "nothing was loaded" in res.stderr


def test_missing_input_is_a_usage_error_exit_2(tmp_path):
    res = runner.invoke(app, ["load", str(tmp_path / "nope"), "--db", str(tmp_path / "x.duckdb")])
    assert res.exit_code == 2
    assert "nope: no such file or folder" in res.stderr


def test_missing_db_option_is_a_usage_error_exit_2(tmp_path):
    res = runner.invoke(app, ["load", str(tmp_path)])
    assert res.exit_code == 2


def test_view_prints_json_rows_in_view_column_order(tmp_path):
    view = {"resourceType": "ViewDefinition", "name": "pt", "resource": "Patient", "status": "active",
            "select": [{"column": [{"name": "id", "path": "id"}, {"name": "gender", "path": "gender"}]}]}
    vf = write_json(tmp_path / "v.json", view)
    data = write_ndjson(tmp_path / "Patient.ndjson", [PATIENT, {**PATIENT, "id": "p2", "gender": "male"}])
    res = runner.invoke(app, ["view", str(vf), str(data), "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert rows == [{"id": "p1", "gender": "female"}, {"id": "p2", "gender": "male"}]
    assert list(rows[0]) == ["id", "gender"]


def test_view_csv_has_a_header_row(tmp_path):
    view = {"resourceType": "ViewDefinition", "resource": "Patient", "status": "active",
            "select": [{"column": [{"name": "id", "path": "id"}]}]}
    res = runner.invoke(app, ["view", str(write_json(tmp_path / "v.json", view)),
                              str(write_ndjson(tmp_path / "p.ndjson", [PATIENT]))])
    assert res.exit_code == 0, res.output
    assert res.stdout == "id\np1\n"


def test_invalid_view_exits_1_saying_what_is_wrong(tmp_path):
    view = {"resourceType": "ViewDefinition", "status": "active",
            "select": [{"column": [{"name": "id", "path": "id"}]}]}
    res = runner.invoke(app, ["view", str(write_json(tmp_path / "v.json", view)),
                              str(write_ndjson(tmp_path / "p.ndjson", [PATIENT]))])
    assert res.exit_code == 1
    assert "v.json" in res.stderr and "resource" in res.stderr


def test_view_with_bad_fhirpath_exits_1(tmp_path):
    view = {"resourceType": "ViewDefinition", "resource": "Patient", "status": "active",
            "select": [{"column": [{"name": "x", "path": "name.@@"}]}]}
    res = runner.invoke(app, ["view", str(write_json(tmp_path / "v.json", view)),
                              str(write_ndjson(tmp_path / "p.ndjson", [PATIENT]))])
    assert res.exit_code == 1
    assert "error:" in res.stderr


def test_view_rejects_an_unknown_format_with_exit_2(tmp_path):
    res = runner.invoke(app, ["view", str(tmp_path / "v.json"), str(tmp_path), "--format", "xml"])
    assert res.exit_code == 2
    assert "--format must be csv, json or ndjson" in res.stderr

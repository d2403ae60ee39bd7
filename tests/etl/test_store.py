"""--db must name a DuckDB database (or nothing yet): other files are refused before any input
is read, and DuckDB never sees a SQLite file (it would try to install an extension over the
network)."""
from __future__ import annotations

import sqlite3

import duckdb
import pytest
from typer.testing import CliRunner

from cohort.cli import app
from etl.load import load
from etl.store import NotADatabase, check_database_file
from tests.conftest import write_json, write_ndjson

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-01-02"}


def sqlite_file(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE patients (id TEXT)")
    con.commit()
    con.close()
    return path


def duckdb_file(path):
    duckdb.connect(str(path)).close()
    return path


def test_a_duckdb_database_and_a_new_path_are_accepted(tmp_path):
    check_database_file(duckdb_file(tmp_path / "made.duckdb"))  # just inside: a real database
    check_database_file(tmp_path / "new.duckdb")  # not there yet: a load creates it
    check_database_file(tmp_path)  # a folder: a Spark lake


@pytest.mark.parametrize("make, what", [
    (lambda p: sqlite_file(p / "hospital.sqlite"), "is a SQLite database"),
    (lambda p: write_ndjson(p / "Patient.csv", ["id,gender", "p1,female"]), "is another kind of file"),
    (lambda p: write_json(p / "export.json", PATIENT), "is another kind of file"),
    (lambda p: (p / "touched.duckdb").write_bytes(b"") or p / "touched.duckdb", "is an empty file"),
])
def test_a_file_that_is_not_a_duckdb_database_is_refused(tmp_path, make, what):
    path = make(tmp_path)
    with pytest.raises(NotADatabase, match=what):
        check_database_file(path)


def test_load_into_a_sqlite_file_is_refused_and_leaves_it_as_it_was(tmp_path):
    db = sqlite_file(tmp_path / "hospital.db")
    before = db.read_bytes()
    f = write_ndjson(tmp_path / "in" / "Patient.ndjson", [PATIENT])
    with pytest.raises(NotADatabase):
        load(db, [f])
    assert db.read_bytes() == before


@pytest.mark.parametrize("command", [
    ["load", "IN", "--db", "DB"], ["rebuild", "--db", "DB"], ["export", "--db", "DB", "--out", "OUT"],
    ["cohort", "--db", "DB"], ["screen", "--db", "DB"], ["evidence", "--db", "DB", "p1"],
    ["check", "--db", "DB", "--truth", "IN"], ["report", "--db", "DB", "--out", "OUT"],
])
def test_every_command_refuses_a_sqlite_db_with_exit_2(tmp_path, command):
    db = sqlite_file(tmp_path / "hospital.duckdb")
    before = db.read_bytes()
    f = write_ndjson(tmp_path / "in" / "Patient.ndjson", [PATIENT])
    args = [{"DB": str(db), "IN": str(f), "OUT": str(tmp_path / "out")}.get(a, a) for a in command]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert res.stderr.strip() == (f"error: {db}: is a SQLite database, not a DuckDB database; give "
                                  f"--db a new file name or a database made by `bmc load`")
    assert db.read_bytes() == before
    assert not (tmp_path / "out").exists()


def test_load_into_a_csv_named_by_db_exits_2_and_a_duckdb_file_loads(tmp_path):
    f = write_ndjson(tmp_path / "in" / "Patient.ndjson", [PATIENT])
    csv = write_ndjson(tmp_path / "cohort.csv", ["patient_id", "p1"])
    res = CliRunner().invoke(app, ["load", str(f), "--db", str(csv)])
    assert res.exit_code == 2 and "is another kind of file" in res.stderr
    assert csv.read_text() == "patient_id\np1\n"
    db = duckdb_file(tmp_path / "ok.duckdb")
    assert CliRunner().invoke(app, ["load", str(f), "--db", str(db)]).exit_code == 0

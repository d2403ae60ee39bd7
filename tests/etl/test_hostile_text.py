"""Nothing from the data reaches the terminal or the error tables: a name, an MRN, an ANSI
escape sequence and a newline planted in every failure path (bad JSON line, unknown type, bad
id, missing subject, --validate, bundle entry problems, an unknown patient id, file names)
never come out of stdout, stderr, load_error or load_run; only the project's own text does."""
from __future__ import annotations

import json

import duckdb
import pytest
from typer.testing import CliRunner

from cohort.cli import app
from etl.errors import Location, printable
from tests.conftest import write_json, write_ndjson

NAME, MRN = "Jane Doe", "MRN-ZQ-771199"
PLANT = f"{NAME} {MRN}\x1b[31m\nrejected records 0"


def leaks(text: str) -> list[str]:
    """What of the planted text is in ``text`` (a forged summary line counts)."""
    found = [s for s in (NAME, MRN, "\x1b") if s in text]
    if any(ln.strip() == "rejected records 0" for ln in text.splitlines()):
        found.append("forged line")
    return found


def observation(oid: str, **kw) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]}, **kw}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    write_ndjson(tmp / "in" / "Observation.ndjson", [
        '{"resourceType": "Patient", "id": "' + PLANT.replace("\n", "\\n").replace(
            "\x1b", "\\u001b") + '", "name": [{"text": "' + NAME + '"}',   # bad JSON line
        {"resourceType": PLANT, "id": PLANT},                               # unknown type
        observation(PLANT),                                                 # bad id, no subject
        observation("o-ok", note=[{"text": PLANT}]),                        # missing subject
        {"resourceType": "Patient", "id": "p-v", PLANT: 1},                 # --validate
        {"resourceType": "Patient", "id": "p1", "gender": "female"},
    ])
    write_json(tmp / "in" / "bundle.json", {
        "resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "DELETE", "url": PLANT}},
            {"request": {"method": "DELETE", "url": f"Patient?name={PLANT}"}},
            PLANT,
            {"fullUrl": PLANT, "resource": {"resourceType": PLANT, "id": PLANT}},
            {"fullUrl": PLANT, "resource": {"id": PLANT, "name": [{"text": NAME}]}},
            {"fullUrl": PLANT, "request": {"method": "POST", "url": PLANT}},
        ]})
    db = tmp / "x.duckdb"
    res = CliRunner().invoke(app, ["load", str(tmp / "in"), "--db", str(db), "--validate"])
    return db, res


def test_a_hostile_load_is_rejected_record_by_record(loaded):
    db, res = loaded
    assert res.exit_code == 3, res.output
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM load_error").fetchone()[0] >= 8
    finally:
        con.close()


def test_nothing_planted_reaches_stdout_or_stderr(loaded):
    _, res = loaded
    assert leaks(res.stdout) == [] and leaks(res.stderr) == []


def test_nothing_planted_reaches_the_error_and_run_tables(loaded):
    db, _ = loaded
    con = duckdb.connect(str(db), read_only=True)
    try:
        have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        for table in sorted({"load_error", "load_run", "load_issue"} & have):
            text = json.dumps(con.execute(f"SELECT * FROM {table}").fetchall(), default=str,
                              ensure_ascii=False)
            assert leaks(text) == [], table
    finally:
        con.close()


def test_unknown_types_and_ids_that_are_not_fhir_ids_are_named_as_such(loaded):
    db, res = loaded
    assert "Observation.ndjson line 2: unknown resourceType" in res.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT line, resource_type, resource_id FROM load_error "
                           "WHERE line IN (2, 3) ORDER BY line").fetchall() == [
            (2, None, None), (3, "Observation", None)]
    finally:
        con.close()


def test_validate_names_only_elements_fhir_defines(loaded):
    db, _ = loaded
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT reason FROM load_error WHERE resource_id = 'p-v'").fetchall()
        if "load_issue" in {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()"
                                                      ).fetchall()}:
            rows += con.execute("SELECT * FROM load_issue").fetchall()
    finally:
        con.close()
    assert any("element not defined in FHIR R4" in json.dumps(r) for r in rows)


def test_an_unknown_patient_id_that_is_not_a_fhir_id_is_not_echoed(tmp_path):
    from tests.cohort.test_cohort_charts import Chart, build_db

    c = Chart("p1")
    c.breast_cancer()
    build_db(tmp_path, [c]).close()
    res = CliRunner().invoke(app, ["evidence", "--db", str(tmp_path / "bulk.duckdb"), PLANT])
    assert res.exit_code == 1
    assert res.stderr == ("error: no Patient with the given id in this database (id not valid: "
                          "a FHIR id is 1-64 letters, digits, '-' or '.')\n")


def test_file_names_print_with_control_characters_escaped(tmp_path):
    name = "Obs\x1b[31m\nrejected records 0.ndjson"
    f = write_ndjson(tmp_path / name, [{"resourceType": "Patient", "id": "p1"}, "{oops"])
    db = tmp_path / "x.duckdb"
    res = CliRunner().invoke(app, ["load", str(f), "--db", str(db)])
    assert res.exit_code == 3
    assert "\x1b" not in res.stderr and leaks(res.stderr) == []
    assert f"{printable(str(f))} line 2: invalid JSON" in res.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT file FROM load_error").fetchall() == [(printable(str(f)),)]
    finally:
        con.close()


@pytest.mark.parametrize(("rtype", "rid", "shown"), [
    ("Observation", "abc-1.2", "Observation/abc-1.2 in f.ndjson line 3"),
    ("Observation", "a" * 64, f"Observation/{'a' * 64} in f.ndjson line 3"),
    ("Observation", "a" * 65, "Observation (id not valid) in f.ndjson line 3"),
    ("Observation", "abc_1", "Observation (id not valid) in f.ndjson line 3"),
    ("Observaton", "abc", "f.ndjson line 3"),
])
def test_location_keeps_fhir_types_and_ids_just_inside_the_pattern(rtype, rid, shown):
    assert str(Location("f.ndjson", 3, None, rtype, rid)) == shown

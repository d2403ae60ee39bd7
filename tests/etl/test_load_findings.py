"""Data-quality findings: a value of the wrong JSON type or an invalid date is stored as NULL,
the resource is kept, and load_issue says which resource, element and rule (never the value).
The checked elements come from the declared views (any typed decimal, integer, boolean, date,
dateTime, instant a view reads), not from a list of paths."""
from __future__ import annotations

import json

import duckdb
import pytest
from typer.testing import CliRunner

from cohort.cli import app
from etl.load import load
from tests.conftest import write_json, write_ndjson


def hgb(oid="o1", value=9.1, **kw):
    """A haemoglobin result whose value is written into the NDJSON line as given (raw JSON)."""
    doc = {"resourceType": "Observation", "id": oid, "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
           "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2004-03-02",
           "valueQuantity": {"value": "@VALUE@", "unit": "g/dL",
                             "system": "http://unitsofmeasure.org", "code": "g/dL"}, **kw}
    return json.dumps(doc).replace('"@VALUE@"', value if isinstance(value, str) else json.dumps(value))


def q(db, sql, *params):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def load_lines(tmp_path, lines, name="Observation.000.ndjson"):
    db = tmp_path / "t.duckdb"
    return db, load(db, [write_ndjson(tmp_path / name, lines)])


@pytest.mark.parametrize("raw, stored", [("9.1", 9.1), ("7", 7.0), ("-7.5e2", -750.0),
                                         ("1e300", 1e300), ("0", 0.0)])
def test_a_json_number_is_stored_without_a_finding(tmp_path, raw, stored):
    db, r = load_lines(tmp_path, [hgb(value=raw)])
    assert q(db, "SELECT value_quantity FROM observation") == [(stored,)]
    assert q(db, "SELECT count(*) FROM load_issue") == [(0,)] and r.issues == {}


@pytest.mark.parametrize("raw, reason", [
    ("true", "decimal that is not a JSON number"),  # was 1.0: a patient joined the cohort on it
    ('"7.5"', "decimal that is not a JSON number"),  # was 7.5
    ('"12,5"', "decimal that is not a JSON number"),  # was NULL, silently
    ('"abc"', "decimal that is not a JSON number"),
    ("1e400", "decimal out of range (not a finite number)"),  # was inf
    ("NaN", "decimal out of range (not a finite number)"),  # was nan
])
def test_a_decimal_that_is_not_a_json_number_is_null_and_a_finding(tmp_path, raw, reason):
    db, r = load_lines(tmp_path, [hgb("o1", value=9.1), hgb("o2", value=raw)])
    assert r.rejected == 0 and r.loaded == 2  # the resource is kept
    assert q(db, "SELECT resource_key, value_quantity, value_unit FROM observation ORDER BY 1") == [
        ("Observation/o1", 9.1, "g/dL"), ("Observation/o2", None, "g/dL")]
    assert q(db, "SELECT resource_type, resource_id, file, line, path, kind, reason FROM load_issue") == [
        ("Observation", "o2", str(tmp_path / "Observation.000.ndjson"), 2,
         "Observation.valueQuantity.value", "value", f"{reason}; stored as NULL")]
    assert r.issues == {"value": 1}


@pytest.mark.parametrize("date, reason", [
    ("2019-02-28", None), ("2019-03", None), ("2019", None), ("2019-03-01T10:00:00+01:00", None),
    ("2019-02-30", "dateTime that is not a calendar date"),
    ("20190301", "not a valid FHIR dateTime"),
    ("2019-13-01", "not a valid FHIR dateTime"),
    ("2019-03-01 10:00", "not a valid FHIR dateTime"),
])
def test_an_invalid_date_is_null_and_a_finding(tmp_path, date, reason):
    db, _ = load_lines(tmp_path, [hgb(effectiveDateTime=date)])
    assert q(db, "SELECT effective_start FROM observation") == [(None if reason else date,)]
    issues = q(db, "SELECT path, reason FROM load_issue")
    assert issues == ([("Observation.effectiveDateTime", f"{reason}; stored as NULL")] if reason else [])


def test_every_typed_element_a_view_reads_is_checked_not_a_hand_list(tmp_path):
    """Component values, reference range limits (another view of the same type), a Patient's
    birthDate and deceasedBoolean: all come from the declared views."""
    obs = json.loads(hgb("o1"))
    obs["component"] = [{"code": {"text": "a"}, "valueQuantity": {"value": "3"}},
                        {"code": {"text": "b"}, "valueQuantity": {"value": 3}}]
    obs["referenceRange"] = [{"low": {"value": "12"}, "high": {"value": 15.5}}]
    pat = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-02-29",
           "deceasedBoolean": "false"}
    db, r = load_lines(tmp_path, [json.dumps(obs), json.dumps(pat)], "mixed.ndjson")
    assert sorted(q(db, "SELECT path, reason FROM load_issue")) == [
        ("Observation.component.valueQuantity.value", "decimal that is not a JSON number; stored as NULL"),
        ("Observation.referenceRange.low.value", "decimal that is not a JSON number; stored as NULL"),
        ("Patient.birthDate", "date that is not a calendar date; stored as NULL"),
        ("Patient.deceasedBoolean", "boolean that is not JSON true or false; stored as NULL")]
    assert q(db, "SELECT component_index, value_quantity FROM observation "
                 "WHERE value_source = 'component' ORDER BY 1") == [(0, None), (1, 3.0)]
    assert q(db, "SELECT low_value, high_value FROM observation_reference_range") == [(None, 15.5)]
    assert q(db, "SELECT birth_date FROM patient") == [(None,)]
    assert r.issues == {"value": 4}


def test_findings_in_bundle_entries_name_the_entry(tmp_path):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": json.loads(hgb("o1"))}, {"resource": json.loads(hgb("o2", value="true"))}]}
    db = tmp_path / "t.duckdb"
    load(db, [write_json(tmp_path / "b.json", bundle)])
    assert q(db, "SELECT resource_id, line, entry, path FROM load_issue") == [
        ("o2", None, "entry[1]", "Observation.valueQuantity.value")]
    assert q(db, "SELECT value_quantity FROM observation ORDER BY resource_key") == [(9.1,), (None,)]


def test_load_issue_never_holds_the_value(tmp_path):
    db, _ = load_lines(tmp_path, [hgb("o1", value='"MRN-ZQ-771199 Jane Roe"')])
    rows = q(db, "SELECT * FROM load_issue")
    assert len(rows) == 1 and "MRN" not in repr(rows) and "Roe" not in repr(rows)


def test_the_cli_summary_counts_the_findings_and_the_load_exits_0(tmp_path):
    f = write_ndjson(tmp_path / "Observation.ndjson", [hgb("o1"), hgb("o2", value="true")])
    res = CliRunner().invoke(app, ["load", str(f), "--db", str(tmp_path / "x.duckdb")])
    assert res.exit_code == 0, res.output
    assert "findings in loaded resources 1 (value 1); listed in table load_issue" in res.stderr


# -- references that cannot name their target type (issue 10 item 4) ---------------------------
def obs_with(oid, subject="Patient/p1", encounter=None):
    doc = json.loads(hgb(oid))
    doc["subject"] = {"reference": subject}
    if encounter is not None:
        doc["encounter"] = {"reference": encounter}
    return json.dumps(doc)


PATIENT = json.dumps({"resourceType": "Patient", "id": "p1", "gender": "female"})
ENCOUNTER = json.dumps({"resourceType": "Encounter", "id": "e1", "status": "finished",
                        "subject": {"reference": "Patient/p1"}})


@pytest.mark.parametrize("subject", ["patient/p1", "5", " Patient/p1 ", "Patient/"])
def test_a_required_subject_that_cannot_name_a_patient_is_rejected(tmp_path, subject):
    db, r = load_lines(tmp_path, [PATIENT, obs_with("o1"), obs_with("o2", subject)], "x.ndjson")
    assert q(db, "SELECT resource_key, patient_key FROM observation") == [("Observation/o1", "Patient/p1")]
    assert r.rejected == 1
    assert q(db, "SELECT line, resource_id, reason FROM load_error") == [
        (3, "o2", "table observation needs patient_key; the reference is not a Patient reference")]


@pytest.mark.parametrize("encounter, listed", [
    ("Encounter/e1", False), ("https://ehr.example.org/fhir/Encounter/e1/_history/2", False),
    ("encounter/e1", True), ("5", True), (" Encounter/e1 ", True), ("Encounter/", True)])
def test_an_optional_reference_that_cannot_name_its_type_is_null_and_listed(tmp_path, encounter, listed):
    db, r = load_lines(tmp_path, [PATIENT, ENCOUNTER, obs_with("o1", encounter=encounter)], "x.ndjson")
    assert r.rejected == 0
    assert q(db, "SELECT encounter_key FROM observation") == [(None if listed else "Encounter/e1",)]
    assert q(db, "SELECT table_name, column_name, reference, reason FROM unresolved_reference") == (
        [("observation", "encounter_key", encounter, "not an Encounter reference")] if listed else [])
    assert r.unresolved == ({"not an Encounter reference": 1} if listed else {})


def test_a_listed_reference_stays_listed_after_a_load_that_deletes_something(tmp_path):
    db, _ = load_lines(tmp_path, [PATIENT, ENCOUNTER, obs_with("o1", encounter="encounter/e1"),
                                  obs_with("o2")], "x.ndjson")
    delete = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": "Observation/o2"}}]}
    r = load(db, [write_json(tmp_path / "delete.json", delete)])
    assert r.deletions_applied == 1
    assert q(db, "SELECT reference, reason FROM unresolved_reference") == [
        ("encounter/e1", "not an Encounter reference")]


@pytest.mark.parametrize("rid, ok", [("p1", True), ("", False)])
def test_an_empty_id_is_a_missing_id(tmp_path, rid, ok):
    db, r = load_lines(tmp_path, [json.dumps({"resourceType": "Patient", "id": rid})], "Patient.ndjson")
    assert r.loaded == (1 if ok else 0)
    assert q(db, "SELECT reason FROM load_error") == ([] if ok else [("resource without id",)])
    assert q(db, "SELECT count(*) FROM resource WHERE id = ''") == [(0,)]


# -- --validate records findings, never deletes data (issue 10 item 8) --------------------------
MASKED = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                         "valueCode": "masked"}]}


def test_validate_keeps_a_patient_whose_gender_is_masked_with_data_absent_reason(tmp_path):
    from etl.load import LoadOptions
    pat = {"resourceType": "Patient", "id": "p1", "_gender": MASKED, "birthDate": "1950-01-02"}
    db = tmp_path / "t.duckdb"
    r = load(db, [write_ndjson(tmp_path / "Patient.ndjson", [pat])],
             LoadOptions(validate=True, validate_workers=1))
    assert r.loaded == 1 and r.rejected == 0 and r.issues == {}
    assert q(db, "SELECT resource_key, gender FROM patient") == [("Patient/p1", None)]


@pytest.mark.parametrize("bundle", [False, True])
def test_validate_keeps_a_resource_that_fails_and_lists_the_messages(tmp_path, bundle):
    from etl.load import LoadOptions
    good = {"resourceType": "Patient", "id": "p1", "birthDate": "1950-01-02"}
    bad = {"resourceType": "Patient", "id": "p2", "name": "Jane Roe"}  # name must be a list
    f = (write_json(tmp_path / "b.json", {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": good}, {"resource": bad}]}) if bundle
         else write_ndjson(tmp_path / "Patient.ndjson", [good, bad]))
    db = tmp_path / "t.duckdb"
    r = load(db, [f], LoadOptions(validate=True, validate_workers=1))
    assert r.by_type["Patient"]["current"] == 2 and r.rejected == 0 and r.issues == {"validation": 1}
    assert q(db, "SELECT resource_key FROM patient ORDER BY 1") == [("Patient/p1",), ("Patient/p2",)]
    assert q(db, "SELECT resource_id, path, kind, reason FROM load_issue") == [
        ("p2", "Patient.name", "validation", "invalid FHIR R4: Input should be a valid list")]
    assert "Roe" not in repr(q(db, "SELECT * FROM load_issue"))


def test_validate_with_strict_rejects_the_load(tmp_path):
    from etl.errors import LoadAborted
    from etl.load import LoadOptions
    bad = {"resourceType": "Patient", "id": "p2", "name": "Jane Roe"}
    db = tmp_path / "t.duckdb"
    with pytest.raises(LoadAborted, match=r"Patient/p2 .* line 1: invalid FHIR R4: name: Input"):
        load(db, [write_ndjson(tmp_path / "Patient.ndjson", [bad])],
             LoadOptions(validate=True, strict=True, validate_workers=1))

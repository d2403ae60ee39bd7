"""getReferenceKey()/getResourceKey(): the bmc_reference_key macro on every reference form."""
from __future__ import annotations

import duckdb
import pytest

from etl.viewdef.evaluate import evaluate_view
from etl.viewdef.macros import install_macros


@pytest.fixture
def con():
    connection = duckdb.connect()
    install_macros(connection)
    yield connection
    connection.close()


def key(con, ref, typ=None):
    return con.execute("SELECT bmc_reference_key($ref, $typ)", {"ref": ref, "typ": typ}).fetchone()[0]


def test_relative_reference(con):
    assert key(con, "Patient/123") == "Patient/123"


def test_absolute_url_drops_the_base(con):
    assert key(con, "https://fhir.example.org/r4/Patient/123") == "Patient/123"


def test_history_version_is_stripped(con):
    assert key(con, "Patient/1/_history/2") == "Patient/1"


def test_absolute_versioned_reference(con):
    assert key(con, "http://h/fhir/Observation/o-9/_history/3", "Observation") == "Observation/o-9"


def test_matching_type_argument_keeps_the_key(con):
    assert key(con, "Patient/123", "Patient") == "Patient/123"


def test_type_mismatch_gives_null(con):
    assert key(con, "Group/7", "Patient") is None


def test_urn_uuid_passes_through_even_with_a_type(con):
    ref = "urn:uuid:4a2bd1a6-5b1b-4e3b-9f5f-0c3d2b1a0e9f"
    assert key(con, ref, "Patient") == ref


def test_urn_oid_passes_through(con):
    assert key(con, "urn:oid:1.2.3.4") == "urn:oid:1.2.3.4"


def test_contained_reference_passes_through(con):
    assert key(con, "#med0318", "Medication") == "#med0318"


def test_conditional_reference_passes_through_when_type_matches(con):
    ref = "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999913622"
    assert key(con, ref, "Practitioner") == ref


def test_conditional_reference_of_another_type_gives_null(con):
    assert key(con, "Organization?identifier=urn:oid:1.2|77", "Practitioner") is None


def test_missing_reference_gives_null(con):
    assert key(con, None, "Patient") is None


def test_install_is_idempotent(con):
    install_macros(con)
    assert key(con, "Encounter/e1") == "Encounter/e1"


def test_reference_key_column_is_marked_and_typed():
    from etl.viewdef.compiler import compile_view

    view = {"resource": "Observation", "select": [{"column": [
        {"name": "patient_key", "path": "subject.getReferenceKey(Patient)", "type": "string"},
        {"name": "resource_key", "path": "getResourceKey()", "type": "string"}]}]}
    patient, own = compile_view(view).columns
    assert patient.is_reference_key and patient.reference_types == ("Patient",)
    assert not own.is_reference_key and own.reference_types == ()


def test_keys_join_a_reference_to_its_target():
    view = {"resource": "Observation", "select": [{"column": [
        {"name": "resource_key", "path": "getResourceKey()"},
        {"name": "patient_key", "path": "subject.getReferenceKey(Patient)"},
        {"name": "encounter_key", "path": "encounter.getReferenceKey(Patient)"}]}]}
    obs = {"resourceType": "Observation", "id": "hgb-1", "status": "final",
           "code": {"text": "Hemoglobin"},
           "subject": {"reference": "https://ehr.example.org/fhir/Patient/p1/_history/5"},
           "encounter": {"reference": "Encounter/e1"}}
    connection = duckdb.connect()
    rows = evaluate_view(connection, view, [obs])
    assert rows == [{"resource_key": "Observation/hgb-1", "patient_key": "Patient/p1",
                     "encounter_key": None}]


# The definition before the plain-``Type/id`` fast path: the macro must agree with it.
_REFERENCE_MACRO_BY_THE_BOOK = """
CREATE OR REPLACE MACRO ref_key_by_the_book(ref, typ) AS (
  CASE
    WHEN ref IS NULL OR ref = '' THEN NULL
    WHEN starts_with(ref, '#') OR starts_with(ref, 'urn:') THEN ref
    WHEN contains(ref, '?') THEN
      CASE WHEN typ IS NULL OR regexp_extract(ref, '{cond}', 1) = typ THEN ref END
    WHEN regexp_matches(ref, '{lit}') THEN
      CASE WHEN typ IS NULL OR regexp_extract(ref, '{lit}', 1) = typ
           THEN regexp_extract(ref, '{lit}', 1) || '/' || regexp_extract(ref, '{lit}', 2)
      END
    ELSE ref
  END
)
"""

_REFERENCES = [
    "Patient/123", "Patient/a.b-c", "Patient/" + "x" * 64, "Patient/" + "x" * 65, "Patient/a_b",
    "patient/1", "P/1", "Patient/", "/Patient/1", "Patient/1/", "Patient/1/_history/2",
    "Patient/1/_history/", "https://h/fhir/Patient/1", "https://h/fhir/Patient/1/_history/9",
    "http://h/Patient/" + "y" * 65, "urn:uuid:1234", "urn:oid:1.2", "#c1", "#", "Patient?x=1",
    "Practitioner?identifier=a|b", "https://h/Organization?identifier=a|b", "Patient/1?x",
    "Observation/1 ", " Patient/1", "Pa tient/1", "Patient/ä", "", None, "no-slash",
    "http://h/fhir/Patient/1/extra"]


@pytest.mark.parametrize("typ", [None, "Patient", "Organization", "Practitioner"])
def test_fast_path_agrees_with_the_regular_expressions(con, typ):
    from etl.viewdef.macros import CONDITIONAL_TYPE, REFERENCE_PATTERN

    con.execute(_REFERENCE_MACRO_BY_THE_BOOK.replace("{cond}", CONDITIONAL_TYPE)
                .replace("{lit}", REFERENCE_PATTERN))
    for ref in _REFERENCES:
        want = con.execute("SELECT ref_key_by_the_book($r, $t)", {"r": ref, "t": typ}).fetchone()
        assert key(con, ref, typ) == want[0], ref

"""The declared tables (etl/views/*.json): they compile, and give the right rows on
small realistic resources."""
from __future__ import annotations

import json

import duckdb
import pytest

from etl.declared import compiled_views, render_markdown, views_dir
from etl.viewdef.compiler import compile_view
from etl.viewdef.evaluate import evaluate_view

LOINC, SCT, UCUM = "http://loinc.org", "http://snomed.info/sct", "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
VIEW_FILES = sorted(views_dir().glob("*.json"))


def _view(name: str) -> dict:
    return json.loads((views_dir() / f"{name}.json").read_text())


def _rows(name: str, *resources: dict) -> list[dict]:
    return evaluate_view(duckdb.connect(), _view(name), list(resources))


def test_the_declared_tables_are_all_there():
    assert [p.stem for p in VIEW_FILES] == [
        "condition", "diagnostic_report", "encounter", "medication", "medication_administration",
        "medication_request", "observation", "observation_reference_range", "patient",
        "procedure"]


@pytest.mark.parametrize("path", VIEW_FILES, ids=lambda p: p.stem)
def test_every_view_compiles_and_documents_each_column(path):
    view = json.loads(path.read_text())
    compiled = compile_view(view)
    assert compiled.name == path.stem
    assert compiled.columns[0].name == "resource_key"
    for column in view_columns(view):
        assert column.get("type"), f"{path.name}: {column['name']} has no type"
        assert column.get("description"), f"{path.name}: {column['name']} has no description"


def view_columns(node: dict):
    yield from node.get("column", [])
    for key in ("select", "unionAll"):
        for child in node.get(key, []):
            yield from view_columns(child)


def test_catalog_loads_every_view_and_renders_docs():
    views = compiled_views()
    assert [v.name for v in views] == [p.stem for p in VIEW_FILES]
    markdown = render_markdown(views)
    assert "## observation_reference_range" in markdown
    assert "| `patient_key` | VARCHAR (reference key), required |" in markdown


def test_patient_keeps_partial_birth_date():
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1961-07",
               "deceasedDateTime": "2021-02-03T04:05:06+01:00"}
    assert _rows("patient", patient) == [{
        "resource_key": "Patient/p1", "id": "p1", "gender": "female", "birth_date": "1961-07",
        "deceased_boolean": None, "deceased_date_time": "2021-02-03T04:05:06+01:00"}]


def _cbc_wbc() -> dict:
    return {"resourceType": "Observation", "id": "wbc-1", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                      "observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": LOINC, "code": "6690-2", "display": "Leukocytes"},
                                {"system": "urn:oid:2.16.840.1.113883.6.1", "code": "WBC"}]},
            "subject": {"reference": "Patient/p1"},
            "effectivePeriod": {"start": "2020-05-01T08:00:00Z", "end": "2020-05-01T08:05:00Z"},
            "valueQuantity": {"value": 2.1, "unit": "10*3/uL", "system": UCUM, "code": "10*3/uL"},
            "interpretation": [{"coding": [{"code": "L"}]}],
            "referenceRange": [{"low": {"value": 4.5, "unit": "10*3/uL"},
                                "high": {"value": 11, "unit": "10*3/uL"}},
                               {"low": {"value": 5}, "appliesTo": [{"coding": [
                                   {"system": SCT, "code": "248153007"}]}]}]}


def _cbc_panel() -> dict:
    """A differential with two components, each with its own value and a second coding."""
    return {"resourceType": "Observation", "id": "diff-1", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "57021-8"}]},
            "subject": {"reference": "urn:uuid:5b8e2f8a-0f61-4c59-a3a7-5a1a3c0f2d11"},
            "effectiveDateTime": "2020-05-01",
            "component": [
                {"code": {"coding": [{"system": LOINC, "code": "751-8"},
                                     {"system": "http://lab.example.org", "code": "NEUT#"}]},
                 "valueQuantity": {"value": 0.4, "unit": "10*3/uL"}},
                {"code": {"coding": [{"system": LOINC, "code": "731-0"}]},
                 "valueQuantity": {"value": 1.2, "comparator": "<", "unit": "10*3/uL"}}]}


def test_observation_has_one_row_per_coding_of_its_code():
    rows = _rows("observation", _cbc_wbc())
    assert [(r["code_system"], r["code"]) for r in rows] == [
        (LOINC, "6690-2"), ("urn:oid:2.16.840.1.113883.6.1", "WBC")]
    assert {r["value_quantity"] for r in rows} == {2.1}
    assert rows[0]["effective_start"] == "2020-05-01T08:00:00Z"
    assert rows[0]["effective_end"] == "2020-05-01T08:05:00Z"
    assert rows[0]["interpretation_codes"] == ["L"]
    assert rows[0]["patient_key"] == "Patient/p1"


def test_observation_components_are_rows_with_their_index():
    rows = _rows("observation", _cbc_panel())
    got = sorted((r["value_source"], r["component_index"], r["code"], r["value_quantity"],
                  r["value_comparator"]) for r in rows)
    assert got == [("component", 0, "751-8", 0.4, None), ("component", 0, "NEUT#", 0.4, None),
                   ("component", 1, "731-0", 1.2, "<"), ("value", None, "57021-8", None, None)]
    assert {r["patient_key"] for r in rows} == {"urn:uuid:5b8e2f8a-0f61-4c59-a3a7-5a1a3c0f2d11"}
    assert {r["effective_end"] for r in rows} == {"2020-05-01"}


def test_observation_coded_value_has_system_and_code():
    obs = {"resourceType": "Observation", "id": "er", "status": "final",
           "code": {"coding": [{"system": LOINC, "code": "85337-4"}]},
           "valueCodeableConcept": {"coding": [{"system": SCT, "code": "10828004"}]}}
    (row,) = _rows("observation", obs)
    assert (row["value_code_system"], row["value_code"]) == (SCT, "10828004")


def test_every_reference_range_is_a_row():
    rows = _rows("observation_reference_range", _cbc_wbc())
    got = [(r["range_index"], r["low_value"], r["high_value"], r["applies_to_codes"])
           for r in rows]
    assert sorted(got) == [(0, 4.5, 11.0, []), (1, 5.0, None, ["248153007"])]


def _contained_med_admin() -> dict:
    return {"resourceType": "MedicationAdministration", "id": "ma-1", "status": "completed",
            "contained": [{"resourceType": "Medication", "id": "med0318",
                           "code": {"coding": [{"system": RXNORM, "code": "1790099",
                                                "display": "doxorubicin 2 MG/ML"}]}}],
            "medicationReference": {"reference": "#med0318"},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2020-06-01T09:30:00-04:00",
            "dosage": {"dose": {"value": 60, "unit": "mg", "code": "mg"},
                       "route": {"coding": [{"system": SCT, "code": "47625008"}]}},
            "reasonReference": [{"reference": "Condition/bc-1"}]}


def test_medication_administration_exposes_contained_medication_code():
    (row,) = _rows("medication_administration", _contained_med_admin())
    assert row["medication_code_source"] == "contained"
    assert (row["medication_system"], row["medication_code"]) == (RXNORM, "1790099")
    assert row["medication_key"] == "#med0318"
    assert (row["dose_value"], row["dose_unit"]) == (60, "mg")
    assert row["reason_reference_keys"] == ["Condition/bc-1"]
    assert row["effective_start"] == row["effective_end"] == "2020-06-01T09:30:00-04:00"


def test_medication_administration_with_external_medication_keeps_one_row():
    admin = {"resourceType": "MedicationAdministration", "id": "ma-2", "status": "completed",
             "medicationReference": {"reference": "Medication/doxo"},
             "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2020-06-02"}
    (row,) = _rows("medication_administration", admin)
    assert row["medication_key"] == "Medication/doxo"
    assert row["medication_code"] is None and row["medication_code_source"] is None


def test_medication_administration_codeable_concept_codings_are_rows():
    admin = {"resourceType": "MedicationAdministration", "id": "ma-3", "status": "completed",
             "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "1790099"},
                                                      {"system": SCT, "code": "372817009"}]},
             "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2020-06-03"}
    rows = _rows("medication_administration", admin)
    assert sorted(r["medication_code"] for r in rows) == ["1790099", "372817009"]
    assert {r["medication_code_source"] for r in rows} == {"medicationCodeableConcept"}


def test_condition_rows_carry_histology_and_related_primary():
    secondary = {
        "resourceType": "Condition", "id": "bm-1",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                 "condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": SCT, "code": "94222008",
                             "display": "Secondary malignant neoplasm of bone marrow"}]},
        "subject": {"reference": "Patient/p1"}, "onsetPeriod": {"start": "2021-03"},
        "extension": [
            {"url": "http://hl7.org/fhir/us/mcode/StructureDefinition/"
                    "mcode-histology-morphology-behavior",
             "valueCodeableConcept": {"coding": [{"system": SCT, "code": "413448000"}]}},
            {"url": "http://hl7.org/fhir/StructureDefinition/condition-related",
             "valueReference": {"reference": "Condition/bc-1"}}]}
    (row,) = _rows("condition", secondary)
    assert (row["system"], row["code"], row["clinical_status"]) == (SCT, "94222008", "active")
    assert (row["histology_system"], row["histology_code"]) == (SCT, "413448000")
    assert row["related_condition_keys"] == ["Condition/bc-1"]
    assert row["onset_date_time"] == "2021-03"


def test_medication_has_code_and_ingredient_rows():
    med = {"resourceType": "Medication", "id": "m1",
           "code": {"coding": [{"system": RXNORM, "code": "1790099"}]},
           "ingredient": [{"itemCodeableConcept": {"coding": [{"system": RXNORM,
                                                               "code": "3639"}]},
                           "isActive": True},
                          {"itemReference": {"reference": "Substance/s1"}}]}
    got = sorted((r["row_source"], r["ingredient_index"], r["code"], r["ingredient_key"])
                 for r in _rows("medication", med))
    assert got == [("code", None, "1790099", None), ("ingredient", 0, "3639", None),
                   ("ingredient", 1, None, "Substance/s1")]


def test_medication_request_row_per_coding_with_reasons():
    req = {"resourceType": "MedicationRequest", "id": "mr1", "status": "active",
           "intent": "order", "subject": {"reference": "Patient/p1"},
           "authoredOn": "2020-05-20",
           "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "583214"}]},
           "reasonReference": [{"reference": "Condition/bc-1"}]}
    (row,) = _rows("medication_request", req)
    assert (row["medication_code"], row["intent"], row["authored_on"]) == (
        "583214", "order", "2020-05-20")
    assert row["reason_reference_keys"] == ["Condition/bc-1"]


def test_procedure_performed_period():
    proc = {"resourceType": "Procedure", "id": "bmb-1", "status": "completed",
            "code": {"coding": [{"system": SCT, "code": "396487001",
                                 "display": "Sampling of bone marrow"}]},
            "subject": {"reference": "Patient/p1"},
            "performedPeriod": {"start": "2021-03-02T08:00:00Z", "end": "2021-03-02T08:40:00Z"},
            "bodySite": [{"coding": [{"system": SCT, "code": "68367000"}]}]}
    (row,) = _rows("procedure", proc)
    assert (row["performed_start"], row["performed_end"]) == ("2021-03-02T08:00:00Z",
                                                              "2021-03-02T08:40:00Z")
    assert row["body_site_codes"] == ["68367000"]


def test_diagnostic_report_result_keys_are_a_collection():
    report = {"resourceType": "DiagnosticReport", "id": "cbc", "status": "final",
              "code": {"coding": [{"system": LOINC, "code": "58410-2"}]},
              "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2020-05-01",
              "issued": "2020-05-01T12:00:00Z",
              "result": [{"reference": "Observation/wbc-1"}, {"reference": "Observation/hgb-1"}],
              "conclusionCode": [{"coding": [{"system": SCT, "code": "165517008"}]}]}
    (row,) = _rows("diagnostic_report", report)
    assert row["result_keys"] == ["Observation/wbc-1", "Observation/hgb-1"]
    assert row["conclusion_codes"] == ["165517008"]
    assert row["issued"] == "2020-05-01T12:00:00Z"


def test_encounter_class_and_period():
    enc = {"resourceType": "Encounter", "id": "e1", "status": "finished",
           "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                     "code": "IMP"},
           "subject": {"reference": "Patient/p1"},
           "period": {"start": "2020-05-01T08:00:00Z", "end": "2020-05-04T10:00:00Z"}}
    (row,) = _rows("encounter", enc)
    assert (row["class_code"], row["period_start"], row["period_end"]) == (
        "IMP", "2020-05-01T08:00:00Z", "2020-05-04T10:00:00Z")


# -- added columns: codings with their systems, more reference keys -------------------------

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def test_codings_columns_pair_each_code_with_its_system():
    rows = _rows("observation", _cbc_wbc())
    assert {tuple(r["category_codings"]) for r in rows} == {(f"{CATEGORY}|laboratory",)}
    assert {tuple(r["interpretation_codings"]) for r in rows} == {("|L",)}  # no system
    assert rows[0]["category_codes"] == ["laboratory"]  # the old column is unchanged


def test_component_rows_have_the_component_interpretation_codings():
    panel = _cbc_panel()
    panel["component"][1]["interpretation"] = [{"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
         "code": "L"}, {"display": "no code, no entry"}]}]
    got = {(r["component_index"], tuple(r["interpretation_codings"]))
           for r in _rows("observation", panel)}
    assert got == {(None, ()), (0, ()), (1, (
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation|L",))}


def test_reference_range_codings():
    rows = _rows("observation_reference_range", _cbc_wbc())
    got = sorted((r["range_index"], r["applies_to_codings"], r["type_codings"]) for r in rows)
    assert got == [(0, [], []), (1, [f"{SCT}|248153007"], [])]


def test_encounter_participants_provider_and_locations():
    enc = {"resourceType": "Encounter", "id": "e1", "status": "finished",
           "class": {"code": "AMB"}, "subject": {"reference": "Patient/p1"},
           "participant": [
               {"individual": {"reference": "Practitioner?identifier=http://hl7.org/fhir/"
                                            "sid/us-npi|9999913622"}},
               {"individual": {"reference": "Practitioner/pr-2"}}, {"type": [{"text": "x"}]}],
           "serviceProvider": {"reference": "Organization/org-1"},
           "location": [{"location": {"reference": "Location/loc-1"}},
                        {"location": {"reference": "Location/loc-2/_history/3"}}],
           "reasonCode": [{"coding": [{"system": SCT, "code": "254837009"}]}]}
    (row,) = _rows("encounter", enc)
    assert row["participant_keys"] == [
        "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999913622", "Practitioner/pr-2"]
    assert row["service_provider_key"] == "Organization/org-1"
    assert row["location_keys"] == ["Location/loc-1", "Location/loc-2"]
    assert row["reason_codings"] == [f"{SCT}|254837009"]


def test_procedure_performers_and_body_site_codings():
    proc = {"resourceType": "Procedure", "id": "bmb-1", "status": "completed",
            "code": {"coding": [{"system": SCT, "code": "396487001"}]},
            "subject": {"reference": "Patient/p1"},
            "performer": [{"actor": {"reference": "Practitioner/pr-1"}},
                          {"actor": {"reference": "Organization/org-1"}}],
            "bodySite": [{"coding": [{"system": SCT, "code": "14016003"}]}]}
    (row,) = _rows("procedure", proc)
    assert row["performer_keys"] == ["Practitioner/pr-1", "Organization/org-1"]
    assert row["body_site_codings"] == [f"{SCT}|14016003"]


def test_medication_request_requester_and_contained_medication():
    req = {"resourceType": "MedicationRequest", "id": "mr-1", "status": "active",
           "intent": "order", "subject": {"reference": "Patient/p1"},
           "contained": [{"resourceType": "Medication", "id": "other",
                          "code": {"text": "not this one"}},
                         {"resourceType": "Medication", "id": "med1",
                          "code": {"text": "doxorubicin", "coding": [
                              {"system": RXNORM, "code": "1790099"}]}}],
           "medicationReference": {"reference": "#med1"},
           "requester": {"reference": "PractitionerRole/role-1"}}
    (row,) = _rows("medication_request", req)
    assert row["requester_key"] == "PractitionerRole/role-1"
    assert row["contained_medication_text"] == "doxorubicin"
    assert row["contained_medication_codings"] == [f"{RXNORM}|1790099"]
    assert row["medication_key"] == "#med1" and row["medication_code"] is None


def test_medication_request_with_a_codeable_concept_has_no_contained_medication():
    req = {"resourceType": "MedicationRequest", "id": "mr-2", "status": "active",
           "intent": "order", "subject": {"reference": "Patient/p1"},
           "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "1790099"}]}}
    (row,) = _rows("medication_request", req)
    assert row["contained_medication_text"] is None
    assert row["contained_medication_codings"] == []
    assert row["medication_code"] == "1790099"


def test_docs_tables_md_is_current():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs" / "tables.md"
    want = render_markdown(compiled_views()) + "\n"
    assert docs.read_text(encoding="utf-8") == want, (
        "docs/tables.md is out of date: regenerate it with "
        "`python -m etl.declared > docs/tables.md`")


PATIENT_TABLES = ["condition", "diagnostic_report", "encounter", "medication_administration",
                  "medication_request", "observation", "observation_reference_range",
                  "procedure"]


@pytest.mark.parametrize("name", PATIENT_TABLES)
def test_patient_key_is_tagged_required(name):
    """The loader rejects a resource whose required column is NULL (no subject)."""
    (column,) = [c for c in view_columns(_view(name)) if c["name"] == "patient_key"]
    assert {"name": "required", "value": "true"} in column.get("tag", [])

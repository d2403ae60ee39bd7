"""A hospital export in miniature, written by the Spark tests' conftest (``small_export``):
each record is one behaviour of the loader both engines must treat alike."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

PLANTED_NAME = "Quixotefield"  # a patient's family name: must never reach a message


def _obs(oid: str, value: float, version: str | None = None, subject: bool = True,
         updated: str = "2024-03-01T10:00:00Z") -> dict:
    meta = {"lastUpdated": updated} | ({"versionId": version} if version else {})
    res = {"resourceType": "Observation", "id": oid, "meta": meta, "status": "final",
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                               "observation-category", "code": "laboratory"}]}],
           "code": {"coding": [{"system": "http://loinc.org", "code": "718-7",
                                "display": "Hemoglobin [Mass/volume] in Blood"}]},
           "effectiveDateTime": "2024-03-01T09:30:00Z",
           "valueQuantity": {"value": value, "unit": "g/dL",
                             "system": "http://unitsofmeasure.org", "code": "g/dL"}}
    if subject:
        res["subject"] = {"reference": "Patient/pat-1"}
    return res


def _ndjson(path: Path, resources: list, gz: bool = False) -> None:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in resources)
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)




NPI = "http://hl7.org/fhir/sid/us-npi"


def write_small_export(root: Path) -> Path:
    """A hospital export in miniature: two versions of one Observation, a Bulk deleted/ file,
    an Observation without subject, a line cut mid-record, a conditional reference to a
    Practitioner, a gzip file, and a transaction Bundle (POSTs without ids referring to each
    other by urn:uuid, a DELETE of a resource never loaded)."""
    _ndjson(root / "Patient.000.ndjson", [
        {"resourceType": "Patient", "id": "pat-1", "gender": "female", "birthDate": "1961-04-02",
         "name": [{"family": PLANTED_NAME, "given": ["Ada"]}],
         "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "MRN-4471"}]},
        '{"resourceType": "Patient", "id": "pat-2", "name": [{"family": "' + PLANTED_NAME,
    ])
    _ndjson(root / "Practitioner.000.ndjson", [
        {"resourceType": "Practitioner", "id": "pr-1",
         "identifier": [{"system": NPI, "value": "9999912345"}],
         "name": [{"family": "Okafor", "prefix": ["Dr."]}]},
    ])
    _ndjson(root / "Observation.000.ndjson", [
        _obs("hb-1", 12.4, version="2", updated="2024-03-01T10:00:00Z"),
        "",
        _obs("hb-1", 9.1, version="1", updated="2024-03-02T10:00:00Z"),
        _obs("hb-orphan", 11.0, subject=False),
        _obs("hb-withdrawn", 8.0),
    ])
    _ndjson(root / "Encounter.000.ndjson.gz", [
        {"resourceType": "Encounter", "id": "enc-1", "status": "finished",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
         "subject": {"reference": "Patient/pat-1"},
         "participant": [{"individual": {"reference": f"Practitioner?identifier={NPI}|9999912345"}},
                         {"individual": {"reference": f"Practitioner?identifier={NPI}|0000000000"}}],
         "period": {"start": "2024-03-01T09:00:00Z", "end": "2024-03-01T09:40:00Z"}},
    ], gz=True)
    _ndjson(root / "deleted" / "Observation.000.ndjson", [
        {"resourceType": "Observation", "id": "hb-withdrawn"}])
    patient_url = "urn:uuid:7d1f0c2e-3b7a-4f0e-9a51-2c6e8b4d9f10"
    (root / "bundles").mkdir()
    (root / "bundles" / "transaction.json").write_text(json.dumps({
        "resourceType": "Bundle", "id": "tx-1", "type": "transaction", "entry": [
            {"fullUrl": patient_url,
             "resource": {"resourceType": "Patient", "gender": "female",
                          "birthDate": "1958-11-20", "name": [{"family": "Lindqvist"}]},
             "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": "urn:uuid:0b6d6c1e-8f0a-4a7e-b1d4-5e2f9c3a7b21",
             "resource": {"resourceType": "Condition",
                          "clinicalStatus": {"coding": [{
                              "system": "http://terminology.hl7.org/CodeSystem/"
                                        "condition-clinical", "code": "active"}]},
                          "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                               "code": "C50.912"}]},
                          "subject": {"reference": patient_url},
                          "onsetDateTime": "2009-05-14"},
             "request": {"method": "POST", "url": "Condition"}},
            {"request": {"method": "DELETE", "url": "Procedure/proc-never-loaded"}},
        ]}))
    return root

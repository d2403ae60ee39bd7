"""Small, realistic patient charts for the cohort tests, written as a Bulk NDJSON export
(relative ``Type/id`` references) or as one transaction Bundle per patient (``urn:uuid:``
fullUrls and references), then loaded with the real loader into a real DuckDB file.

A :class:`Chart` is one patient; its methods add the resources the cohort rules read, in the
shapes of CODES.md (US Core / mCODE style). The tests at the bottom check the writers.
"""
from __future__ import annotations

import copy
import itertools
import json
import uuid
from pathlib import Path

import duckdb

from etl.load import load
from tests.conftest import write_json, write_ndjson

SCT = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"
LAB = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory"}]}]
FEMALE = {"coding": [{"system": SCT, "code": "248152002", "display": "Female"}]}
MALE = {"coding": [{"system": SCT, "code": "248153007", "display": "Male"}]}

LOINC_OF = {"hgb": "718-7", "hgb_molar": "59260-0", "plt": "777-3", "wbc": "6690-2",
            "anc": "751-8", "nrbc": "58413-6", "nrbc_manual": "19048-8", "nrbc_abs": "771-6"}
DEFAULT_UNIT = {"hgb": "g/dL", "hgb_molar": "mmol/L", "plt": "10*3/uL", "wbc": "10*3/uL",
                "anc": "10*3/uL", "nrbc": "/100{WBCs}", "nrbc_manual": "/100{WBCs}",
                "nrbc_abs": "10*3/uL"}
_counter = itertools.count(1)


def qty(value, unit, *, ucum=True):
    q = {"value": value}
    if unit is not None:
        q["unit"] = unit
        if ucum:
            q["system"] = UCUM
            q["code"] = unit
    return q


def at(day: str, time: str = "08:10:00+01:00") -> str:
    """A dateTime on ``day`` with a Europe/Berlin offset (dates are read as written)."""
    return f"{day}T{time}"


def fhir_id(name: str) -> str:
    """Test names use underscores; FHIR ids may not ([A-Za-z0-9-.]{1,64})."""
    return name.replace("_", "-")


class Chart:
    """One patient and their resources (plain dicts, references as 'Type/id')."""

    def __init__(self, name: str, sex: str = "female", birth: str = "1950-05-04"):
        self.pid = fhir_id(name)
        self.resources: list[dict] = [{"resourceType": "Patient", "id": self.pid, "gender": sex,
                                       "birthDate": birth}]
        self.versions: list[dict] = []  # later versions of resources above (same id)

    # -- helpers ------------------------------------------------------------------------------
    def _id(self, kind: str) -> str:
        return f"{self.pid}-{kind}{next(_counter)}"

    @property
    def subject(self) -> dict:
        return {"reference": f"Patient/{self.pid}"}

    def add(self, res: dict) -> str:
        self.resources.append(res)
        return f"{res['resourceType']}/{res['id']}"

    # -- conditions ---------------------------------------------------------------------------
    def condition(self, *codings, onset: str | None = "2004-01-10", verification="confirmed",
                  evidence: list[str] | None = None, recorded: str | None = None,
                  clinical: str = "active", abatement: str | None = None) -> str:
        res = {"resourceType": "Condition", "id": self._id("c"),
               "clinicalStatus": {"coding": [{"system": CLIN, "code": clinical}]},
               "code": {"coding": [{"system": s, "code": c} for s, c in codings]},
               "subject": self.subject}
        if verification:
            res["verificationStatus"] = {"coding": [{"system": VER, "code": verification}]}
        if onset:
            res["onsetDateTime"] = onset
        if recorded:
            res["recordedDate"] = recorded
        if abatement:
            res["abatementDateTime"] = abatement
        if evidence:
            res["evidence"] = [{"detail": [{"reference": r} for r in evidence]}]
        return self.add(res)

    def breast_cancer(self, onset="2001-03-02", code=(ICD10CM, "C50.412"), **kw) -> str:
        return self.condition(code, (SCT, "408643008"), onset=onset, **kw) \
            if code == (ICD10CM, "C50.412") else self.condition(code, onset=onset, **kw)

    def bone_mets(self, onset="2003-05-05", **kw) -> str:
        return self.condition((ICD10CM, "C79.51"), (SCT, "94222008"), onset=onset, **kw)

    def marrow_dx(self, onset="2004-06-01", **kw) -> str:
        return self.condition((ICD10CM, "C79.52"), (SCT, "94217008"), onset=onset, **kw)

    # -- labs ----------------------------------------------------------------------------------
    def lab(self, analyte: str, value, when: str, *, unit: str | None = "default",
            low=None, low_unit: str | None = "same", ranges: list[dict] | None = None,
            comparator: str | None = None, status="final", period_end: str | None = None,
            oid: str | None = None, ucum: bool = True, value_integer: bool = False) -> str:
        unit = DEFAULT_UNIT[analyte] if unit == "default" else unit
        res = {"resourceType": "Observation", "id": oid or self._id("o"), "status": status,
               "category": LAB,
               "code": {"coding": [{"system": LOINC, "code": LOINC_OF[analyte]}]},
               "subject": self.subject}
        if period_end:
            res["effectivePeriod"] = {"start": when, "end": period_end}
        else:
            res["effectiveDateTime"] = when
        if value_integer:
            res["valueInteger"] = value
        else:
            res["valueQuantity"] = qty(value, unit, ucum=ucum)
            if comparator:
                res["valueQuantity"]["comparator"] = comparator
        if ranges is not None:
            res["referenceRange"] = ranges
        elif low is not None:
            lu = unit if low_unit == "same" else low_unit
            res["referenceRange"] = [{"low": {"value": low, **({"unit": lu, "system": UCUM,
                                                                "code": lu} if lu else {})}}]
        return self.add(res)

    def cbc(self, when: str, hgb=13.5, plt=250, wbc=6.5, nrbc=None, *, hgb_low=12.0,
            plt_low=150, wbc_low=4.0) -> dict[str, str]:
        """One draw of separate Observations, each with the lab's own range."""
        keys = {"hgb": self.lab("hgb", hgb, when, low=hgb_low),
                "plt": self.lab("plt", plt, when, low=plt_low),
                "wbc": self.lab("wbc", wbc, when, low=wbc_low)}
        if nrbc is not None:
            keys["nrbc"] = self.lab("nrbc", nrbc, when)
        return keys

    def panel(self, when: str, hgb=13.5, plt=250, wbc=6.5, nrbc=None) -> str:
        """A CBC panel Observation (LOINC 58410-2) whose values are components."""
        comps = []
        for analyte, value, low in (("hgb", hgb, 12.0), ("plt", plt, 150), ("wbc", wbc, 4.0),
                                    ("nrbc", nrbc, None)):
            if value is None:
                continue
            c = {"code": {"coding": [{"system": LOINC, "code": LOINC_OF[analyte]}]},
                 "valueQuantity": qty(value, DEFAULT_UNIT[analyte])}
            if low is not None:
                c["referenceRange"] = [{"low": qty(low, DEFAULT_UNIT[analyte])}]
            comps.append(c)
        return self.add({"resourceType": "Observation", "id": self._id("panel"), "status": "final",
                         "category": LAB,
                         "code": {"coding": [{"system": LOINC, "code": "58410-2"}]},
                         "subject": self.subject, "effectiveDateTime": when, "component": comps})

    def new_version(self, key: str, **changes) -> None:
        """A later version of resource ``key`` (same id, meta.versionId + 1)."""
        rtype, rid = key.split("/", 1)
        old = next(r for r in self.resources + self.versions
                   if r["resourceType"] == rtype and r["id"] == rid)
        if "meta" not in old:
            old["meta"] = {"versionId": "1"}
        new = copy.deepcopy(old)
        new["meta"] = {"versionId": str(int(old["meta"]["versionId"]) + 1)}
        for k, v in changes.items():
            if k == "value":
                new["valueQuantity"]["value"] = v
            else:
                new[k] = v
        self.versions.append(new)

    # -- reports, drugs --------------------------------------------------------------------------
    def marrow_report(self, when: str, conclusion=(SCT, "94217008"), code="33721-2",
                      status="final", issued: str | None = None) -> str:
        res = {"resourceType": "DiagnosticReport", "id": self._id("dr"), "status": status,
               "code": {"coding": [{"system": LOINC, "code": code}]}, "subject": self.subject,
               "effectiveDateTime": when,
               "conclusion": "Bone marrow trephine: see conclusion code."}
        if issued:
            res["issued"] = issued
        if conclusion:
            res["conclusionCode"] = [{"coding": [{"system": conclusion[0], "code": conclusion[1]}]}]
        return self.add(res)

    def chemo(self, when: str, rxnorm="72962", status="completed") -> str:
        return self.add({"resourceType": "MedicationAdministration", "id": self._id("ma"),
                         "status": status,
                         "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxnorm}]},
                         "subject": self.subject,
                         "effectivePeriod": {"start": when, "end": when}})


# -- writers -----------------------------------------------------------------------------------
def write_bulk(folder: Path, charts: list[Chart]) -> Path:
    """One NDJSON file per resource type; later versions come after the first ones."""
    by_type: dict[str, list[dict]] = {}
    for ch in charts:
        for r in ch.resources + ch.versions:
            by_type.setdefault(r["resourceType"], []).append(r)
    for rtype, items in by_type.items():
        write_ndjson(folder / f"{rtype}.000.ndjson", items)
    return folder


def _urn(key: str) -> str:
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, key))


def _rewrite_refs(node):
    """Every reference of the bundle becomes the urn:uuid of its target's entry (relative and
    absolute ones alike, as a client building a transaction does)."""
    if isinstance(node, dict):
        return {k: (_urn("/".join(v.split("/")[-2:])) if k == "reference" and isinstance(v, str)
                    and "/" in v and not v.startswith("urn:") else _rewrite_refs(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(x) for x in node]
    return node


def write_bundles(folder: Path, charts: list[Chart]) -> Path:
    """One transaction Bundle per patient: urn:uuid fullUrls and references; the Patient is a
    PUT with its id, the other resources POSTs without an id (the loader derives it from the
    fullUrl, so their keys differ from the NDJSON shape but their patient does not)."""
    for ch in charts:
        entries = []
        for r in ch.resources + ch.versions:
            key = f"{r['resourceType']}/{r['id']}"
            res = _rewrite_refs(r)
            if r["resourceType"] == "Patient" or r in ch.versions or any(
                    v["id"] == r["id"] for v in ch.versions):
                request = {"method": "PUT", "url": key}
            else:
                res = {k: v for k, v in res.items() if k != "id"}
                request = {"method": "POST", "url": r["resourceType"]}
            entries.append({"fullUrl": _urn(key), "resource": res, "request": request})
        write_json(folder / f"{ch.pid}.json",
                   {"resourceType": "Bundle", "type": "transaction", "entry": entries})
    return folder


def build_db(tmp: Path, charts: list[Chart], shape: str = "bulk") -> duckdb.DuckDBPyConnection:
    """Write the charts in ``shape`` ('bulk' or 'bundle'), load them, return a connection."""
    src = tmp / f"src-{shape}"
    src.mkdir(parents=True, exist_ok=True)
    (write_bulk if shape == "bulk" else write_bundles)(src, charts)
    db = tmp / f"{shape}.duckdb"
    result = load(db, [src])
    assert result.rejected == 0, result.rejected_sample
    con = duckdb.connect(str(db))
    con.execute("SET TimeZone = 'UTC'")
    return con


# -- the writers themselves ------------------------------------------------------------------------
def test_bulk_and_bundle_writers_load_the_same_patients_and_references(tmp_path):
    ch = Chart("w1")
    ch.breast_cancer()
    o = ch.lab("nrbc", 3, at("2004-06-01"))
    ch.marrow_dx(evidence=[o])
    bulk = build_db(tmp_path, [ch], "bulk")
    bundle = build_db(tmp_path, [ch], "bundle")
    q = "SELECT patient_key, count(DISTINCT resource_key) FROM condition GROUP BY 1"
    assert bulk.execute(q).fetchall() == bundle.execute(q).fetchall() == [("Patient/w1", 2)]
    assert bundle.execute("SELECT count(*) FROM unresolved_reference").fetchone() == (0,)


def test_a_later_version_replaces_the_first_in_both_shapes(tmp_path):
    ch = Chart("w2")
    o = ch.lab("nrbc", 0, at("2004-06-01"), status="preliminary")
    ch.new_version(o, value=2, status="corrected")
    for shape in ("bulk", "bundle"):
        con = build_db(tmp_path, [ch], shape)
        assert con.execute("SELECT status, value_quantity FROM observation").fetchall() == \
            [("corrected", 2.0)]


def test_chart_resources_are_json_serialisable():
    ch = Chart("w3")
    ch.panel(at("2004-06-01"), nrbc=4)
    json.dumps(ch.resources)

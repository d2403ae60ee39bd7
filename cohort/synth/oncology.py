"""Patient, cancer conditions, staging, tumour markers, marrow evidence and outcome resources.

Shapes follow mCODE STU4 as summarised in CODES.md §1.4 (conditions), §2 (stage group), §3
(tumour markers), §6 (marrow procedure/report), §9 (disease status, febrile neutropenia,
bleeding). Severity grades of adverse-event Conditions use the NCIt grade codes of §5.4.
"""
from __future__ import annotations

from datetime import date

from . import codes as C
from .record import Record, Ref, days, ref, ts

GIVEN_F = ("Anna", "Maria", "Ursula", "Monika", "Petra", "Sabine", "Renate", "Helga", "Karin",
           "Brigitte", "Ingrid", "Elke", "Gisela", "Claudia", "Susanne", "Andrea", "Birgit",
           "Heike", "Gabriele", "Christa", "Erika", "Jutta", "Angelika", "Marion", "Doris")
GIVEN_M = ("Peter", "Klaus", "Wolfgang", "Juergen", "Dieter", "Manfred", "Uwe", "Horst",
           "Bernd", "Thomas", "Michael", "Werner", "Gerhard", "Frank", "Rainer", "Hans")
FAMILY = ("Mueller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
          "Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Schwarz",
          "Zimmermann", "Braun", "Krueger", "Hofmann", "Hartmann", "Lange", "Werner", "Krause",
          "Lehmann", "Koehler", "Maier", "Herrmann", "Walter", "Peters", "Kaiser", "Fuchs")


# ICD-10-CM 4th character of C50 (CODES.md §1.1); the upper-outer quadrant is the most common site
BREAST_SITE_DRAW = ("4", "4", "4", "4", "8", "2", "3", "5", "1", "9")


def birth_date_for_age(rng, on: date, age: int) -> date:
    """A birth date giving exactly ``age`` completed years on ``on``."""
    try:
        latest = on.replace(year=on.year - age)
    except ValueError:  # 29 February
        latest = on.replace(year=on.year - age, day=28)
    return latest - days(rng.randint(0, 364))


def patient(rec: Record, sex: str, birth: date, deceased: date | None, cancer: bool = True) -> dict:
    res, _ = rec.new("Patient", rec.patient_id)
    if cancer:
        res["meta"] = {"profile": [C.P_PATIENT]}
    rng = rec.rng
    res["identifier"] = [{"system": C.MRN_SYSTEM, "value": f"{rng.randint(10_000_000, 99_999_999)}"}]
    given = rng.choice(GIVEN_M if sex == "M" else GIVEN_F)
    res["name"] = [{"family": rng.choice(FAMILY), "given": [given]}]
    res["gender"] = "male" if sex == "M" else "female"
    res["birthDate"] = birth.isoformat()
    if deceased is not None:
        res["deceasedDateTime"] = deceased.isoformat()
    return res


def _condition(rec: Record, codings: tuple | list, onset: date, *, profile: str | None = None,
               category: list = C.CAT_PROBLEM, clinical: dict = C.CLIN_ACTIVE,
               text: str | None = None, extension: list | None = None) -> tuple[dict, Ref]:
    res, r = rec.new("Condition")
    if profile:
        res["meta"] = {"profile": [profile]}
    if extension:
        res["extension"] = extension
    res["clinicalStatus"] = clinical
    res["verificationStatus"] = C.VER_CONFIRMED
    res["category"] = category
    res["code"] = C.cc(*codings, text=text)
    res["subject"] = rec.subject
    res["onsetDateTime"] = onset.isoformat()
    res["recordedDate"] = (onset + days(rec.rng.randint(0, 6))).isoformat()
    return res, r


def breast_primary(rec: Record, sex: str, onset: date, histology: str | None, *,
                   style: str = "both") -> tuple[dict, Ref]:
    """mCODE PrimaryCancerCondition; ``style`` 'both' | 'icd' | 'sct' picks the codings."""
    rng = rec.rng
    site = rng.choice(BREAST_SITE_DRAW)
    side = rng.choice(("left", "right"))
    icd = C.icd_breast(site, sex, side)
    sct = {"ductal": C.SCT_IDC_BREAST, "lobular": C.SCT_ILC_BREAST}.get(histology or "", C.SCT_BREAST_CA)
    if sex == "F" and side == "left" and histology is None and style == "sct":
        sct = C.SCT_BREAST_CA_LEFT_F
    codings = {"both": (icd, sct), "icd": (icd,), "sct": (sct,)}[style]
    morph = {"ductal": C.ICDO3_IDC, "lobular": C.ICDO3_ILC}.get(histology or "")
    ext = [{"url": C.X_HISTOLOGY, "valueCodeableConcept": {"coding": [morph]}}] if morph else None
    res, r = _condition(rec, codings, onset, profile=C.P_PRIMARY, extension=ext)
    res["bodySite"] = [{
        "extension": [{"url": C.X_LATERALITY, "valueCodeableConcept": {"coding": [C.LATERALITY[side]]}}],
        "coding": [C.coding(C.ICDO3, f"C50.{site}")],
    }]
    return res, r


def other_primary(rec: Record, codings: tuple, onset: date) -> tuple[dict, Ref]:
    return _condition(rec, codings, onset, profile=C.P_PRIMARY)


def plain_condition(rec: Record, codings: tuple, onset: date, *, text: str | None = None,
                    category: list = C.CAT_PROBLEM) -> tuple[dict, Ref]:
    return _condition(rec, codings, onset, text=text, category=category)


def secondary(rec: Record, site: str, onset: date, primary: Ref, *,
              evidence: Ref | None = None, text: str | None = None) -> tuple[dict, Ref]:
    """mCODE SecondaryCancerCondition for ``site`` (CODES.md §1.2), linked to the primary."""
    ext = [{"url": C.X_CONDITION_RELATED, "valueReference": ref(primary)}]
    res, r = _condition(rec, C.METASTASIS[site], onset, profile=C.P_SECONDARY, text=text,
                        extension=ext)
    if evidence is not None:
        res["evidence"] = [{"detail": [ref(evidence)]}]
    return res, r


def stage_group(rec: Record, stage: str, on: date, primary: Ref, *, generic: bool = False) -> Ref:
    """Clinical TNM stage group at diagnosis (CODES.md §2); AJCC 5th ed. before 2003, else 6th."""
    res, r = rec.new("Observation")
    res["meta"] = {"profile": [C.P_STAGE_GROUP]}
    res["status"] = "final"
    res["code"] = {"coding": [C.SCT_CLINICAL_STAGE_GROUP]}
    res["subject"] = rec.subject
    res["focus"] = [ref(primary)]
    res["effectiveDateTime"] = on.isoformat()
    code = (C.STAGE_GENERIC_SCT if generic else C.STAGE_AJCC_SCT)[stage]
    res["valueCodeableConcept"] = {"coding": [C.coding(C.SCT, code)], "text": stage}
    if on.year >= 2003:
        res["method"] = {"coding": [C.AJCC_6TH], "text": "AJCC Cancer Staging Manual, 6th edition"}
    else:
        res["method"] = {"text": "AJCC Cancer Staging Manual, 5th edition"}
    return r


def link_stage(primary_res: dict, stage_ref: Ref, stage: str) -> None:
    primary_res["stage"] = [{"summary": {"text": stage}, "assessment": [ref(stage_ref)]}]


def histologic_grade(rec: Record, grade: str, on: date, primary: Ref) -> None:
    """Histologic grade (NCIt C18000; G1-G3 SNOMED, CODES.md §1.3). '2-3' stays text only."""
    res, _ = rec.new("Observation")
    res["meta"] = {"profile": [C.P_GRADE]}
    res["status"] = "final"
    res["code"] = {"coding": [C.NCIT_HISTOLOGIC_GRADE]}
    res["subject"] = rec.subject
    res["focus"] = [ref(primary)]
    res["effectiveDateTime"] = on.isoformat()
    if grade in C.GRADE_SCT:
        res["valueCodeableConcept"] = {"coding": [C.coding(C.SCT, C.GRADE_SCT[grade])], "text": f"G{grade}"}
    else:
        res["valueCodeableConcept"] = {"text": f"G{grade}"}


def tumor_marker(rec: Record, marker: str, positive: bool, on: date, primary: Ref, *,
                 sct_answers: bool = False) -> None:
    """ER / PR / HER2 (CODES.md §3); answers as LOINC LA codes or, for variation, SNOMED."""
    res, _ = rec.new("Observation")
    res["meta"] = {"profile": [C.P_TUMOR_MARKER]}
    res["status"] = "final"
    res["category"] = C.CAT_LAB
    res["code"] = {"coding": [{"er": C.ER_LOINC, "pr": C.PR_LOINC, "her2": C.HER2_LOINC}[marker]]}
    res["subject"] = rec.subject
    res["focus"] = [ref(primary)]
    res["effectiveDateTime"] = ts(on, 14 * 60)
    if sct_answers:
        ans = C.POS_SCT if positive else C.NEG_SCT
    else:
        ans = C.POS_LOINC if positive else C.NEG_LOINC
    res["valueCodeableConcept"] = {"coding": [ans]}


def marrow_biopsy(rec: Record, on: date, primary: Ref, encounter: Ref | None, conclusion: str,
                  ) -> Ref:
    """Bone marrow trephine biopsy (CPT 38221 + SNOMED 86273004, bodySite bone marrow) and its
    pathology report (LOINC 33721-2, conclusionCode SNOMED 94217008), CODES.md §6.1-6.2.

    Returns the DiagnosticReport reference (evidence for the C79.52 Condition).
    """
    proc, _ = rec.new("Procedure")
    proc["status"] = "completed"
    proc["code"] = C.cc(C.CPT_MARROW_BIOPSY, C.SCT_BIOPSY, text="Bone marrow trephine biopsy")
    proc["subject"] = rec.subject
    if encounter is not None:
        proc["encounter"] = ref(encounter)
    proc["performedDateTime"] = ts(on, 10 * 60 + rec.rng.randint(0, 90))
    proc["bodySite"] = [{"coding": [C.SCT_BONE_MARROW]}]
    proc["reasonReference"] = [ref(primary)]
    rep, r = rec.new("DiagnosticReport")
    rep["status"] = "final"
    rep["category"] = [C.REPORT_CAT_SP]
    rep["code"] = {"coding": [C.LOINC_MARROW_REPORT]}
    rep["subject"] = rec.subject
    if encounter is not None:
        rep["encounter"] = ref(encounter)
    rep["effectiveDateTime"] = proc["performedDateTime"]
    rep["issued"] = ts(on + days(rec.rng.randint(2, 4)), 15 * 60)
    rep["conclusion"] = conclusion
    rep["conclusionCode"] = [{"coding": [C.METASTASIS["marrow"][1]]}]
    return r


def transfusion(rec: Record, on: date, units: int = 2) -> None:
    """Red-cell transfusion (SNOMED 116863004 / CPT 36430)."""
    res, _ = rec.new("Procedure")
    res["status"] = "completed"
    res["code"] = C.cc(C.SCT_RBC_TRANSFUSION, C.CPT_TRANSFUSION,
                       text=f"Transfusion of {units} units packed red cells")
    res["subject"] = rec.subject
    res["performedDateTime"] = ts(on, 13 * 60)


def disease_status(rec: Record, response: str, on: date, primary: Ref) -> None:
    """mCODE CancerDiseaseStatus (LOINC 97509-4), CODES.md §9."""
    code, text = C.RESPONSE[response]
    res, _ = rec.new("Observation")
    res["meta"] = {"profile": [C.P_DISEASE_STATUS]}
    res["extension"] = [{"url": C.X_STATUS_EVIDENCE, "valueCodeableConcept": {"coding": [C.EVIDENCE_IMAGING]}}]
    res["status"] = "final"
    res["code"] = {"coding": [C.DISEASE_STATUS_CODE]}
    res["subject"] = rec.subject
    res["focus"] = [ref(primary)]
    res["effectiveDateTime"] = ts(on, 12 * 60)
    res["valueCodeableConcept"] = {"coding": [code], "text": text}


def adverse_condition(rec: Record, codings: tuple, onset: date, grade: int, resolved: date,
                      encounter: Ref | None = None, text: str | None = None) -> None:
    """A complication (febrile neutropenia, bleeding) as a Condition with its CTCAE grade in
    ``severity`` (NCIt grade codes, CODES.md §5.4)."""
    res, _ = rec.new("Condition")
    res["clinicalStatus"] = C.CLIN_RESOLVED
    res["verificationStatus"] = C.VER_CONFIRMED
    res["category"] = C.CAT_ENCOUNTER_DX
    res["severity"] = C.cc(C.AE_GRADE[grade], text=f"CTCAE grade {grade}")
    res["code"] = C.cc(*codings, text=text)
    res["subject"] = rec.subject
    if encounter is not None:
        res["encounter"] = ref(encounter)
    res["onsetDateTime"] = onset.isoformat()
    res["abatementDateTime"] = resolved.isoformat()


def body_surface_area(rec: Record, on: date, minute: int, m2: float) -> None:
    """Body surface area (LOINC 8277-6, UCUM m2), measured before a regimen's first dose:
    the doses in mg are this area times the protocol dose per m2."""
    res, _ = rec.new("Observation")
    res["status"] = "final"
    res["category"] = C.CAT_VITAL
    res["code"] = {"coding": [C.BSA]}
    res["subject"] = rec.subject
    res["effectiveDateTime"] = ts(on, minute)
    res["valueQuantity"] = {"value": m2, "unit": "m2", "system": C.UCUM, "code": "m2"}


def temperature(rec: Record, on: date, minute: int, celsius: float) -> None:
    res, _ = rec.new("Observation")
    res["status"] = "final"
    res["category"] = C.CAT_VITAL
    res["code"] = {"coding": [C.BODY_TEMP]}
    res["subject"] = rec.subject
    res["effectiveDateTime"] = ts(on, minute)
    res["valueQuantity"] = {"value": celsius, "unit": "C", "system": C.UCUM, "code": "Cel"}


def declined_chemotherapy(rec: Record, encounter: Ref, primary: Ref) -> None:
    """Chemotherapy offered but declined: Procedure SNOMED 367336001, status ``not-done``."""
    res, _ = rec.new("Procedure")
    res["status"] = "not-done"
    res["statusReason"] = {"text": "Patient declined chemotherapy"}
    res["code"] = C.cc(C.SCT_CHEMOTHERAPY, text="Palliative chemotherapy")
    res["subject"] = rec.subject
    res["encounter"] = ref(encounter)
    res["reasonReference"] = [ref(primary)]

"""The BMC cohort definition, rule by rule: for every rule a patient just inside and one just
outside it. All patients live in one small export (one load per module); each test names the
rule it specifies and looks at its own patients.

Baseline of a "smear" patient: breast cancer (C50.412), normal counts, and on DAY an nRBC
result > 0; the cytopenia that should (or should not) make the smear count is varied.
"""
from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from cohort.definition import build_cohort
from cohort.errors import UsageError
from tests.cohort.test_cohort_charts import (
    FEMALE,
    ICD10,
    ICD10CM,
    MALE,
    SCT,
    Chart,
    at,
    build_db,
    fhir_id,
)

DAY = date(2004, 6, 1)


def d(offset: int = 0) -> str:
    return (DAY + timedelta(days=offset)).isoformat()


def smear_patient(name: str, sex: str = "female", nrbc=3, **kw) -> Chart:
    """Breast cancer, an nRBC-positive count on DAY with normal values (no cytopenia yet)."""
    ch = Chart(name, sex)
    ch.breast_cancer()
    ch.cbc(at(d()), nrbc=nrbc, hgb_low=13.5 if sex == "male" else 12.0, **kw)
    return ch


CHARTS: dict[str, Chart] = {}


def chart(name: str, sex: str = "female", nrbc=3, **kw) -> Chart:
    ch = smear_patient(name, sex, nrbc, **kw)
    CHARTS[name] = ch
    return ch


def plain(name: str, sex: str = "female") -> Chart:
    ch = Chart(name, sex)
    CHARTS[name] = ch
    return ch


# --- smear window: +/-14 days, both ends inclusive -------------------------------------------
chart("win_plus14").lab("hgb", 9.1, at(d(14)), low=12.0)
chart("win_plus15").lab("hgb", 9.1, at(d(15)), low=12.0)
chart("win_minus14").lab("plt", 60, at(d(-14)), low=150)
chart("win_minus15").lab("plt", 60, at(d(-15)), low=150)

# --- LLN from the result's own range, sex-matched, or the default ---------------------------
chart("lln_below_own").lab("hgb", 11.9, at(d(1)), low=12.0)
chart("lln_at_own").lab("hgb", 12.0, at(d(1)), low=12.0)
chart("lln_own_beats_default").lab("wbc", 4.2, at(d(1)), low=4.0)       # default 4.5 would say G1
chart("lln_default_below").lab("wbc", 4.4, at(d(1)))                      # no range: 4.5
chart("lln_default_at").lab("wbc", 4.5, at(d(1)))
_both_sexes = [{"low": {"value": 12.0, "system": "http://unitsofmeasure.org", "code": "g/dL"},
                "appliesTo": [FEMALE]},
               {"low": {"value": 13.5, "system": "http://unitsofmeasure.org", "code": "g/dL"},
                "appliesTo": [MALE]}]
chart("lln_male_matched", "male").lab("hgb", 13.1, at(d(1)), ranges=_both_sexes)
chart("lln_female_matched").lab("hgb", 13.1, at(d(1)), ranges=_both_sexes)
chart("lln_male_default", "male").lab("hgb", 13.2, at(d(1)))             # default M 13.5
chart("lln_female_default").lab("hgb", 13.2, at(d(1)))                   # default F 12.0
chart("lln_range_in_other_unit").lab("hgb", 11.5, at(d(1)), low=120, low_unit="g/L")
_RRM = "http://terminology.hl7.org/CodeSystem/referencerange-meaning"


def typed_range(low: float, meaning: str) -> list[dict]:
    return [{"low": {"value": low, "unit": "g/dL", "system": "http://unitsofmeasure.org",
                     "code": "g/dL"}, "type": {"coding": [{"system": _RRM, "code": meaning}]}}]


chart("lln_normal_typed").lab("hgb", 11.0, at(d(1)), ranges=typed_range(11.5, "normal"))
chart("lln_treatment_typed").lab("hgb", 11.0, at(d(1)), ranges=typed_range(10.0, "treatment"))
chart("lln_range_unit_mixup").lab("hgb", 11.5, at(d(1)), low=120, low_unit=None)  # g/L meant

# --- units: each variant is the only cytopenia ---------------------------------------------------
chart("unit_hgb_g_per_l").lab("hgb", 95, at(d(1)), unit="g/L", low=120)
chart("unit_hgb_g_per_l_normal").lab("hgb", 125, at(d(1)), unit="g/L")
chart("unit_hgb_mmol").lab("hgb_molar", 5.5, at(d(1)), unit="mmol/L")     # 8.9 g/dL
chart("unit_hgb_mmol_normal").lab("hgb_molar", 8.0, at(d(1)), unit="mmol/L")  # 12.9 g/dL
chart("unit_plt_10e9").lab("plt", 70, at(d(1)), unit="10*9/L", low=150)
chart("unit_plt_per_ul").lab("plt", 70000, at(d(1)), unit="/uL", low=150000)
chart("unit_plt_per_ul_normal").lab("plt", 150000, at(d(1)), unit="/uL", low=150000)
chart("unit_plt_k_per_ul").lab("plt", 74, at(d(1)), unit="K/uL", ucum=False)
chart("unit_plt_per_mm3_text").lab("plt", 70000, at(d(1)), unit="/mm3", ucum=False)
chart("unit_not_convertible").lab("plt", 70, at(d(1)), unit="mg")
chart("unit_missing").lab("hgb", 9.0, at(d(1)), unit=None)

# --- comparators --------------------------------------------------------------------------------
chart("cmp_plt_lt_25").lab("plt", 25, at(d(1)), comparator="<", low=150)
chart("cmp_plt_lt_lln").lab("plt", 150, at(d(1)), comparator="<", low=150)
chart("cmp_plt_le_lln").lab("plt", 150, at(d(1)), comparator="<=", low=150)
plain("cmp_nrbc_lt_1").breast_cancer()
CHARTS["cmp_nrbc_lt_1"].cbc(at(d()), hgb=9.0)
CHARTS["cmp_nrbc_lt_1"].lab("nrbc", 1, at(d()), comparator="<")
plain("cmp_nrbc_gt_0").breast_cancer()
CHARTS["cmp_nrbc_gt_0"].cbc(at(d()), hgb=9.0)
CHARTS["cmp_nrbc_gt_0"].lab("nrbc", 0, at(d()), comparator=">")

# --- CBC panel components ------------------------------------------------------------------------
plain("panel_nrbc_anaemia").breast_cancer()
CHARTS["panel_nrbc_anaemia"].panel(at(d()), hgb=9.0, nrbc=4)
plain("panel_nrbc_zero").breast_cancer()
CHARTS["panel_nrbc_zero"].panel(at(d()), hgb=9.0, nrbc=0)

# --- effectivePeriod: the closest ends of the two periods count ---------------------------------
plain("period_inside").breast_cancer()
CHARTS["period_inside"].lab("nrbc", 5, at(d(-1), "23:50:00+01:00"), period_end=at(d(0), "00:20:00+01:00"))
CHARTS["period_inside"].lab("hgb", 9.0, at(d(14)), low=12.0)
plain("period_outside").breast_cancer()
CHARTS["period_outside"].lab("nrbc", 5, at(d(-1), "23:50:00+01:00"), period_end=at(d(0), "00:20:00+01:00"))
CHARTS["period_outside"].lab("hgb", 9.0, at(d(15)), low=12.0)

# --- entered-in-error, cancelled, corrected versions ---------------------------------------------
plain("eie_nrbc").breast_cancer()
CHARTS["eie_nrbc"].lab("nrbc", 6, at(d()), status="entered-in-error")
CHARTS["eie_nrbc"].lab("hgb", 10.5, at(d()), low=12.0)
chart("eie_cytopenia").lab("hgb", 9.0, at(d(1)), low=12.0, status="entered-in-error")
chart("cancelled_cytopenia").lab("hgb", 9.0, at(d(1)), low=12.0, status="cancelled")
_cv = plain("corrected_up")
_cv.breast_cancer()
_cv.lab("hgb", 9.5, at(d()), low=12.0)
_cv.new_version(_cv.lab("nrbc", 0, at(d()), status="preliminary"), value=2, status="corrected")
_cd = plain("corrected_down")
_cd.breast_cancer()
_cd.lab("hgb", 9.5, at(d()), low=12.0)
_cd.new_version(_cd.lab("nrbc", 3, at(d())), value=0, status="corrected")
chart("preliminary_resent")  # preliminary Hgb 9.0, then a final 12.5 under a new id, same time
CHARTS["preliminary_resent"].lab("hgb", 9.0, at(d(2)), low=12.0, status="preliminary")
CHARTS["preliminary_resent"].lab("hgb", 12.5, at(d(2)), low=12.0)
chart("preliminary_alone").lab("hgb", 9.0, at(d(2)), low=12.0, status="preliminary")

# --- histology / cytology ----------------------------------------------------------------------------
plain("hist_condition").breast_cancer()
CHARTS["hist_condition"].marrow_dx(onset=d())
plain("hist_condition_refuted").breast_cancer()
CHARTS["hist_condition_refuted"].marrow_dx(onset=d(), verification="refuted")
plain("hist_condition_eie").breast_cancer()
CHARTS["hist_condition_eie"].marrow_dx(onset=d(), verification="entered-in-error")
plain("hist_condition_recorded_only").breast_cancer()
CHARTS["hist_condition_recorded_only"].marrow_dx(onset=None, recorded=d(3))
_sb = plain("coded_from_smear_no_cytopenia")  # Table II patient 2
_sb.breast_cancer()
_keys = _sb.cbc(at(d()), nrbc=5)
_sb.marrow_dx(onset=d(), evidence=[_keys["nrbc"]])
_sc = plain("coded_from_smear_with_cytopenia")
_sc.breast_cancer()
_keys = _sc.cbc(at(d()), hgb=9.0, nrbc=5)
_sc.marrow_dx(onset=d(), evidence=[_keys["nrbc"]])
plain("report_positive").breast_cancer()
CHARTS["report_positive"].marrow_report(at(d(), "10:55:00+02:00"))
plain("report_aspirate_morphology").breast_cancer()
CHARTS["report_aspirate_morphology"].marrow_report(
    at(d()), code="48807-2", conclusion=("http://terminology.hl7.org/CodeSystem/icd-o-3", "8000/6"))
plain("report_negative").breast_cancer()
CHARTS["report_negative"].marrow_report(at(d()), conclusion=(SCT, "260385009"))
plain("report_eie").breast_cancer()
CHARTS["report_eie"].marrow_report(at(d()), status="entered-in-error")
plain("report_no_effective").breast_cancer()
_r = CHARTS["report_no_effective"].resources[-1]
CHARTS["report_no_effective"].marrow_report(at(d()), issued=at(d(4)))
CHARTS["report_no_effective"].resources[-1].pop("effectiveDateTime")

# --- breast cancer --------------------------------------------------------------------------------
for name, code in (("bc_icd_no_dot", (ICD10CM, "C50912")), ("bc_sct", (SCT, "254837009")),
                   ("bc_who_icd10", (ICD10, "C50.9")), ("bc_prostate", (ICD10CM, "C61"))):
    _p = plain(name)
    _p.breast_cancer(code=code)
    _p.marrow_dx(onset=d())
_p = plain("bc_refuted")
_p.breast_cancer(verification="refuted")
_p.marrow_dx(onset=d())
_p = plain("bc_remission")
_p.breast_cancer(clinical="remission")
_p.marrow_dx(onset=d())

# --- alternative causes: the smear route only ------------------------------------------------------
for name, code in (("alt_hemolysis", "D59.9"), ("alt_mds", "D46.9"), ("alt_pmf", "D47.4"),
                   ("alt_secondary_mf", "D75.81"), ("alt_sickle_no_dot", "D5700")):
    chart(name).lab("hgb", 9.0, at(d(1)), low=12.0)
    CHARTS[name].condition((ICD10CM, code), onset="2003-02-02")
chart("alt_refuted").lab("hgb", 9.0, at(d(1)), low=12.0)
CHARTS["alt_refuted"].condition((ICD10CM, "D46.9"), verification="refuted")
_h = plain("alt_with_histology")
_h.breast_cancer()
_h.marrow_report(at(d()))
_h.condition((ICD10CM, "D46.9"))

# --- dates: partial, time zones, index and route --------------------------------------------------------
plain("partial_month").breast_cancer(onset="2001-03")
CHARTS["partial_month"].lab("nrbc", 2, "2004-06")
CHARTS["partial_month"].lab("hgb", 9.0, at("2004-07-12"), low=12.0)   # 11 days after June
plain("partial_month_out").breast_cancer()
CHARTS["partial_month_out"].lab("nrbc", 2, "2004-06")
CHARTS["partial_month_out"].lab("hgb", 9.0, at("2004-07-16"), low=12.0)  # 15 days after June
plain("midnight_local").breast_cancer()
CHARTS["midnight_local"].cbc(at("2001-01-28", "00:35:00+01:00"), hgb=9.0, nrbc=4)
_b = chart("route_both_smear_first")
_b.lab("hgb", 9.0, at(d()), low=12.0)
_b.marrow_report(at(d(10)))
_i = plain("index_grades")
_i.breast_cancer()
_i.lab("nrbc", 2, at(d()))
_i.lab("plt", 60, at(d(-5)), low=150)   # grade 2, further away
_i.lab("plt", 40, at(d(-2)), low=150)   # grade 3, nearest before
_i.lab("plt", 100, at(d(2)), low=150)   # grade 1, as near but after


# --- sourced code families (issue 11 §1): one just inside, one just outside each ------------------
ICD9 = "http://hl7.org/fhir/sid/icd-9-cm"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
for name, code in (
        ("bc_sct_descendant", (SCT, "93745008")),     # primary malignant neoplasm, central portion of female breast
        ("bc_sct_skin_of_breast", (SCT, "94012007")),  # skin of breast: review_excluded, not breast cancer
        ("bc_icd9_174", (ICD9, "174.9")),              # ICD-9-CM malignant neoplasm of female breast
        ("bc_icd9_no_dot", (ICD9, "1749")),
        ("bc_icd9_in_situ", (ICD9, "233.0")),          # ICD-9-CM carcinoma in situ of breast
        ("bc_icdo3_topography", (ICDO3, "C50.9")),     # ICD-O-3 topography, breast NOS
        ("bc_icdo3_no_dot", (ICDO3, "C509")),          # as registries write it
        ("bc_icdo3_lung", (ICDO3, "C34.9")),
        ("bc_in_situ", (ICD10CM, "D05.11")),           # intraductal carcinoma in situ of right breast
        ("bc_inflammatory", (ICD10CM, "C50.A1"))):     # new in ICD-10-CM FY2025
    _p = plain(name)
    _p.breast_cancer(code=code)
    _p.marrow_dx(onset=d())


def recoded(ch: Chart, key: str, system: str, code: str) -> None:
    """Give the resource ``key`` of ``ch`` another code (a LOINC the chart helper has no name for)."""
    rid = key.split("/", 1)[1]
    res = next(r for r in ch.resources if r["id"] == rid)
    res["code"] = {"coding": [{"system": system, "code": code}]}


# alternate LOINC codes: venous haemoglobin and NRBC-corrected WBC are counts; a haemoglobin
# taken before a therapeutic phlebotomy is not
_v = chart("loinc_venous_hgb")
recoded(_v, _v.lab("hgb", 9.0, at(d(1)), low=12.0), "http://loinc.org", "30350-3")
_v = chart("loinc_corrected_wbc")
recoded(_v, _v.lab("wbc", 2.5, at(d(1)), low=4.0), "http://loinc.org", "12227-5")
_v = chart("loinc_pre_phlebotomy_hgb")
recoded(_v, _v.lab("hgb", 9.0, at(d(1)), low=12.0), "http://loinc.org", "48725-6")
_n = plain("loinc_normoblasts")            # nRBC as normoblasts/leukocytes (33990-3)
_n.breast_cancer()
recoded(_n, _n.lab("nrbc", 2, at(d())), "http://loinc.org", "33990-3")
_n.lab("hgb", 9.0, at(d()), low=12.0)
_n = plain("loinc_not_nrbc")               # the same count under a code that is not nRBC
_n.breast_cancer()
recoded(_n, _n.lab("nrbc", 2, at(d())), "http://loinc.org", "770-8")
_n.lab("hgb", 9.0, at(d()), low=12.0)

# marrow codes that support but never prove BMC: myelophthisis and bone-AND-marrow codes
for name, code in (("marrow_myelophthisis_only", (ICD10CM, "D61.82")),
                   ("marrow_myelophthisic_anaemia_only", (SCT, "2694001")),
                   ("marrow_icd9_198_5_only", (ICD9, "198.5")),
                   ("marrow_who_c79_5_only", (ICD10, "C79.5")),
                   ("marrow_c79_52", (ICD10CM, "C79.52"))):
    _p = plain(name)
    _p.breast_cancer()
    _p.condition(code, onset=d())

# reference ranges whose appliesTo is v3-AdministrativeGender F/M (as clinosim writes them):
# the male range first; a woman's 12.5 g/dL is normal, a man's is anaemia grade 1
_V3G = "http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender"
_v3_ranges = [{"low": {"value": 13.5, "system": "http://unitsofmeasure.org", "code": "g/dL"},
               "appliesTo": [{"coding": [{"system": _V3G, "code": "M"}]}]},
              {"low": {"value": 12.0, "system": "http://unitsofmeasure.org", "code": "g/dL"},
               "appliesTo": [{"coding": [{"system": _V3G, "code": "F"}]}]}]
chart("lln_v3_gender_female").lab("hgb", 12.5, at(d(1)), ranges=_v3_ranges)
chart("lln_v3_gender_male", "male").lab("hgb", 12.5, at(d(1)), ranges=_v3_ranges)
# a range only for men, on a woman's result: never used; her default (12.0) applies
chart("lln_other_sex_only").lab("hgb", 12.5, at(d(1)), ranges=_v3_ranges[:1])

# alternative causes added by issue 11 §3b: leukaemia, marrow transplant, aplastic anaemia
for name, code in (("alt_leukaemia_sct", (SCT, "93143009")), ("alt_cll", (ICD10CM, "C91.10")),
                   ("alt_marrow_transplant", (ICD10CM, "Z94.81")),
                   ("alt_aplastic", (ICD10CM, "D61.9")),
                   ("alt_icd9_legacy_238_7", (ICD9, "238.7")),
                   ("alt_pancytopenia_not_a_cause", (ICD10CM, "D61.818")),
                   ("alt_sickle_trait_not_a_cause", (ICD10CM, "D57.3"))):
    chart(name).lab("hgb", 9.0, at(d(1)), low=12.0)
    CHARTS[name].condition(code, onset="2003-02-02")


# --- references as absolute URLs (a server's Bulk export may write them so) -------------------
def absolute_refs(ch: Chart, base: str = "http://example.org/fhir/") -> None:
    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "reference" and isinstance(v, str):
                    node[k] = base + v
                else:
                    walk(v)
        elif isinstance(node, list):
            for x in node:
                walk(x)
    walk(ch.resources)


for name, hgb in (("abs_refs_smear_with_cytopenia", 9.0), ("abs_refs_smear_no_cytopenia", 13.0)):
    _a = plain(name)
    _a.breast_cancer()
    _k = _a.cbc(at(d()), hgb=hgb, nrbc=4)
    _a.marrow_dx(onset=d(), evidence=[_k["nrbc"]])
    absolute_refs(_a)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build_db(tmp_path_factory.mktemp("rules"), list(CHARTS.values()))


@pytest.fixture(scope="module")
def result(db):
    return build_cohort(db)


def members(result) -> set[str]:
    """Cohort members by test name."""
    return {p.replace("-", "_") for p in result.cohort.patient_id}


def rules_of(db, name: str) -> dict:
    row = db.execute("SELECT * FROM bmc_patient_rule WHERE patient_id = ?",
                     [fhir_id(name)]).df()
    return row.iloc[0].to_dict()


def row(result, name: str) -> dict:
    r = result.cohort[result.cohort.patient_id == fhir_id(name)]
    assert len(r) == 1, f"{name} not in the cohort"
    return r.iloc[0].to_dict()


def lab_row(db, name: str, analyte: str, value_raw: float | None = None) -> dict:
    q = "SELECT * FROM bmc_lab WHERE patient_key = ? AND analyte = ?"
    df = db.execute(q, ["Patient/" + fhir_id(name), analyte]).df()
    if value_raw is not None:
        df = df[df.value_raw == value_raw]
    assert len(df) == 1, df
    return df.iloc[0].to_dict()


def grade_of(db, name: str, analyte: str, value_raw: float) -> int:
    df = db.execute("SELECT grade FROM bmc_lab_grade WHERE patient_key = ? AND analyte = ? "
                    "AND value_raw = ?", ["Patient/" + fhir_id(name), analyte, value_raw]).fetchall()
    assert len(df) == 1, df
    return df[0][0]


def test_cytopenia_counts_within_14_days_either_side_of_the_smear_and_not_beyond(result, db):
    assert {"win_plus14", "win_minus14"} <= members(result)
    assert not {"win_plus15", "win_minus15"} & members(result)
    assert rules_of(db, "win_plus15")["failed_rules"] == "smear_cytopenia"


def test_the_smear_window_is_a_parameter(db):
    wider = build_cohort(db, {"smear_window_days": 15})
    assert {"win_plus15", "win_minus15"} <= members(wider)
    narrower = build_cohort(db, {"smear_window_days": 13})
    assert not {"win_plus14", "win_minus14"} & members(narrower)
    build_cohort(db)  # leave the default tables for the other tests


def test_smear_index_date_is_the_nrbc_date_or_when_both_facts_are_met(db, result):
    assert str(row(result, "win_plus14")["index_date"])[:10] == d()
    later = build_cohort(db, {"smear_index_date": "both-met"})
    assert str(row(later, "win_plus14")["index_date"])[:10] == d(14)
    assert str(row(later, "win_minus14")["index_date"])[:10] == d()
    build_cohort(db)


def test_lln_comes_from_the_results_own_range(result, db):
    assert "lln_below_own" in members(result)
    assert "lln_at_own" not in members(result)
    assert "lln_own_beats_default" not in members(result)
    assert lab_row(db, "lln_own_beats_default", "wbc", 4.2)["lln_source"] == "result"


def test_without_a_range_the_sex_specific_default_lln_applies(result, db):
    assert "lln_default_below" in members(result)
    assert "lln_default_at" not in members(result)
    assert "lln_male_default" in members(result)
    assert "lln_female_default" not in members(result)
    assert lab_row(db, "lln_male_default", "hgb", 13.2)["lln"] == 13.5


def test_ranges_for_both_sexes_are_matched_to_the_patient(result, db):
    assert "lln_male_matched" in members(result)
    assert "lln_female_matched" not in members(result)
    r = lab_row(db, "lln_male_matched", "hgb", 13.1)
    assert (r["lln"], r["lln_source"]) == (13.5, "result (sex-matched range)")


def test_a_range_in_another_unit_is_converted_before_comparing(db):
    r = lab_row(db, "lln_range_in_other_unit", "hgb", 11.5)
    assert r["lln"] == pytest.approx(12.0)
    assert grade_of(db, "lln_range_in_other_unit", "hgb", 11.5) == 1


def test_only_normal_or_untyped_ranges_give_the_lln(db):
    assert lab_row(db, "lln_normal_typed", "hgb", 11.0)["lln"] == 11.5
    treatment = lab_row(db, "lln_treatment_typed", "hgb", 11.0)
    assert (treatment["lln"], treatment["lln_source"]) == (12.0, "default for female (no usable reference range on the result)")


def test_an_implausible_lln_is_a_unit_mix_up_and_the_default_is_used(db):
    r = lab_row(db, "lln_range_unit_mixup", "hgb", 11.5)
    assert (r["lln"], r["lln_source"]) == (12.0, "default for female (no usable reference range on the result)")


@pytest.mark.parametrize("name, analyte, raw, canonical, grade", [
    ("unit_hgb_g_per_l", "hgb", 95, 9.5, 2),
    ("unit_hgb_g_per_l_normal", "hgb", 125, 12.5, 0),
    ("unit_hgb_mmol", "hgb", 5.5, 5.5 * 1.6114, 2),
    ("unit_hgb_mmol_normal", "hgb", 8.0, 8.0 * 1.6114, 0),
    ("unit_plt_10e9", "plt", 70, 70, 2),
    ("unit_plt_per_ul", "plt", 70000, 70, 2),
    ("unit_plt_per_ul_normal", "plt", 150000, 150, 0),
    ("unit_plt_k_per_ul", "plt", 74, 74, 2),
    ("unit_plt_per_mm3_text", "plt", 70000, 70, 2),
])
def test_units_are_harmonised_to_the_canonical_unit_before_grading(db, name, analyte, raw,
                                                                    canonical, grade):
    r = lab_row(db, name, analyte, raw)
    assert r["value"] == pytest.approx(canonical)
    assert r["unit_status"] == "ok"
    assert grade_of(db, name, analyte, raw) == grade


def test_unit_variants_decide_membership_like_canonical_values(result):
    inside = {"unit_hgb_g_per_l", "unit_hgb_mmol", "unit_plt_10e9", "unit_plt_per_ul",
              "unit_plt_k_per_ul", "unit_plt_per_mm3_text"}
    outside = {"unit_hgb_g_per_l_normal", "unit_hgb_mmol_normal", "unit_plt_per_ul_normal"}
    assert inside <= members(result)
    assert not outside & members(result)


def test_values_whose_unit_cannot_be_converted_are_reported_not_guessed(result, db):
    assert not {"unit_not_convertible", "unit_missing"} & members(result)
    assert lab_row(db, "unit_not_convertible", "plt", 70)["not_used_reason"] == \
        "unit not convertible (mg)"
    assert lab_row(db, "unit_missing", "hgb", 9.0)["not_used_reason"] == "unit missing"
    issues = {(r.analyte, r.unit_status) for r in result.lab_issues.itertuples()}
    assert {("plt", "unit not convertible"), ("hgb", "unit missing")} <= issues
    assert any("not graded: unit not convertible ('mg')" in n for n in result.notes)


def test_a_comparator_is_graded_by_its_bound(db, result):
    assert grade_of(db, "cmp_plt_lt_25", "plt", 25) == 4      # '<25': below the grade-4 limit
    assert grade_of(db, "cmp_plt_lt_lln", "plt", 150) == 1    # '<150' with LLN 150
    assert grade_of(db, "cmp_plt_le_lln", "plt", 150) == 0    # '<=150' may be 150
    assert {"cmp_plt_lt_25", "cmp_plt_lt_lln"} <= members(result)
    assert "cmp_plt_le_lln" not in members(result)


def test_nrbc_comparators_count_only_when_the_bound_proves_nrbc_above_zero(result, db):
    assert "cmp_nrbc_gt_0" in members(result)
    assert "cmp_nrbc_lt_1" not in members(result)
    assert rules_of(db, "cmp_nrbc_lt_1")["failed_rules"] == "marrow_evidence"


def test_components_of_a_cbc_panel_are_read_like_separate_results(result):
    assert "panel_nrbc_anaemia" in members(result)
    assert "panel_nrbc_zero" not in members(result)


def test_effective_period_is_compared_at_its_closest_end(result):
    assert "period_inside" in members(result)
    assert "period_outside" not in members(result)


def test_entered_in_error_and_cancelled_results_never_count(result, db):
    assert not {"eie_nrbc", "eie_cytopenia", "cancelled_cytopenia"} & members(result)
    assert lab_row(db, "eie_nrbc", "nrbc_ratio")["not_used_reason"] == "status entered-in-error"
    ledger = db.execute("SELECT note FROM bmc_evidence WHERE patient_id = 'eie-nrbc' "
                        "AND role = 'nRBC result'").fetchall()
    assert ledger == [("not used: status entered-in-error",)]


def test_the_latest_version_of_a_result_counts(result):
    assert "corrected_up" in members(result)       # preliminary 0 corrected to 2
    assert "corrected_down" not in members(result)  # 3 corrected to 0


def test_a_preliminary_result_resent_as_final_under_a_new_id_is_superseded(result, db):
    assert "preliminary_resent" not in members(result)
    assert "preliminary_alone" in members(result)
    assert lab_row(db, "preliminary_resent", "hgb", 9.0)["not_used_reason"] == \
        "preliminary, superseded by a final result of the same time"


def test_a_coded_marrow_metastasis_proves_bmc_unless_refuted_or_entered_in_error(result):
    assert {"hist_condition", "hist_condition_recorded_only"} <= members(result)
    assert not {"hist_condition_refuted", "hist_condition_eie"} & members(result)
    assert row(result, "hist_condition")["route"] == "histology"
    assert str(row(result, "hist_condition_recorded_only")["index_date"])[:10] == d(3)


def test_a_coded_diagnosis_resting_on_a_smear_must_meet_the_smear_rule(result, db):
    """Table II patient 2: coded BMC from a smear without cytopenia is not admitted, and the
    funnel says so (lost only by the smear rule, with a coded marrow diagnosis)."""
    assert "coded_from_smear_no_cytopenia" not in members(result)
    rules = rules_of(db, "coded_from_smear_no_cytopenia")
    assert (rules["coded_marrow_dx"], rules["failed_rules"]) == (True, "smear_cytopenia")
    with_cyto = row(result, "coded_from_smear_with_cytopenia")
    assert (with_cyto["route"], bool(with_cyto["coded_marrow_dx"])) == ("smear", True)
    proof = build_cohort(db, {"coded_condition": "proof"})
    assert row(proof, "coded_from_smear_no_cytopenia")["route"] == "histology"
    never = build_cohort(db, {"coded_condition": "never"})
    assert "hist_condition" not in members(never)
    build_cohort(db)


def test_absolute_url_references_resolve_for_subjects_and_condition_evidence(result, db):
    r = row(result, "abs_refs_smear_with_cytopenia")
    assert (r["route"], bool(r["coded_marrow_dx"])) == ("smear", True)
    assert "abs_refs_smear_no_cytopenia" not in members(result)
    assert rules_of(db, "abs_refs_smear_no_cytopenia")["failed_rules"] == "smear_cytopenia"


def test_dates_do_not_depend_on_the_session_time_zone(db, monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14
    time.tzset()
    try:
        db.execute("SET TimeZone = 'Pacific/Kiritimati'")
        shifted = build_cohort(db)
        assert str(row(shifted, "midnight_local")["index_date"])[:10] == "2001-01-28"
        assert str(row(shifted, "win_plus14")["index_date"])[:10] == d()
    finally:
        db.execute("SET TimeZone = 'UTC'")
        monkeypatch.delenv("TZ")
        time.tzset()
        build_cohort(db)


def test_a_marrow_report_proves_bmc_when_its_conclusion_code_says_metastatic_carcinoma(result):
    assert {"report_positive", "report_aspirate_morphology"} <= members(result)
    assert not {"report_negative", "report_eie"} & members(result)
    assert str(row(result, "report_positive")["index_date"])[:10] == d()
    assert str(row(result, "report_no_effective")["index_date"])[:10] == d(4)  # issued


def test_breast_cancer_codes_come_from_the_value_set_with_icd_dots_normalised(result, db):
    assert {"bc_icd_no_dot", "bc_sct", "bc_who_icd10", "bc_remission"} <= members(result)
    assert not {"bc_prostate", "bc_refuted"} & members(result)
    assert rules_of(db, "bc_prostate")["failed_rules"] == "breast_cancer"


def test_alternative_causes_exclude_the_smear_route_only(result, db):
    excluded = {"alt_hemolysis", "alt_mds", "alt_pmf", "alt_sickle_no_dot"}
    assert not excluded & members(result)
    for name in excluded:
        assert rules_of(db, name)["failed_rules"] == "no_alt_cause"
    assert {"alt_secondary_mf", "alt_refuted", "alt_with_histology"} <= members(result)


def test_the_exclusion_and_its_value_sets_are_parameters(db):
    off = build_cohort(db, {"exclude_alt_causes": False})
    assert {"alt_hemolysis", "alt_mds"} <= members(off)
    wider = build_cohort(db, {"alt_cause_valuesets": "alt_cause_mds,alt_cause_secondary_myelofibrosis"})
    assert "alt_secondary_mf" not in members(wider)
    assert "alt_hemolysis" in members(wider)
    build_cohort(db)


def test_partial_dates_match_a_window_if_any_day_they_denote_does(result, db):
    assert "partial_month" in members(result)
    assert "partial_month_out" not in members(result)
    assert str(row(result, "partial_month")["index_date"])[:10] == "2004-06-01"
    assert lab_row(db, "partial_month", "nrbc_ratio")["date_precision"] == "month"


def test_dates_are_the_local_calendar_day_as_written(result):
    assert str(row(result, "midnight_local")["index_date"])[:10] == "2001-01-28"


def test_index_date_is_the_first_date_the_definition_is_met_and_route_names_both(result):
    r = row(result, "route_both_smear_first")
    assert (str(r["index_date"])[:10], r["route"]) == (d(), "both")
    assert str(r["histology_date"])[:10] == d(10)


def test_grades_at_index_come_from_the_nearest_count_earlier_on_a_tie(result):
    r = row(result, "index_grades")
    assert r["platelet_grade"] == 3
    assert pd.isna(r["anemia_grade"])  # no haemoglobin within the window


def test_unknown_parameters_are_a_usage_error_naming_the_valid_ones(db):
    with pytest.raises(UsageError, match="unknown parameter 'window'; valid parameters: "
                                         "smear_window_days, smear_index_date"):
        build_cohort(db, {"window": 3})
    with pytest.raises(UsageError, match="smear_window_days: expected a whole number"):
        build_cohort(db, {"smear_window_days": "two weeks"})


def test_funnel_counts_each_person_once_and_names_the_rule_that_alone_lost_them(result, db):
    f = result.funnel.set_index("rule")
    n = len(CHARTS)
    assert f.loc["population", "patients"] == n
    assert f.loc["no_alt_cause", "patients"] == len(result.cohort)
    sole = db.execute("SELECT failed_rules, count(*) FROM bmc_patient_rule "
                      "WHERE failed_rules NOT LIKE '%,%' AND failed_rules <> '' "
                      "GROUP BY 1").fetchall()
    for rule, count in sole:
        assert f.loc[rule, "lost_only_by_rule"] == count
    assert f.loc["smear_cytopenia", "lost_only_with_coded_dx"] == 2  # the two coded smear patients
    routes = f.loc[["histology only", "smear only", "both"], "patients"].sum()
    assert routes == len(result.cohort)


def test_evidence_ledger_points_at_the_source_line(db, result):
    ledger = db.execute(
        "SELECT role, counted, value, unit, grade, lln, source_file, source_line "
        "FROM bmc_evidence WHERE patient_id = 'unit-plt-per-ul' AND rule = 'smear_cytopenia' "
        "ORDER BY role").df()
    cyto = ledger[ledger.role.str.startswith("cytopenia")].iloc[0]
    assert (cyto.value, cyto.unit, cyto.grade, cyto.lln) == (70, "10*3/uL", 2, 150)
    assert cyto.source_file.endswith("Observation.000.ndjson") and cyto.source_line > 0


def test_the_same_charts_as_transaction_bundles_with_urn_uuid_references_give_the_same_cohort(
        result, tmp_path_factory):
    bundled = build_db(tmp_path_factory.mktemp("rules-bundles"), list(CHARTS.values()), "bundle")
    other = build_cohort(bundled)
    cols = ["patient_id", "index_date", "route", "anemia_grade", "platelet_grade", "wbc_grade",
            "coded_marrow_dx"]
    assert other.cohort[cols].equals(result.cohort[cols])
    assert other.funnel.equals(result.funnel)


def test_breast_cancer_in_any_sourced_code_system_and_not_in_situ_or_skin(result, db):
    """SNOMED descendants, ICD-9-CM 174.x, ICD-O-3 topography C50.x (dots or not) and the FY2025
    inflammatory codes are breast cancer; in situ (D05.x, 233.0), skin of breast and another
    topography are not (issue 11 §1)."""
    assert {"bc_sct_descendant", "bc_icd9_174", "bc_icd9_no_dot", "bc_icdo3_topography",
            "bc_icdo3_no_dot", "bc_inflammatory"} <= members(result)
    for name in ("bc_sct_skin_of_breast", "bc_icd9_in_situ", "bc_icdo3_lung", "bc_in_situ"):
        assert name not in members(result)
        assert rules_of(db, name)["failed_rules"] == "breast_cancer", name


def test_alternate_loinc_codes_of_the_sourced_lists_are_read(result, db):
    assert {"loinc_venous_hgb", "loinc_corrected_wbc", "loinc_normoblasts"} <= members(result)
    assert lab_row(db, "loinc_corrected_wbc", "wbc", 2.5)["code"] == "12227-5"
    assert not {"loinc_pre_phlebotomy_hgb", "loinc_not_nrbc"} & members(result)
    assert rules_of(db, "loinc_not_nrbc")["failed_rules"] == "marrow_evidence"


def test_myelophthisis_and_bone_and_marrow_codes_never_prove_bmc_alone(result, db):
    for name in ("marrow_myelophthisis_only", "marrow_myelophthisic_anaemia_only",
                 "marrow_icd9_198_5_only", "marrow_who_c79_5_only"):
        assert name not in members(result)
        assert rules_of(db, name)["failed_rules"] == "marrow_evidence", name
    assert "marrow_c79_52" in members(result)


def test_v3_administrative_gender_ranges_are_matched_to_the_patients_sex(result, db):
    assert "lln_v3_gender_female" not in members(result)
    assert "lln_v3_gender_male" in members(result)
    r = lab_row(db, "lln_v3_gender_female", "hgb", 12.5)
    assert (r["lln"], r["lln_source"]) == (12.0, "result (sex-matched range)")


def test_a_range_meant_for_the_other_sex_is_never_used(result, db):
    r = lab_row(db, "lln_other_sex_only", "hgb", 12.5)
    assert r["lln"] == 12.0 and r["lln_source"].startswith("default for female")
    assert "lln_other_sex_only" not in members(result)


def test_haematological_malignancy_transplant_and_marrow_failure_are_alternative_causes(result, db):
    for name in ("alt_leukaemia_sct", "alt_cll", "alt_marrow_transplant", "alt_aplastic",
                 "alt_icd9_legacy_238_7"):
        assert name not in members(result)
        assert rules_of(db, name)["failed_rules"] == "no_alt_cause", name
    # findings BMC itself causes, and a carrier state, are not alternative causes
    assert {"alt_pancytopenia_not_a_cause", "alt_sickle_trait_not_a_cause"} <= members(result)

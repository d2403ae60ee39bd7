"""Screening: tier 1 (meets the definition, nobody named it), tier 2 (bone metastases and
otherwise unexplained cytopenia, no smear on file), and exclusions shown with their reason.
Also: checking a definition against known labels."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from cohort.check import check, confusion, read_truth
from cohort.errors import UsageError
from cohort.evidence import UnknownPatient, evidence
from cohort.screen import run_screen
from tests.cohort.test_cohort_charts import ICD10CM, Chart, at, build_db, fhir_id

DAY = date(2006, 3, 1)


def d(offset: int = 0) -> str:
    return (DAY + timedelta(days=offset)).isoformat()


CHARTS: dict[str, Chart] = {}


def mets(name: str, bone: bool = True) -> Chart:
    """Breast cancer with bone metastases since a year before DAY, normal counts."""
    ch = Chart(name)
    ch.breast_cancer(onset="2002-04-04")
    if bone:
        ch.bone_mets(onset=d(-365))
    else:
        ch.condition((ICD10CM, "C78.7"), onset=d(-365))  # liver
    ch.cbc(at(d(-200)))
    CHARTS[name] = ch
    return ch


# tier 1: the smear rule met, nothing coded
t1 = mets("tier1_smear")
t1.cbc(at(d()), hgb=8.8, nrbc=7)
t1_known = mets("known_coded")
t1_known.cbc(at(d()), hgb=8.8, nrbc=7)
t1_known.marrow_dx(onset=d())
t1_report = mets("known_report_negative")   # a marrow report exists (negative): not tier 1
t1_report.cbc(at(d()), hgb=8.8, nrbc=7)
t1_report.marrow_report(at(d(3)), conclusion=("http://snomed.info/sct", "260385009"))
t1_alt = mets("excluded_alt_cause")
t1_alt.cbc(at(d()), hgb=8.8, nrbc=7)
t1_alt.condition((ICD10CM, "D46.9"), onset=d(-30))

# tier 2: grade >= 2 cytopenia, no chemotherapy in the 21 days before, no nRBC on file
t2 = mets("tier2_plain")
t2.cbc(at(d()), plt=60)
t2_22 = mets("tier2_chemo_22_days_before")
t2_22.chemo(at(d(-22)))
t2_22.cbc(at(d()), plt=60)
t2_21 = mets("excluded_chemo_21_days_before")
t2_21.chemo(at(d(-21)))
t2_21.cbc(at(d()), plt=60)
t2_same_day = mets("tier2_chemo_same_day_after_draw")
t2_same_day.cbc(at(d(), "07:30:00+01:00"), plt=60)
t2_same_day.chemo(at(d(), "10:00:00+01:00"))
t2_trastuzumab = mets("tier2_after_trastuzumab")
t2_trastuzumab.chemo(at(d(-10)), rxnorm="224905")
t2_trastuzumab.cbc(at(d()), plt=60)
t2_smear = mets("not_screened_nrbc_on_file")
t2_smear.cbc(at(d()), plt=60, nrbc=0)
t2_g1 = mets("not_screened_grade_1")
t2_g1.cbc(at(d()), hgb=10.5)
t2_liver = mets("not_screened_no_bone_mets", bone=False)
t2_liver.cbc(at(d()), plt=60)
t2_before = mets("not_screened_cytopenia_before_bone_mets")
t2_before.cbc(at(d(-400)), plt=60)
t2_eie = mets("not_screened_entered_in_error")
t2_eie.lab("hgb", 6.1, at(d()), low=12.0, status="entered-in-error")

# chemotherapy the screen must see (issue 11 §3b): an order (MedicationRequest) of a clinical
# drug whose RxNorm code is no ingredient (matched by the ingredient's name in its display), a
# drug named only in text, a combined chemo-radiotherapy procedure; a cancelled order does not count
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"


def order(ch: Chart, when: str, coding: dict | None, text: str | None = None,
          status: str = "stopped", intent: str = "order") -> str:
    concept = {"coding": [coding]} if coding else {}
    if text:
        concept["text"] = text
    return ch.add({"resourceType": "MedicationRequest", "id": ch._id("mr"), "status": status,
                   "intent": intent, "medicationCodeableConcept": concept,
                   "subject": ch.subject, "authoredOn": when})


t2_cis = mets("excluded_cisplatin_order")
order(t2_cis, d(-7), {"system": RX, "code": "1736854", "display": "Cisplatin 50 MG Injection"})
t2_cis.cbc(at(d()), plt=60)
t2_text = mets("excluded_pemetrexed_text_only")
order(t2_text, d(-7), None, text="Pemetrexed 500 mg/m2 IV")
t2_text.cbc(at(d()), plt=60)
t2_cancelled = mets("tier2_cancelled_order")
order(t2_cancelled, d(-7), {"system": RX, "code": "1736854", "display": "Cisplatin 50 MG Injection"},
      status="cancelled")
t2_cancelled.cbc(at(d()), plt=60)
t2_plan = mets("tier2_planned_not_ordered")
order(t2_plan, d(-7), {"system": RX, "code": "1736854", "display": "Cisplatin 50 MG Injection"},
      intent="plan")
t2_plan.cbc(at(d()), plt=60)
t2_proc = mets("excluded_chemoradiation_procedure")
t2_proc.add({"resourceType": "Procedure", "id": t2_proc._id("pr"), "status": "completed",
             "code": {"coding": [{"system": "http://snomed.info/sct", "code": "703423002"}]},
             "subject": t2_proc.subject, "performedPeriod": {"start": at(d(-5)), "end": at(d(-5))}})
t2_proc.cbc(at(d()), plt=60)
t2_palbo = mets("excluded_palbociclib_atc")
t2_palbo.add({"resourceType": "MedicationAdministration", "id": t2_palbo._id("ma"),
              "status": "completed",
              "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc",
                                                        "code": "L01EF01"}]},
              "subject": t2_palbo.subject, "effectiveDateTime": at(d(-3))})
t2_palbo.cbc(at(d()), plt=60)

# tier 2 checks alternative causes as tier 1 does: a leukaemia and a marrow transplant
t2_leuk = mets("excluded_tier2_leukaemia")
t2_leuk.condition(("http://snomed.info/sct", "93143009"), onset=d(-100))
t2_leuk.cbc(at(d()), plt=60)
t2_bmt = mets("excluded_tier2_marrow_transplant")
t2_bmt.condition((ICD10CM, "Z94.81"), onset=d(-100))
t2_bmt.cbc(at(d()), plt=60)
# supporting codes are named in the reasons, never taken as proof
t2_support = mets("tier2_with_myelophthisis")
t2_support.condition((ICD10CM, "D61.82"), onset=d(-10))
t2_support.cbc(at(d()), plt=60)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build_db(tmp_path_factory.mktemp("screen"), list(CHARTS.values()))


@pytest.fixture(scope="module")
def screen(db):
    return run_screen(db)


def tiers(result) -> dict[str, str]:
    return {p.replace("-", "_"): t for p, t in zip(result.screen.patient_id, result.screen.tier,
                                                    strict=True)}


def reasons(result, name: str) -> str:
    s = result.screen
    return s[s.patient_id == fhir_id(name)].reasons.iloc[0]


def test_tier_1_is_a_case_the_definition_finds_but_nobody_coded(screen):
    t = tiers(screen)
    assert t["tier1_smear"] == "1"
    assert "known_coded" not in t and "known_report_negative" not in t
    assert reasons(screen, "tier1_smear").startswith(
        "meets the smear rule: nRBC 7.0 /100{WBCs} on 2006-03-01 with Anemia grade 2 "
        "(8.8 g/dL, LLN 12.0 from result) on 2006-03-01; no coded marrow diagnosis")


def test_an_alternative_cause_moves_a_tier_1_case_to_excluded_with_the_reason(screen):
    assert tiers(screen)["excluded_alt_cause"] == "excluded"
    assert "alternative cause is on record: D46.9 (alt_cause_mds)" in \
        reasons(screen, "excluded_alt_cause")


def test_tier_2_is_bone_metastatic_breast_cancer_with_unexplained_cytopenia_and_no_smear(screen):
    t = tiers(screen)
    assert t["tier2_plain"] == "2"
    assert t["tier2_chemo_22_days_before"] == "2"
    assert t["tier2_chemo_same_day_after_draw"] == "2"
    assert t["tier2_after_trastuzumab"] == "2"  # not myelosuppressive
    assert "no nRBC result on file: a blood smear is indicated" in reasons(screen, "tier2_plain")


def test_cytopenia_within_the_chemo_look_back_is_explained_and_shown_as_excluded(screen, db):
    assert tiers(screen)["excluded_chemo_21_days_before"] == "excluded"
    assert ("followed chemotherapy (here Docetaxel 21 days before, from a "
            "MedicationAdministration, matched by code)") in \
        reasons(screen, "excluded_chemo_21_days_before")
    longer = run_screen(db, {"chemo_lookback_days": 22})
    assert tiers(longer)["tier2_chemo_22_days_before"] == "excluded"


def test_patients_outside_tier_2_are_not_screened(screen):
    t = tiers(screen)
    for name in ("not_screened_nrbc_on_file", "not_screened_grade_1", "not_screened_no_bone_mets",
                 "not_screened_cytopenia_before_bone_mets", "not_screened_entered_in_error"):
        assert name not in t, name


def test_the_screen_grade_is_a_parameter(db):
    t = tiers(run_screen(db, {"screen_min_grade": 1}))
    assert t["not_screened_grade_1"] == "2"


def test_ranks_put_tier_1_before_tier_2_before_exclusions(screen):
    order = list(screen.screen.tier)
    assert order == sorted(order, key={"1": 0, "2": 1, "excluded": 2}.get)
    assert list(screen.screen["rank"]) == list(range(1, len(order) + 1))
    # tier 2: 4 original + cancelled order, planned order, myelophthisis; excluded: 2 original +
    # cisplatin order, pemetrexed text, chemo-radiation, palbociclib, leukaemia, transplant
    assert screen.counts == {"1": 1, "2": 7, "excluded": 8}


def test_the_screen_is_left_in_the_database_with_its_parameters(db):
    result = run_screen(db, {"screen_min_grade": 3})
    assert db.execute("SELECT count(*) FROM bmc_screen").fetchone()[0] == len(result.screen)
    assert db.execute("SELECT value FROM bmc_parameter WHERE name = 'screen_min_grade'"
                      ).fetchone() == ("3",)


def test_evidence_of_one_patient_lists_rules_and_resources_with_their_source(db, screen):
    e = evidence(db, "Patient/" + fhir_id("tier1_smear"))
    assert e.rules["in_cohort"] and e.cohort_row["route"] == "smear"
    roles = set(e.ledger.role)
    assert {"breast cancer diagnosis", "nRBC result", "cytopenia (Anemia)",
            "count at index (hgb)"} <= roles
    assert e.ledger.source_file.str.endswith(".ndjson").all()
    with pytest.raises(UnknownPatient, match="no Patient with id 'nobody' in this database"):
        evidence(db, "nobody")


def test_check_reports_sensitivity_ppv_and_the_confusion_counts(db, tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text("patient_id,label\n"
                     f"{fhir_id('tier1_smear')},1\n"          # TP
                     f"{fhir_id('known_coded')},1\n"          # TP
                     f"{fhir_id('tier2_plain')},1\n"          # FN
                     f"{fhir_id('excluded_alt_cause')},0\n"   # TN
                     f"Patient/{fhir_id('known_report_negative')},1\n"  # TP (prefix accepted)
                     "not-loaded,0\n")
    r = check(db, truth)
    assert (r.tp, r.fp, r.fn, r.tn) == (3, 0, 1, 1)
    assert r.sensitivity == pytest.approx(0.75) and r.ppv == 1.0
    assert r.unknown_ids == ["not-loaded"]
    assert list(r.disagreements.patient_id) == [fhir_id("tier2_plain")]


def test_confusion_is_pure_and_counts_unlabelled_members_apart():
    r = confusion({"a", "b", "x"}, {"a": True, "b": False, "c": True, "d": False},
                  known={"a", "b", "c", "d", "x"})
    assert (r.tp, r.fp, r.fn, r.tn, r.unlabelled_in_cohort) == (1, 1, 1, 1, 1)
    assert r.sensitivity == 0.5 and r.ppv == 0.5
    empty = confusion(set(), {"a": False}, known={"a"})
    assert empty.sensitivity is None and empty.ppv is None


@pytest.mark.parametrize("text, message", [
    ("id,label\na,1\n", "needs columns patient_id and label, found id, label"),
    ("patient_id,label\na,maybe\n", r"line 2: label must be 1 or 0 \(or true/false, yes/no\)$"),
    ("patient_id,label\na,1\na,0\n", "line 3: patient listed twice with different labels"),
])
def test_a_malformed_truth_file_is_a_usage_error_naming_the_line(tmp_path, text, message):
    f = tmp_path / "t.csv"
    f.write_text(text)
    with pytest.raises(UsageError, match=message):
        read_truth(f)
    with pytest.raises(UsageError, match="no such truth file"):
        read_truth(tmp_path / "missing.csv")


def test_the_screen_reuses_an_up_to_date_cohort_and_rebuilds_after_a_new_load(tmp_path):
    from cohort.definition import build_cohort
    from etl.load import load
    from tests.conftest import write_ndjson

    first = Chart("reuse-1")
    first.breast_cancer()
    first.cbc(at(d()), hgb=9.0, nrbc=3)
    con = build_db(tmp_path, [first])
    build_cohort(con)
    assert "cohort tables reused (same parameters, data and queries)" in run_screen(con).notes
    assert not any("reused" in n for n in run_screen(con, {"smear_window_days": 7}).notes)
    second = Chart("reuse-2")
    second.breast_cancer()
    load(con, [write_ndjson(tmp_path / "more" / "Patient.ndjson", second.resources[:1])])
    again = run_screen(con, {"smear_window_days": 7})
    assert not any("reused" in n for n in again.notes)
    assert again.cohort.counts["patients"] == 2


def test_chemotherapy_orders_procedures_and_text_explain_a_cytopenia_naming_the_source(screen):
    t = tiers(screen)
    cis = reasons(screen, "excluded_cisplatin_order")
    assert t["excluded_cisplatin_order"] == "excluded"
    assert ("(here cisplatin 7 days before, from a MedicationRequest, matched by ingredient "
            "name in display)") in cis
    assert t["excluded_pemetrexed_text_only"] == "excluded"
    assert "from a MedicationRequest, matched by ingredient name in text" in \
        reasons(screen, "excluded_pemetrexed_text_only")
    assert t["excluded_chemoradiation_procedure"] == "excluded"
    assert "5 days before, from a Procedure, matched by code" in \
        reasons(screen, "excluded_chemoradiation_procedure")
    assert t["excluded_palbociclib_atc"] == "excluded"
    assert "from a MedicationAdministration, matched by code" in \
        reasons(screen, "excluded_palbociclib_atc")


def test_cancelled_or_only_planned_orders_are_no_exposure(screen):
    assert tiers(screen)["tier2_cancelled_order"] == "2"
    assert tiers(screen)["tier2_planned_not_ordered"] == "2"


def test_screen_chemo_says_which_resource_and_match_each_exposure_came_from(db, screen):
    rows = db.execute("SELECT p.patient_id, c.source_type, c.matched_by, c.drug "
                      "FROM bmc_screen_chemo c JOIN bmc_patient p USING (patient_key)").fetchall()
    got = {(pid.replace("-", "_"), src, how, drug) for pid, src, how, drug in rows}
    assert ("excluded_cisplatin_order", "MedicationRequest", "ingredient name in display",
            "cisplatin") in got
    assert ("excluded_pemetrexed_text_only", "MedicationRequest", "ingredient name in text",
            "pemetrexed") in got
    assert not any(p in ("tier2_cancelled_order", "tier2_planned_not_ordered")
                   for p, *_ in got)


def test_tier_2_checks_alternative_causes_as_tier_1_does(screen):
    t = tiers(screen)
    assert t["excluded_tier2_leukaemia"] == "excluded"
    assert "an alternative cause is on record: 93143009 (alt_cause_haem_malignancy)" in \
        reasons(screen, "excluded_tier2_leukaemia")
    assert t["excluded_tier2_marrow_transplant"] == "excluded"
    assert "Z94.81 (alt_cause_marrow_transplant)" in \
        reasons(screen, "excluded_tier2_marrow_transplant")
    assert "a blood smear is indicated" not in reasons(screen, "excluded_tier2_leukaemia")


def test_supporting_marrow_codes_are_named_in_tier_2_reasons(screen):
    assert tiers(screen)["tier2_with_myelophthisis"] == "2"
    assert "supporting, not proof: coded myelophthisis (D61.82)" in \
        reasons(screen, "tier2_with_myelophthisis")

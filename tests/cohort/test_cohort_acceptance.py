"""Acceptance on the committed sample institution (sample_bundles/), against the intended
roles in sample_bundles/roles.csv:

* every patient the paper's own rule admits is found, with the right route and index date;
* Table II patient 2 (smear without cytopenia; roles.csv route 'coded') is not admitted and
  the funnel reports it as lost only by the smear rule, with a coded marrow diagnosis;
* every planted unrecognised case is tier 1, every planted tier-2 case is tier 2;
* no control is in the cohort; the alternative-cause patients are excluded with that reason;
* the Bulk NDJSON export and the per-patient transaction Bundles give the same cohort.
"""
from __future__ import annotations

import csv
import shutil

import duckdb
import pytest

from cohort.check import check
from cohort.definition import build_cohort
from cohort.paths import sample_bundles_dir
from cohort.screen import run_screen
from etl.load import load

SAMPLE = sample_bundles_dir()
ROLES = {r["patient_id"]: r for r in csv.DictReader((SAMPLE / "roles.csv").open())}
PAPER_2 = next(pid for pid, r in ROLES.items() if r["paper_patient"] == "2")


def expected_members() -> dict[str, dict]:
    """Patients the paper's rule admits: expected in the cohort, except route 'coded'."""
    return {pid: r for pid, r in ROLES.items()
            if r["expected_in_cohort"] == "1" and r["expected_route"] != "coded"}


@pytest.fixture(scope="module")
def bulk_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sample")
    shutil.copytree(SAMPLE / "bulk", tmp / "bulk")  # the loader records absolute paths
    load(tmp / "s.duckdb", [tmp / "bulk"])
    con = duckdb.connect(str(tmp / "s.duckdb"))
    yield con
    con.close()


@pytest.fixture(scope="module")
def result(bulk_db):
    return build_cohort(bulk_db)


@pytest.fixture(scope="module")
def screen(bulk_db):
    return run_screen(bulk_db)


def cohort_rows(result) -> dict[str, dict]:
    return {r["patient_id"]: r for r in result.cohort.to_dict("records")}


def test_every_patient_the_rule_admits_is_found_with_route_and_index_date(result):
    got = cohort_rows(result)
    for pid, role in expected_members().items():
        assert pid in got, (role["role"], role["paper_patient"], role["notes"])
        assert got[pid]["route"] == role["expected_route"], (role["role"], role["paper_patient"])
        assert str(got[pid]["index_date"])[:10] == role["expected_index_date"], role["notes"]
        assert bool(got[pid]["coded_marrow_dx"]) == (role["coded_bmc"] == "1")
    assert len(got) == len(expected_members())


def test_paper_patient_2_is_not_admitted_and_the_funnel_says_why(result, bulk_db):
    assert PAPER_2 not in cohort_rows(result)
    failed, coded = bulk_db.execute(
        "SELECT failed_rules, coded_marrow_dx FROM bmc_patient_rule WHERE patient_id = ?",
        [PAPER_2]).fetchone()
    assert (failed, coded) == ("smear_cytopenia", True)
    f = result.funnel.set_index("rule")
    assert f.loc["smear_cytopenia", "lost_only_with_coded_dx"] == 1
    paper = [pid for pid, r in ROLES.items() if r["role"] == "bmc_paper"]
    assert sum(pid in cohort_rows(result) for pid in paper) == 21


def test_taking_every_coded_diagnosis_as_proof_admits_paper_patient_2(bulk_db):
    proof = cohort_rows(build_cohort(bulk_db, {"coded_condition": "proof"}))
    assert proof[PAPER_2]["route"] == "histology"
    (onset,) = bulk_db.execute(
        "SELECT min(onset_date_time) FROM condition WHERE patient_key = ? AND code = 'C79.52'",
        [f"Patient/{PAPER_2}"]).fetchone()
    assert str(proof[PAPER_2]["index_date"])[:10] == onset[:10] == "2007-01-07"
    build_cohort(bulk_db)


def test_no_control_is_in_the_cohort(result):
    controls = {pid for pid, r in ROLES.items() if r["expected_in_cohort"] == "0"}
    assert not controls & set(cohort_rows(result))


def test_alternative_cause_patients_are_excluded_with_that_reason(result, screen, bulk_db):
    alt = [pid for pid, r in ROLES.items() if r["role"].startswith("bc_alt_cause")]
    assert len(alt) == 12
    tiers = dict(zip(screen.screen.patient_id, screen.screen.tier, strict=True))
    reasons = dict(zip(screen.screen.patient_id, screen.screen.reasons, strict=True))
    for pid in alt:
        (failed,) = bulk_db.execute("SELECT failed_rules FROM bmc_patient_rule "
                                    "WHERE patient_id = ?", [pid]).fetchone()
        assert failed == "no_alt_cause"
        assert tiers[pid] == "excluded" and "an alternative cause is on record" in reasons[pid]
    assert result.funnel.set_index("rule").loc["no_alt_cause", "lost_only_by_rule"] == 12


def test_every_planted_unrecognised_case_is_found_by_the_screen(screen):
    tiers = dict(zip(screen.screen.patient_id, screen.screen.tier, strict=True))
    for tier in ("1", "2"):
        planted = {pid for pid, r in ROLES.items() if r["expected_screen_tier"] == tier}
        assert planted, tier
        assert {pid for pid in planted if tiers.get(pid) == tier} == planted
        found = {pid for pid, t in tiers.items() if t == tier}
        assert found == planted, f"tier {tier}: unexpected {found - planted}"


def test_check_against_the_truth_labels(bulk_db):
    r = check(bulk_db, SAMPLE / "truth_labels.csv")
    assert (r.tp, r.fp, r.fn) == (len(expected_members()), 0, 1)  # the one FN: paper patient 2
    assert list(r.disagreements.patient_id) == [PAPER_2]
    assert r.unknown_ids == []


@pytest.mark.slow
def test_bundles_and_bulk_export_give_the_same_cohort(result, tmp_path):
    shutil.copytree(SAMPLE / "bundles", tmp_path / "bundles")
    load(tmp_path / "b.duckdb", [tmp_path / "bundles"])
    con = duckdb.connect(str(tmp_path / "b.duckdb"))
    try:
        other = build_cohort(con)
    finally:
        con.close()
    cols = ["patient_id", "index_date", "route", "anemia_grade", "platelet_grade", "wbc_grade"]
    assert other.cohort[cols].equals(result.cohort[cols])
    assert other.funnel.equals(result.funnel)


def test_grades_at_index_of_the_paper_patients_are_table_ii(result, shared):
    """CTCAE grades at index as the paper printed them, anaemia grade 4 of patient 14 included
    (CTC v2.0/v3.0, parameter anemia_grade4)."""
    with (shared / "paper" / "table_ii.csv").open(newline="") as fh:
        table_ii = {r["patient"]: r for r in csv.DictReader(fh)}
    got = cohort_rows(result)
    compared = 0
    for pid, role in ROLES.items():
        if role["paper_patient"] and pid in got:
            t = table_ii[role["paper_patient"]]
            want = tuple(int(t[c]) for c in ("anemia_ctc_grade", "thrombopenia_ctc_grade",
                                             "leukopenia_ctc_grade"))
            row = got[pid]
            assert (row["anemia_grade"], row["platelet_grade"], row["wbc_grade"]) == want, \
                role["paper_patient"]
            compared += 1
    assert compared == 21
    p14 = next(pid for pid, r in ROLES.items() if r["paper_patient"] == "14")
    assert got[p14]["anemia_grade"] == 4

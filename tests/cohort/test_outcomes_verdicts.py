"""The published-numbers file is a faithful transcription, and verdicts follow the rules."""
from __future__ import annotations

import json

import pytest
from outcomes_db import sample_report

from cohort.outcomes.published import PublishedNumber, load_published, published_table
from cohort.outcomes.verdicts import (
    DEFINITION,
    DIFFERS,
    INCONSISTENT,
    REPRODUCED,
    Value,
    judge,
    paper_checks,
)

LISTED = "paper's 22 as published"


def _scalars(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _scalars(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _scalars(v)
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        yield float(obj)


def test_every_number_of_published_json_is_in_the_project_file(shared):
    pub = json.loads((shared / "paper" / "published.json").read_text())
    mine = {p.number for p in load_published() if p.number is not None and not p.table}
    mine |= {100 * x for x in mine}  # 75% is kept as percent, 0.75 in published.json
    text_numbers = {x for k, v in pub.items() if k not in ("table_I", "table_II", "stage_iv_patients")
                    for x in _scalars(v["value"])}
    assert sorted(text_numbers - mine - {x / 100 for x in mine}) == []
    assert all(p.source and p.statement for p in load_published())


def test_table_cells_are_transcribed(shared):
    pub = json.loads((shared / "paper" / "published.json").read_text())
    t1, t2 = published_table("table_i"), published_table("table_ii")
    assert len(t1) == len(t2) == 22
    for n, row in pub["table_I"]["value"].items():
        assert t1[int(n)]["stage"] == row["stage"]
        assert int(t1[int(n)]["age_years"]) == row["age_at_primary_dx"]
    for n, row in pub["table_II"]["value"].items():
        assert int(t2[int(n)]["interval_months"]) == row["interval_primary_to_bmc_months"]
        assert t2[int(n)]["metastatic_sites"] == row["metastatic_sites"]


def _pub(value: str, unit: str = "months", key: str = "x") -> PublishedNumber:
    return PublishedNumber(key, value, unit, "Results", "statement")


def test_tolerance_follows_the_printed_precision():
    assert _pub("19").tolerance == 0.5
    assert _pub("0.754", "chi-square").tolerance == pytest.approx(0.0005)
    assert _pub("10.5").tolerance == pytest.approx(0.05)
    assert _pub("17", "patients").tolerance == 0


def test_judge_rules():
    checks = {"a": (34.0, "Table I says 34", 0.0)}
    assert judge(_pub("19"), Value(18.99), {})[1] == REPRODUCED
    assert judge(_pub("19"), Value(18.4), {})[1] == DIFFERS
    assert judge(_pub("32", "years", "a"), Value(34.0), checks)[1:] == (
        INCONSISTENT, "Table I says 34; the data give 34, the value the paper's own numbers imply")
    assert judge(_pub("5", "patients"), Value(4), {})[1] == DIFFERS
    assert judge(_pub("NA", "regimens"), Value(None), {})[1] == REPRODUCED


def test_paper_inconsistent_only_when_the_data_give_the_implied_value():
    """Chi-square 0.754 implies p = 0.3852; a p of 0.3335 is no longer the paper's slip."""
    checks = {"a": (0.3852, "chi-square 0.754 gives p = 0.3852", 0.0002)}
    assert judge(_pub("0.38", "p", "a"), Value(0.38521), checks)[1] == INCONSISTENT
    shown, verdict, reason = judge(_pub("0.38", "p", "a"), Value(0.3335), checks)
    assert (shown, verdict) == ("0.3335", DIFFERS)
    assert "not the 0.3852 that the paper's own numbers imply" in reason
    # data that give the printed p contradict the printed chi-square: no confirmation either
    assert judge(_pub("0.38", "p", "a"), Value(0.3776), checks)[1] == DIFFERS
    assert judge(_pub("0.38", "p"), Value(0.3776), {})[1] == REPRODUCED  # no conflict: fine


def test_a_value_only_one_method_gives_is_reproduced_under_that_method():
    shown, verdict, reason = judge(_pub("10.5"), Value(6.01, "log-log", (("symmetric", 10.49),)),
                                   {})
    assert verdict == "reproduced under symmetric" and shown == "6.01 (symmetric: 10.49)"
    assert "log-log gives 6.01" in reason
    # the printed value under the main method, but another stated method gives another value
    assert judge(_pub("31"), Value(30.98, "lifelines", (("R midpoint", 33.99),)), {})[:2] == (
        "30.98 (R midpoint: 33.99)", "reproduced under lifelines")
    # every method agrees: plain 'reproduced'
    assert judge(_pub("19"), Value(18.99, "lifelines", (("R midpoint", 18.99),)), {})[1] == (
        REPRODUCED)
    # no method gives it: differs
    assert judge(_pub("10.5"), Value(6.01, "log-log", (("symmetric", 9.2),)), {})[1] == DIFFERS


def test_definition_holds_only_when_the_alternative_wording_gives_the_same_groups():
    same = Value(36.0, "late >= 36", definition=(True, "no patient at 36 months"))
    moved = Value(36.0, "late >= 36", definition=(False, "1 patient(s) at 36 months"))
    assert judge(_pub("36"), same, {})[1] == DEFINITION
    assert judge(_pub("36"), moved, {})[1] == DIFFERS


def test_paper_checks_find_the_known_inconsistencies():
    c = paper_checks()
    assert c["age_min"][0] == 34 and c["liver_mets"][0] == 11 and c["leukopenic_at_bmc"][0] == 4
    assert c["smear_sensitivity"][0] == pytest.approx(100 * 12 / 17)
    assert c["primary_to_bmc_median"][0] == 51.5
    assert c["logrank_p"][0] == pytest.approx(0.3852, abs=5e-5)
    assert c["inclusion_rule_met"][0] == 21


def test_verdicts_on_the_sample():
    result, _ = sample_report()
    rows = {v.key: v for v in result.verdicts[LISTED]}
    assert len(rows) == len(load_published())
    for key in ("os_bmc_median", "logrank_chi2", "os_bmc_median_early", "os_bmc_median_late",
                "normoblasts_r", "alive_48_months", "febrile_neutropenia", "bleeding_g3",
                "heme_toxicity_g34", "response.PR", "anemia_course.improved_or_normalised"):
        assert rows[key].verdict == REPRODUCED, (key, rows[key])
    for key, method in (("os_met_median", "lifelines KM median"),
                        ("os_met_ci_low", "lifelines log(-log) CI"),
                        ("fig1_os_bmc_ci_low", "symmetric SPSS-style CI"),
                        ("primary_to_bmc_median", "lower median"),
                        ("anemia_course.cytopenic", "anaemic = grade >= 2"),
                        ("cytopenia_events_g34", "patients counted instead of events")):
        assert rows[key].verdict == f"reproduced under {method}", (key, rows[key])
    for key in ("fig1_os_bmc_median", "age_min", "liver_mets", "leukopenic_at_bmc",
                "smear_sensitivity", "logrank_p", "inclusion_rule_met", "bmc_within_5_years",
                "study_period.text", "study_period.other"):
        assert rows[key].verdict == INCONSISTENT, (key, rows[key])
    assert rows["onset_cutoff"].verdict == DEFINITION
    assert rows["table_ii.02.prior_regimens"].verdict == DIFFERS
    cells = [v for v in rows.values() if v.key.startswith("table_")]
    assert sum(v.verdict == REPRODUCED for v in cells) == len(cells) - 1


def test_rows_any_data_reproduce_are_marked():
    result, _ = sample_report()
    listed = {v.key: v.by_construction for v in result.verdicts[LISTED]}
    found = {v.key: v.by_construction for v in result.verdicts["found cohort"]}
    assert "picked by id" in listed["n_patients"] and found["n_patients"] == ""
    assert listed["regimen.docetaxel/adriamycin"] and listed["claim_os_independent_of_onset"]
    assert listed["logrank_chi2"] == "" and listed["table_ii.05.anemia_ctc_grade"] == ""


def test_a_patient_missing_from_the_found_cohort_is_said_so():
    rows = {v.key: v for v in sample_report()[0].verdicts["found cohort"]}
    absent = [v for v in rows.values() if v.key.startswith("table_") and v.reproduced == "NA"
              and v.verdict != REPRODUCED]
    assert absent and all(v.verdict == "not in the found cohort" for v in absent)


def test_bleeding_grades_come_from_condition_severity_codings():
    """The grades are the NCIt codes of condition.severity_codings (nothing re-read from files)."""
    rows = {v.key: v for v in sample_report()[0].verdicts[LISTED]}
    for key in ("bleeding_g3", "bleeding_g4", "febrile_neutropenia", "bleeding"):
        assert rows[key].verdict == REPRODUCED, (key, rows[key].reproduced, rows[key].reason)

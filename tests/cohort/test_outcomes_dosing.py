"""Dose and timing of the BMC regimen and what followed it: the second cycle postponed (just
inside and just outside the 3-day slack), the further lines, and the published numbers they
are compared with."""
from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from cohort.outcomes import treatment
from cohort.outcomes.published import published_by_key
from cohort.outcomes.records import regimen_table


def _admins(rows):
    return pd.DataFrame(rows, columns=["day", "ingredient", "dose_value"])


def _docetaxel(start: date, offsets, doses=None):
    doses = doses or [100] * len(offsets)
    return [(start + timedelta(days=o), "docetaxel", d) for o, d in zip(offsets, doses, strict=True)]


START = date(2006, 3, 24)


def test_second_cycle_three_days_late_is_on_time_four_days_late_is_postponed():
    on_time = treatment.episodes(_admins(_docetaxel(START, (0, 24, 45))), regimen_table())[0]
    late = treatment.episodes(_admins(_docetaxel(START, (0, 25, 46))), regimen_table())[0]
    assert (on_time.second_cycle_postponed, on_time.postponed_cycles) == (False, 0)
    assert (late.second_cycle_postponed, late.postponed_cycles) == (True, 1)


def test_a_late_third_cycle_is_not_a_postponed_second_cycle():
    e = treatment.episodes(_admins(_docetaxel(START, (0, 21, 49))), regimen_table())[0]
    assert (e.second_cycle_postponed, e.postponed_cycles) == (False, 1)


def test_second_cycle_reduction_is_below_90_percent_of_the_first():
    kept = treatment.episodes(_admins(_docetaxel(START, (0, 21), [100, 90])), regimen_table())[0]
    cut = treatment.episodes(_admins(_docetaxel(START, (0, 21), [100, 89])), regimen_table())[0]
    assert kept.dose_reduced_from_cycle is None and cut.dose_reduced_from_cycle == 2


def _row(rows):
    """A patient treated from ``rows`` with no blood counts, statuses or complications."""
    draws = pd.DataFrame({"day": pd.Series([], dtype=object), "taken_at": pd.Series([], dtype=object),
                          "cbc": pd.Series([], dtype=bool),
                          **{g: pd.Series([], dtype=float) for g in ("g_hgb", "g_plt", "g_wbc")}})
    status = pd.DataFrame({"day": [START], "response": ["SD"]})
    adverse = pd.DataFrame({"onset_date": [START - timedelta(days=400)], "kind": ["bleeding"],
                            "grade": [2]})
    return treatment.patient_treatment(START - timedelta(days=7), None, _admins(rows), draws,
                                       status, adverse, pd.DataFrame({"day": []}),
                                       regimen_table())


def test_a_later_regimen_is_a_further_line():
    first = _docetaxel(START, (0, 21, 42))
    later = [(START + timedelta(days=120 + o), "capecitabine", 3000) for o in (0, 21)]
    assert _row(first)["further_lines"] == 0
    row = _row(first + later)
    assert (row["regimen"], row["further_lines"]) == ("docetaxel", 1)


def test_the_numbers_left_out_are_published_rows():
    pub = published_by_key()
    assert {k: pub[k].value for k in ("dose_reduced_cycle1", "cycle2_postponed",
                                       "cycle2_postponed.prolonged_cytopenia",
                                       "cycle2_postponed.non_haematological_toxicity",
                                       "cycle2_postponed.other", "dose_reduced_cycle2",
                                       "further_line")} == {
        "dose_reduced_cycle1": "4", "cycle2_postponed": "4",
        "cycle2_postponed.prolonged_cytopenia": "2",
        "cycle2_postponed.non_haematological_toxicity": "1", "cycle2_postponed.other": "1",
        "dose_reduced_cycle2": "2", "further_line": "10"}


# --- the first cycle's dose against the protocol dose per m2 ------------------------------------
def _first_cycle(doses_mg, bsa=1.8, unit="mg"):
    """Docetaxel (protocol 100 mg/m2) every 21 days, cycle 1 at ``doses_mg[0]``."""
    rows = _docetaxel(START, (0, 21), doses_mg)
    df = _admins(rows).assign(dose_unit=unit, bsa_m2=bsa)
    ep = treatment.episodes(df, regimen_table())[0]
    return treatment.first_cycle_dose_percent(ep, df, treatment.protocol_doses())


def test_first_cycle_at_90_percent_is_full_dose_below_is_reduced():
    assert _first_cycle([135, 135]) == 75.0          # 135 mg / 1.8 m2 = 75 mg/m2 of 100
    assert _first_cycle([162, 162]) == 90.0          # just inside: not reduced
    assert _first_cycle([161, 161]) < 90.0           # just outside: reduced


def test_first_cycle_dose_is_unknown_without_an_area_or_a_dose_in_mg():
    assert _first_cycle([180, 180], bsa=None) is None
    assert _first_cycle([180, 180], unit="mL") is None


def test_first_cycle_reduction_in_the_treatment_row():
    rows = _docetaxel(START, (0, 21, 42), [135, 135, 135])
    admins = _admins(rows).assign(dose_unit="mg", bsa_m2=1.8)
    row = _treated(admins)
    assert (row["cycle1_dose_percent"], row["dose_reduced_cycle1"]) == (75.0, True)
    row = _treated(admins.assign(dose_value=180))
    assert (row["cycle1_dose_percent"], row["dose_reduced_cycle1"]) == (100.0, False)


# --- why the second cycle was postponed -----------------------------------------------------
PLANNED = START + timedelta(days=21)  # docetaxel every 21 days; cycle 2 given a week late


def _draws(*rows):
    """Blood draws (day, leukocyte grade, platelet grade)."""
    return pd.DataFrame({"day": [r[0] for r in rows],
                         "taken_at": [f"{r[0]}T07:30:00+01:00" for r in rows],
                         "cbc": pd.Series([True] * len(rows), dtype=bool),
                         "g_hgb": pd.array([1] * len(rows), dtype="Int64"),
                         "g_plt": pd.array([r[2] for r in rows], dtype="Int64"),
                         "g_wbc": pd.array([r[1] for r in rows], dtype="Int64"),
                         "g_anc": pd.array([None] * len(rows), dtype="Int64")})


def _adverse(*rows):
    """Complications (kind, onset, abatement)."""
    return pd.DataFrame({"kind": [r[0] for r in rows], "onset_date": [r[1] for r in rows],
                         "abatement_date": [r[2] for r in rows],
                         "grade": [3] * len(rows)})


def _reason(draws, adverse):
    ep = treatment.episodes(_admins(_docetaxel(START, (0, 28, 49))), regimen_table())[0]
    return treatment.postpone_reason(ep, draws, adverse)


def test_counts_not_recovered_on_the_planned_day_are_prolonged_cytopenia():
    assert _reason(_draws((PLANNED, 2, 1)), _adverse()) == "prolonged_cytopenia"
    assert _reason(_draws((PLANNED, 1, 2)), _adverse()) == "prolonged_cytopenia"
    assert _reason(_draws((PLANNED, 1, 1)), _adverse()) == "other"  # recovered: grade 1


def test_only_counts_from_3_days_before_the_planned_day_until_cycle_2_count():
    before = PLANNED - timedelta(days=3)
    assert _reason(_draws((before, 2, 2)), _adverse()) == "prolonged_cytopenia"
    assert _reason(_draws((before - timedelta(days=1), 2, 2)), _adverse()) == "other"
    # the count on the day cycle 2 was given is the one that allowed it
    assert _reason(_draws((START + timedelta(days=28), 3, 3)), _adverse()) == "other"


def test_an_unresolved_non_haematological_toxicity_on_the_planned_day():
    tox = "non-haematological toxicity"
    onset = START + timedelta(days=7)
    assert _reason(_draws(), _adverse((tox, onset, PLANNED))) == "non_haematological_toxicity"
    assert _reason(_draws(), _adverse((tox, onset, None))) == "non_haematological_toxicity"
    assert _reason(_draws(), _adverse((tox, onset, PLANNED - timedelta(days=1)))) == "other"
    assert _reason(_draws(), _adverse(("bleeding", onset, PLANNED))) == "other"
    # cytopenia first when both apply
    assert _reason(_draws((PLANNED, 2, 0)), _adverse((tox, onset, None))) == "prolonged_cytopenia"


def test_no_reason_when_the_second_cycle_was_on_time():
    ep = treatment.episodes(_admins(_docetaxel(START, (0, 21, 42))), regimen_table())[0]
    assert treatment.postpone_reason(ep, _draws((PLANNED, 3, 3)), _adverse()) is None


def _treated(admins):
    draws = _draws()
    status = pd.DataFrame({"day": [START], "response": ["SD"]})
    return treatment.patient_treatment(START - timedelta(days=7), None, admins, draws, status,
                                       _adverse(), pd.DataFrame({"day": []}), regimen_table())


# --- administrations.sql: the body surface area a dose was calculated on ----------------------
def _patient_resources(bsa_rows):
    pid = "p1"
    out = [{"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1950-01-01"}]
    for i, (day, value, unit) in enumerate(bsa_rows):
        out.append({"resourceType": "Observation", "id": f"bsa{i}", "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8277-6"}]},
                    "subject": {"reference": f"Patient/{pid}"},
                    "effectiveDateTime": f"{day}T08:00:00+01:00",
                    "valueQuantity": {"value": value, "unit": unit,
                                      "system": "http://unitsofmeasure.org", "code": unit}})
    out.append({"resourceType": "MedicationAdministration", "id": "a1", "status": "completed",
                "medicationCodeableConcept": {"coding": [
                    {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "72962"}]},
                "subject": {"reference": f"Patient/{pid}"},
                "effectivePeriod": {"start": f"{START}T09:00:00+01:00",
                                    "end": f"{START}T10:00:00+01:00"},
                "dosage": {"dose": {"value": 135, "unit": "mg",
                                    "system": "http://unitsofmeasure.org", "code": "mg"}}})
    return out


def _bsa_read(tmp_path, bsa_rows):
    from tests.conftest import write_ndjson

    from cohort.engine import DuckDBEngine
    from cohort.outcomes.records import run_query
    from cohort.runner import open_database
    from etl.load import load

    db = tmp_path / "t.duckdb"
    load(db, [write_ndjson(tmp_path / "r.ndjson", _patient_resources(bsa_rows))])
    con = open_database(db)
    try:
        df = run_query(DuckDBEngine(con), "administrations", patient_keys=["Patient/p1"],
                       result_statuses=["final", "amended", "corrected"])
    finally:
        con.close()
    return df["bsa_m2"].tolist()


def test_the_area_is_the_latest_measured_on_or_before_the_day(tmp_path):
    day = START.isoformat()
    earlier, later = (START - timedelta(days=30)).isoformat(), (START + timedelta(days=1)).isoformat()
    assert _bsa_read(tmp_path, [(earlier, 1.7, "m2"), (day, 1.8, "m2"), (later, 1.9, "m2")]) == [1.8]


def test_no_area_before_the_dose_or_in_another_unit_is_none(tmp_path):
    later = (START + timedelta(days=1)).isoformat()
    got = _bsa_read(tmp_path, [(later, 1.9, "m2"), (START.isoformat(), 18000, "cm2")])
    assert len(got) == 1 and pd.isna(got[0])


# --- on the sample ------------------------------------------------------------------------------
def test_the_numbers_left_out_are_reproduced_on_the_sample():
    """The sample carries them as FHIR (body surface area, doses, dates, a not-recovered count
    or a toxicity on the planned day, later regimens): both groups give the paper's numbers."""
    from outcomes_db import sample_report

    result, _ = sample_report()
    keys = ("dose_reduced_cycle1", "cycle2_postponed", "cycle2_postponed.prolonged_cytopenia",
            "cycle2_postponed.non_haematological_toxicity", "cycle2_postponed.other",
            "dose_reduced_cycle2", "further_line")
    for label, rows in result.verdicts.items():
        got = {v.key: (v.reproduced, v.verdict) for v in rows if v.key in keys}
        assert got == {k: (published_by_key()[k].value, "reproduced") for k in keys}, label

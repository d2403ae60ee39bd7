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

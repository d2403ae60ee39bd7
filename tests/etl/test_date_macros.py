"""FHIR dates may be partial: fhir_date_lo / fhir_date_hi give the days such a string denotes."""
from __future__ import annotations

from datetime import date

import duckdb
import pytest

from etl.viewdef.macros import install_date_macros


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    install_date_macros(c)
    yield c
    c.close()


@pytest.mark.parametrize(("text", "lo", "hi"), [
    ("2019", date(2019, 1, 1), date(2019, 12, 31)),
    ("2019-03", date(2019, 3, 1), date(2019, 3, 31)),
    ("2020-02", date(2020, 2, 1), date(2020, 2, 29)),
    ("2019-03-04", date(2019, 3, 4), date(2019, 3, 4)),
    ("2001-01-28T00:35:00+01:00", date(2001, 1, 28), date(2001, 1, 28)),  # local date, not UTC
    ("2019-13", None, None),
    ("March 2019", None, None),
    (None, None, None),
])
def test_partial_dates_denote_intervals_of_days(con, text, lo, hi):
    assert con.execute("SELECT fhir_date_lo(?), fhir_date_hi(?)", [text, text]).fetchall() == [(lo, hi)]


def test_the_macros_work_on_a_read_only_database(tmp_path):
    db = tmp_path / "x.duckdb"
    duckdb.connect(str(db)).close()
    ro = duckdb.connect(str(db), read_only=True)
    install_date_macros(ro)
    assert ro.execute("SELECT fhir_date_lo('2019-03')").fetchall() == [(date(2019, 3, 1),)]
    ro.close()

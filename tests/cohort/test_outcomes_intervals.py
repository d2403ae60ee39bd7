"""Exact (Clopper-Pearson) intervals and the Cox model of one continuous covariate."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cohort.outcomes.intervals import clopper_pearson, exact, proportion_rows, proportion_specs
from cohort.outcomes.published import published_by_key
from cohort.outcomes.survival import cox_continuous


def test_smear_sensitivity_12_of_17_matches_the_issue():
    lo, hi = clopper_pearson(12, 17)
    assert (round(lo, 3), round(hi, 3)) == (0.440, 0.897)


def test_interval_is_the_beta_quantile_definition():
    # Clopper-Pearson: lower = Beta(k, n-k+1) at 2.5%, upper = Beta(k+1, n-k) at 97.5%
    k, n = 5, 20
    lo, hi = clopper_pearson(k, n)
    assert lo == pytest.approx(stats.beta.ppf(0.025, k, n - k + 1), abs=1e-9)
    assert hi == pytest.approx(stats.beta.ppf(0.975, k + 1, n - k), abs=1e-9)


def test_edges_zero_and_all():
    assert clopper_pearson(0, 4)[0] == 0.0
    assert clopper_pearson(4, 4)[1] == 1.0
    assert clopper_pearson(0, 0) is None


def test_a_count_above_its_denominator_is_refused():
    with pytest.raises(ValueError, match="between 0 and n"):
        clopper_pearson(5, 4)
    assert exact(5, 4).show() == "NA"  # a reproduced count that cannot be a proportion


def test_every_denominator_is_a_published_key_and_rows_use_the_printed_counts():
    pub = published_by_key()
    specs = proportion_specs()
    assert {s.numerator for s in specs} <= set(pub) and {s.denominator for s in specs} <= set(pub)
    rows = {r["proportion"]: r for r in proportion_rows({})}
    assert rows["chemotherapy received"]["published"] == "20/22 = 0.909 (0.708-0.989)"


def test_reproduced_counts_get_their_own_interval():
    rows = proportion_rows({"g": {"n_patients": 10, "chemo_received": 7}})
    row = next(r for r in rows if r["proportion"] == "chemotherapy received")
    assert row["reproduced (g)"] == exact(7, 10).show()
    other = next(r for r in rows if r["proportion"] == "stage IV at first diagnosis")
    assert other["reproduced (g)"] == "NA"  # the group gave no count


def _exponential(rate_per_year: np.ndarray, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.exponential(12.0 / rate_per_year)  # months


def test_cox_continuous_recovers_a_known_hazard_ratio_per_year():
    years = np.repeat(np.arange(0, 10, dtype=float), 60)
    durations = _exponential(0.5 * 1.25 ** years)  # hazard x1.25 per year
    res = cox_continuous(durations, np.ones(len(years), bool), years, "years")
    assert res is not None and res.hazard_ratio == pytest.approx(1.25, abs=0.05)
    assert res.ci[0] < 1.25 < res.ci[1] and res.p < 1e-6


def test_cox_continuous_without_an_effect_keeps_one_inside_the_interval():
    years = np.repeat(np.arange(0, 10, dtype=float), 30)
    durations = _exponential(np.full(len(years), 0.5), seed=3)
    res = cox_continuous(durations, np.ones(len(years), bool), years, "years")
    assert res.ci[0] < 1.0 < res.ci[1]


def test_cox_continuous_drops_missing_covariates_and_refuses_a_constant():
    d, e = np.array([1.0, 2.0, 3.0, 4.0]), np.array([True, True, False, True])
    res = cox_continuous(d, e, np.array([0.5, np.nan, 2.0, 3.0]), "x")
    assert res is not None and res.n == 3
    assert cox_continuous(d, e, np.ones(4), "x") is None
    assert cox_continuous(d, np.zeros(4, bool), np.arange(4.0), "x") is None

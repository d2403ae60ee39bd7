"""Kaplan-Meier, log-rank and Cox results checked against independent computations.

Three kinds of reference, each with its tolerance stated next to the check:
1. small data sets worked by hand (exact fractions; tolerance 1e-12 for floating point);
2. an independent product-limit / Greenwood / log-rank implementation written here in plain
   Python (no lifelines), run on the same data (tolerance 1e-9);
3. published values: the Gehan (1965) leukaemia data (log-rank chi-square 16.79294 as printed by
   R packages; medians 23 and 8 months), R's ``aml`` data (survdiff chi-square printed as 3.4,
   coxph coefficient 0.9155) and the lifelines documentation's own examples on its bundled
   ``load_dd`` data (median 4.0; 3 vs 6; log-rank 260.47). Tolerance: half a unit of the last
   printed digit.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from cohort.outcomes.survival import (
    MONTH_DAYS,
    SurvivalInputError,
    cox_binary,
    kaplan_meier,
    logrank,
    midpoint_median,
    symmetric_median_ci,
)

Z = 1.959963984540054


# --- an independent implementation (plain Python, textbook formulas) ---------------------------
def pl_km(times, events):
    """Product-limit estimate: list of (t, n, d, S, greenwood_sum) at each event time."""
    rows, s, gw = [], 1.0, 0.0
    for t in sorted({t for t, e in zip(times, events, strict=True) if e}):
        n = sum(1 for x in times if x >= t)
        d = sum(1 for x, e in zip(times, events, strict=True) if x == t and e)
        s *= 1 - d / n
        gw += d / (n * (n - d)) if n > d else math.inf
        rows.append((t, n, d, s, gw))
    return rows


def pl_loglog_band(s, gw):
    """Exponential Greenwood (log(-log)) 95% band of S: (lower, upper)."""
    if s <= 0 or s >= 1 or not math.isfinite(gw):
        return (0.0, 0.0) if s <= 0 else (1.0, 1.0)
    c = Z * math.sqrt(gw / math.log(s) ** 2)
    return s ** math.exp(c), s ** math.exp(-c)


def pl_median(rows):
    return next((t for t, _, _, s, _ in rows if s <= 0.5), None)


def pl_median_ci(rows):
    """Times at which the lower / upper band first reach 0.5 (lower / upper CI of the median)."""
    lo = next((t for t, _, _, s, g in rows if pl_loglog_band(s, g)[0] <= 0.5), None)
    hi = next((t for t, _, _, s, g in rows if pl_loglog_band(s, g)[1] <= 0.5), None)
    return lo, hi


def pl_logrank(t_a, e_a, t_b, e_b):
    """Mantel-Cox chi-square with the hypergeometric variance."""
    times = [*t_a, *t_b]
    events = [*e_a, *e_b]
    in_a = [True] * len(t_a) + [False] * len(t_b)
    o_e = var = 0.0
    for t in sorted({t for t, e in zip(times, events, strict=True) if e}):
        n = sum(1 for x in times if x >= t)
        na = sum(1 for x, a in zip(times, in_a, strict=True) if x >= t and a)
        d = sum(1 for x, e in zip(times, events, strict=True) if x == t and e)
        da = sum(1 for x, e, a in zip(times, events, in_a, strict=True) if x == t and e and a)
        o_e += da - d * na / n
        if n > 1:
            var += d * (na / n) * (1 - na / n) * (n - d) / (n - 1)
    return o_e ** 2 / var


# --- 1. worked by hand -----------------------------------------------------------------------------
HAND_T = [2, 3, 3, 5, 6, 8]
HAND_E = [True, True, False, True, False, True]


def test_km_by_hand():
    # t=2: 6 at risk, 1 death -> 5/6; t=3: 5 at risk (the censoring at 3 still counts), 1 death
    # -> 4/6; t=5: 3 at risk -> 4/6 * 2/3 = 4/9 (first S <= 0.5: median 5); t=8: 1 at risk -> 0.
    km = kaplan_meier(HAND_T, HAND_E, times=(2.5, 4.0, 7.0))
    assert km.median == 5
    assert km.survival_at[2.5][0] == pytest.approx(5 / 6, abs=1e-12)
    assert km.survival_at[4.0][0] == pytest.approx(4 / 6, abs=1e-12)
    assert km.survival_at[7.0][0] == pytest.approx(4 / 9, abs=1e-12)
    # Greenwood sum at 5: 1/(6*5) + 1/(5*4) + 1/(3*2) = 1/4, so var(log S) = 1/4 and the
    # log(-log) band at t=5 is (4/9)^exp(+-1.96 * sqrt(0.25) / |log 4/9|).
    c = Z * 0.5 / abs(math.log(4 / 9))
    _, lo, hi = km.survival_at[7.0]
    assert lo == pytest.approx((4 / 9) ** math.exp(c), abs=1e-9)
    assert hi == pytest.approx((4 / 9) ** math.exp(-c), abs=1e-9)
    assert km.at_risk[0.0] == 6 and km.n == 6 and km.events == 4
    assert km.alive_at[4.0] == 3 and km.censored_before[4.0] == 1


def test_logrank_by_hand():
    # A: deaths at 1 and 3, censored at 4; B: deaths at 2, 3, 5.
    # t=1: nA=3 n=6 d=1 -> E_A=1/2, V=1/4; t=2: nA=2 n=5 d=1 -> E_A=2/5, V=6/25;
    # t=3: nA=2 n=4 d=2 -> E_A=1, V=2*(1/2)(1/2)(2/3)=1/3; t=5: nA=0 -> nothing.
    # O_A - E_A = 2 - 1.9 = 0.1; V = 0.25 + 0.24 + 1/3; chi2 = 0.01 / V.
    res = logrank([1, 3, 4, 2, 3, 5], [1, 1, 0, 1, 1, 1], ["a"] * 3 + ["b"] * 3, ("a", "b"))
    v = 0.25 + 0.24 + 1 / 3
    assert res.chi2 == pytest.approx(0.01 / v, abs=1e-12)
    assert res.p == pytest.approx(math.erfc(math.sqrt(0.01 / v / 2)), abs=1e-12)


def test_midpoint_median_when_curve_sits_on_half():
    # S = 1/2 exactly after t=2: lifelines' rule gives 2, R's midpoint rule (2 + 3) / 2.
    assert kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1]).median == 2
    assert midpoint_median([1, 2, 3, 4], [1, 1, 1, 1]) == 2.5
    assert midpoint_median([1, 2, 3], [1, 1, 1]) == 2  # S jumps past 1/2: no ambiguity


def test_median_not_reached():
    km = kaplan_meier([5, 6, 7, 8], [1, 0, 0, 0])
    assert km.median is None and km.median_ci[1] is None
    assert symmetric_median_ci([5, 6, 7, 8], [1, 0, 0, 0]) is None


def test_survival_beyond_follow_up_is_not_estimated():
    km = kaplan_meier([1, 2, 3], [1, 1, 0], times=(12.0,))  # the last one censored at 3
    assert km.survival_at[12.0] == (None, None, None)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [-1.0, 2.0]])
def test_bad_input_is_refused(bad):
    with pytest.raises(SurvivalInputError):
        kaplan_meier(bad, [True] * len(bad))


# --- 2. against the independent implementation on random censored data -------------------------
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_km_and_logrank_match_independent_code(seed):
    rng = np.random.default_rng(seed)
    n = 30
    t = np.round(rng.exponential(20, n), 0) + 1  # whole months: many ties
    e = rng.random(n) < 0.75
    g = np.where(rng.random(n) < 0.5, "x", "y")
    rows = pl_km(list(t), list(e))
    km = kaplan_meier(t, e, times=tuple(float(r[0]) for r in rows[:-1]))
    for tt, _, _, s, gw in rows[:-1]:
        got_s, got_lo, got_hi = km.survival_at[float(tt)]
        assert got_s == pytest.approx(s, abs=1e-9)
        if 0 < s < 1:
            lo, hi = pl_loglog_band(s, gw)
            assert (got_lo, got_hi) == pytest.approx((lo, hi), abs=1e-9)
    assert km.median == pl_median(rows)
    exp_lo, exp_hi = pl_median_ci(rows)
    assert km.median_ci == (exp_lo, exp_hi)
    a, b = g == "x", g == "y"
    res = logrank(t, e, g, ("x", "y"))
    assert res.chi2 == pytest.approx(pl_logrank(list(t[a]), list(e[a]), list(t[b]), list(e[b])),
                                     abs=1e-9)


# --- 3. published values -------------------------------------------------------------------------
GEHAN_6MP_T = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
GEHAN_6MP_E = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
GEHAN_PLACEBO_T = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]


def test_gehan_leukaemia_published_values():
    t = GEHAN_6MP_T + GEHAN_PLACEBO_T
    e = GEHAN_6MP_E + [1] * 21
    g = ["6-MP"] * 21 + ["placebo"] * 21
    res = logrank(t, e, g, ("6-MP", "placebo"))
    assert res.chi2 == pytest.approx(16.79294, abs=5e-6)  # printed 1.679294e+01
    assert res.p == pytest.approx(4.168809e-05, abs=5e-12)  # printed 4.168809e-05
    assert res.groups[0].median == 23 and res.groups[1].median == 8


AML_MAINTAINED = ([9, 13, 13, 18, 23, 28, 31, 34, 45, 48, 161], [1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0])
AML_NONMAINTAINED = ([5, 5, 8, 8, 12, 16, 23, 27, 30, 33, 43, 45], [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1])


def test_r_aml_published_values():
    t = AML_MAINTAINED[0] + AML_NONMAINTAINED[0]
    e = AML_MAINTAINED[1] + AML_NONMAINTAINED[1]
    g = ["m"] * 11 + ["n"] * 12
    res = logrank(t, e, g, ("m", "n"))
    assert res.chi2 == pytest.approx(3.4, abs=0.05)  # survdiff: "Chisq= 3.4 on 1 degrees of freedom"
    assert res.p == pytest.approx(0.07, abs=0.005)  # "p= 0.07"
    assert (res.groups[0].median, res.groups[1].median) == (31, 23)  # survfit medians
    cox = cox_binary(t, e, [0] * 11 + [1] * 12, "nonmaintained")
    assert cox is not None
    assert math.log(cox.hazard_ratio) == pytest.approx(0.9155, abs=5e-5)  # coxph coef 0.9155


def test_lifelines_documented_example():
    lifelines_datasets = pytest.importorskip("lifelines.datasets")
    data = lifelines_datasets.load_dd()
    t, e = data["duration"].to_numpy(), data["observed"].to_numpy().astype(bool)
    assert kaplan_meier(t, e).median == 4.0  # docs: kmf.median_ -> 4.0
    dem = np.where(data["democracy"] == "Democracy", "dem", "non")
    res = logrank(t, e, dem, ("dem", "non"))
    assert res.chi2 == pytest.approx(260.47, abs=0.005)  # docs: test_statistic 260.47
    assert (res.groups[0].median, res.groups[1].median) == (3, 6)  # docs: 3 and 6


def test_paper_timeline_fit_report_values(shared):
    """fit_report.md's numbers for the synthetic timeline (computed there, re-read here)."""
    import pandas as pd

    tl = pd.read_csv(shared / "paper" / "timeline.csv")
    t = (pd.to_datetime(tl.end_date) - pd.to_datetime(tl.bmc_date)).dt.days / MONTH_DAYS
    km = kaplan_meier(t, tl.death)
    assert km.median == pytest.approx(18.99, abs=0.005)
    assert km.median_ci == pytest.approx((6.01, 27.01), abs=0.005)
    assert km.symmetric_ci == pytest.approx((10.49, 27.49), abs=0.005)
    onset = np.where(tl.interval_primary_to_bmc_months < 36, "early", "late")
    res = logrank(t, tl.death, onset, ("early", "late"))
    assert res.chi2 == pytest.approx(0.7540, abs=0.00005)
    assert res.p == pytest.approx(0.3852, abs=0.00005)


def test_survival_after_everyone_died_is_zero_not_missing():
    """S(48) when the last patient died at 40 months is 0; with the last one censored at 40
    it is not estimable (None)."""
    from cohort.outcomes.survival import kaplan_meier

    dead = kaplan_meier([10, 20, 40], [True, True, True])
    assert dead.survival_at[48.0] == (0.0, 0.0, 0.0)
    censored = kaplan_meier([10, 20, 40], [True, True, False])
    assert censored.survival_at[48.0] == (None, None, None)

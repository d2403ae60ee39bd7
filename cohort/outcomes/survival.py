"""Overall survival: Kaplan-Meier estimates, the log-rank test and a Cox model (lifelines).

Conventions (the same as ``../shared/paper/fit_report.md`` "Conventions", so results can be held
next to the paper):

* Time is in months, 1 month = 30.4375 days (365.25 / 12); a duration is ``days / 30.4375``.
* Event = death of any cause; everyone else is right-censored at their last follow-up (or at the
  data cut-off). Censoring is assumed independent of survival (non-informative), as every KM
  and log-rank analysis assumes.
* Median = lifelines ``median_survival_time_``: the smallest t with S(t) <= 0.5, no
  interpolation. R's ``survfit`` takes the midpoint of the two event times when S is exactly 0.5
  over an interval; that value is kept as ``median_midpoint`` for comparison.
* 95% CI of the median = lifelines ``median_survival_times(confidence_interval_)``: the times at
  which the pointwise exponential-Greenwood ("log(-log)") 95% band of S(t) crosses 0.5.
  A second, symmetric interval (median +/- 1.96 SE, "SPSS-style", see :func:`symmetric_median_ci`)
  is reported as auxiliary, because the paper's Figure 1 interval has that form.
* Log-rank = lifelines ``logrank_test``: hypergeometric variance, chi-square with 1 df.
* Cox = lifelines ``CoxPHFitter`` with Efron ties and no penalty; the hazard ratio of a binary
  covariate assumes proportional hazards, which 9 vs 13 patients cannot test with any power.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import median_survival_times

MONTH_DAYS = 30.4375
CI_METHOD = ("exponential Greenwood (log(-log)) pointwise 95% band of S(t), median CI where the "
             "band crosses 0.5 (lifelines median_survival_times)")
SYMMETRIC_CI_METHOD = ("median +/- 1.96 SE, SE = Greenwood SE of S(median) / density, density from "
                       "the last event time with S >= 0.55 and the first with S <= 0.45 "
                       "(SPSS-style; auxiliary)")


class SurvivalInputError(ValueError):
    """The survival data cannot be analysed (no rows, negative times, missing values)."""


def months(days: float | int) -> float:
    """Days -> months at 30.4375 days per month."""
    return float(days) / MONTH_DAYS


def months_between_dates(start, end) -> float | None:
    """(end - start) in months of 30.4375 days; None when either date is missing."""
    if start is None or end is None:
        return None
    return (end - start).days / MONTH_DAYS


@dataclass(frozen=True)
class KaplanMeier:
    """A fitted Kaplan-Meier curve and the figures read from it (times in months)."""

    label: str
    n: int
    events: int
    median: float | None  # None: not reached
    median_ci: tuple[float | None, float | None]
    median_midpoint: float | None
    symmetric_ci: tuple[float, float] | None
    survival_at: dict[float, tuple[float | None, float | None, float | None]]  # t -> (S, lo, hi)
    at_risk: dict[float, int]
    alive_at: dict[float, int]  # t -> patients observed alive at t (time >= t)
    censored_before: dict[float, int]  # t -> censored before t (status at t unknown)
    curve: pd.DataFrame  # columns t, S, lo, hi (step function, starts at t=0)
    durations: tuple[float, ...]
    observed: tuple[bool, ...]
    ci_method: str = CI_METHOD


@dataclass(frozen=True)
class LogRank:
    """Two-group log-rank test (lifelines ``logrank_test``)."""

    labels: tuple[str, str]
    chi2: float
    p: float
    df: int
    groups: tuple[KaplanMeier, KaplanMeier]
    method: str = "log-rank (Mantel-Cox), hypergeometric variance, chi-square 1 df (lifelines)"


@dataclass(frozen=True)
class CoxResult:
    """Cox model of one binary covariate; ``warnings`` holds lifelines' convergence messages."""

    covariate: str
    hazard_ratio: float
    ci: tuple[float, float]
    p: float
    concordance: float
    n: int
    events: int
    warnings: tuple[str, ...] = field(default_factory=tuple)


def _check(durations: np.ndarray, observed: np.ndarray) -> None:
    if len(durations) == 0:
        raise SurvivalInputError("no patients to analyse")
    if np.isnan(durations).any():
        raise SurvivalInputError("missing survival times")
    if (durations < 0).any():
        raise SurvivalInputError("negative survival time (end before start)")
    if len(observed) != len(durations):
        raise SurvivalInputError("durations and events differ in length")


def _step_at(series: pd.Series, t: float) -> float:
    """Value of a right-continuous step function (index = times) at t."""
    sub = series.loc[:t]
    return float(sub.iloc[-1]) if len(sub) else float(series.iloc[0])


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def kaplan_meier(durations, observed, label: str = "all", *,
                 times: tuple[float, ...] = (12.0, 24.0, 48.0),
                 at_risk_times: tuple[float, ...] = (0, 12, 24, 36, 48, 60, 72)) -> KaplanMeier:
    """Kaplan-Meier estimate of S(t) with the median, its 95% CI and S at ``times``.

    ``durations`` are months, ``observed`` True for deaths. S(t) at a time beyond the last
    follow-up is not estimable and is returned as None, unless the last patient died: then
    S(t) = 0.
    """
    d = np.asarray(durations, dtype=float)
    e = np.asarray(observed, dtype=bool)
    _check(d, e)
    kmf = KaplanMeierFitter(alpha=0.05).fit(d, e, label=label)
    sf = kmf.survival_function_[label]
    ci = kmf.confidence_interval_survival_function_
    lo_col, hi_col = ci.columns[0], ci.columns[1]
    med = _finite(kmf.median_survival_time_)
    mci = median_survival_times(kmf.confidence_interval_)
    ci_lo = _finite(float(mci.iloc[0, 0]))
    ci_hi = _finite(float(mci.iloc[0, 1]))
    surv: dict[float, tuple[float | None, float | None, float | None]] = {}
    for t in times:
        if t > d.max() and sf.iloc[-1] > 0:  # followed no further, someone still alive
            surv[t] = (None, None, None)
        elif t > d.max():  # everyone died before t: S(t) = 0 is known, not missing
            surv[t] = (0.0, 0.0, 0.0)
        else:
            surv[t] = (_step_at(sf, t), _step_at(ci[lo_col], t), _step_at(ci[hi_col], t))
    curve = pd.DataFrame({"t": sf.index.to_numpy(dtype=float), "S": sf.to_numpy(),
                          "lo": ci[lo_col].to_numpy(), "hi": ci[hi_col].to_numpy()})
    return KaplanMeier(
        label=label, n=len(d), events=int(e.sum()), median=med, median_ci=(ci_lo, ci_hi),
        median_midpoint=midpoint_median(d, e), symmetric_ci=symmetric_median_ci(d, e),
        survival_at=surv,
        at_risk={float(t): int((d >= t).sum()) for t in at_risk_times},
        alive_at={float(t): int((d >= t).sum()) for t in times},
        censored_before={float(t): int(((d < t) & ~e).sum()) for t in times},
        curve=curve, durations=tuple(float(x) for x in d), observed=tuple(bool(x) for x in e),
    )


def _km_table(d: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Event times, numbers at risk, deaths and S after each event time (product-limit)."""
    ts = np.unique(d[e])
    n = np.array([(d >= t).sum() for t in ts], dtype=float)
    dd = np.array([((d == t) & e).sum() for t in ts], dtype=float)
    s = np.cumprod(1.0 - dd / n)
    return ts, n, dd, s


def midpoint_median(durations, observed) -> float | None:
    """Median with R's convention: if S(t) == 0.5 exactly after an event time, the midpoint of
    that time and the next event time; otherwise the first time with S <= 0.5."""
    d = np.asarray(durations, dtype=float)
    e = np.asarray(observed, dtype=bool)
    ts, _, _, s = _km_table(d, e)
    idx = np.nonzero(s <= 0.5 + 1e-12)[0]
    if len(idx) == 0:
        return None
    k = int(idx[0])
    if abs(s[k] - 0.5) < 1e-12:
        return float((ts[k] + ts[k + 1]) / 2) if k + 1 < len(ts) else float(ts[k])
    return float(ts[k])


def symmetric_median_ci(durations, observed, z: float = 1.959964) -> tuple[float, float] | None:
    """Symmetric 95% CI of the KM median, median +/- z * SE (the form SPSS prints).

    SE(median) = SE_Greenwood(S(median)) / f with f = (S(u) - S(l)) / (l - u), u the last event
    time with S >= 0.55 and l the first event time with S <= 0.45 (a uniform-kernel density
    estimate around the median). An approximation documented in fit_report.md; not checked
    against SPSS itself. None when the median or the density is not estimable.
    """
    d = np.asarray(durations, dtype=float)
    e = np.asarray(observed, dtype=bool)
    ts, n, dd, s = _km_table(d, e)
    idx = np.nonzero(s <= 0.5 + 1e-12)[0]
    if len(idx) == 0:
        return None
    k = int(idx[0])
    med = ts[k]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(n > dd, dd / (n * (n - dd)), np.inf)
    se_s = s[k] * math.sqrt(float(terms[: k + 1].sum()))
    upper = np.nonzero(s >= 0.55)[0]
    lower = np.nonzero(s <= 0.45)[0]
    if len(upper) == 0 or len(lower) == 0:
        return None
    u, lidx = int(upper[-1]), int(lower[0])
    if ts[lidx] == ts[u]:
        return None
    f = (s[u] - s[lidx]) / (ts[lidx] - ts[u])
    if not math.isfinite(se_s) or f <= 0:
        return None
    half = z * se_s / f
    return float(med - half), float(med + half)


def logrank(durations, observed, group, labels: tuple[str, str]) -> LogRank:
    """Log-rank test of ``group == labels[0]`` vs ``group == labels[1]`` (other rows ignored)."""
    d = np.asarray(durations, dtype=float)
    e = np.asarray(observed, dtype=bool)
    g = np.asarray(group)
    a, b = g == labels[0], g == labels[1]
    if not a.any() or not b.any():
        raise SurvivalInputError(f"log-rank needs both groups ({labels[0]} n={a.sum()}, "
                                 f"{labels[1]} n={b.sum()})")
    res = logrank_test(d[a], d[b], e[a], e[b])
    return LogRank(labels=labels, chi2=float(res.test_statistic), p=float(res.p_value), df=1,
                   groups=(kaplan_meier(d[a], e[a], labels[0]), kaplan_meier(d[b], e[b], labels[1])))


def _fit_cox(d: np.ndarray, e: np.ndarray, x: np.ndarray, name: str) -> CoxResult | None:
    """lifelines CoxPHFitter of one covariate; None if lifelines cannot fit it. Convergence
    warnings are kept in the result, not hidden."""
    df = pd.DataFrame({"T": d, "E": e.astype(int), name: x})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cph = CoxPHFitter().fit(df, "T", "E")
        except Exception as exc:  # lifelines raises ConvergenceError and linear-algebra errors
            if type(exc).__name__ in ("ConvergenceError", "LinAlgError"):
                return None
            raise
    s = cph.summary.loc[name]
    return CoxResult(
        covariate=name, hazard_ratio=float(s["exp(coef)"]),
        ci=(float(s["exp(coef) lower 95%"]), float(s["exp(coef) upper 95%"])),
        p=float(s["p"]), concordance=float(cph.concordance_index_), n=len(d), events=int(e.sum()),
        warnings=tuple(str(w.message).splitlines()[0] for w in caught),
    )


def cox_binary(durations, observed, covariate, name: str) -> CoxResult | None:
    """Cox proportional-hazards model of one 0/1 covariate; None if it cannot be fitted
    (a group without events, or no variation). Convergence warnings are kept, not hidden."""
    d = np.asarray(durations, dtype=float)
    e = np.asarray(observed, dtype=bool)
    x = np.asarray(covariate, dtype=float)
    if len(np.unique(x)) < 2 or e.sum() == 0:
        return None
    return _fit_cox(d, e, x, name)


def cox_continuous(durations, observed, covariate, name: str) -> CoxResult | None:
    """Cox model of one continuous covariate: the hazard ratio per unit of ``covariate``
    (pass years to get the HR per year), Wald CI and p (lifelines, Efron ties).

    Keeping the covariate continuous uses every patient's value instead of a cut-off chosen
    after the fact, so it is the fairer test of "prognosis does not depend on X"; it assumes
    the log hazard is linear in X and proportional over time. Rows with a missing covariate
    are dropped; None when fewer than two distinct values or no event remain."""
    d = np.asarray(durations, dtype=float)
    e = np.asarray(observed, dtype=bool)
    x = np.asarray(covariate, dtype=float)
    keep = ~np.isnan(x) & ~np.isnan(d)
    d, e, x = d[keep], e[keep], x[keep]
    if len(np.unique(x)) < 2 or e.sum() == 0:
        return None
    return _fit_cox(d, e, x, name)

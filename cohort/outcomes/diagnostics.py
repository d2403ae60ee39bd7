"""Diagnostic figures: how sensitive the leukoerythroblastic smear is, and whether the number
of normoblasts relates to survival.

* **Smear sensitivity** among histology-confirmed patients: a smear counts as positive when the
  index CBC shows normoblasts > 0 per 100 WBC (the paper's "leukoerythroblastic smear"); a
  second figure also requires cytopenia of CTC grade >= 1 (the paper's inclusion rule for the
  smear route). The 95% interval is Wilson's score interval (no continuity correction),
  which assumes independent patients and keeps within [0, 1] for small n.
* **Normoblasts vs survival**: Pearson's product-moment r between normoblasts per 100 WBC and
  overall survival from BMC in months, over all patients with survivors entered with their
  censored follow-up (the paper gives no method; this is the simplest reading of "correlation
  coefficient"; Pearson assumes a linear relation and is sensitive to the one extreme count).
  Spearman's rho and Pearson over deaths only are given beside it. The p values test r = 0
  (t distribution with n - 2 df).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class Proportion:
    k: int
    n: int
    ci: tuple[float, float] | None

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None


@dataclass(frozen=True)
class Correlation:
    coefficient: str
    r: float | None
    p: float | None
    n: int
    spearman_rho: float | None
    pearson_deaths_only: float | None


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def smear_sensitivity(t2: pd.DataFrame, require_cytopenia: bool = False) -> Proportion:
    """Share of histology-confirmed patients whose index smear was leukoerythroblastic."""
    h = t2[t2["bmc_diagnosis"] == "histology"]
    pos = h["normoblasts_per_100_wbc"].fillna(0) > 0
    if require_cytopenia:
        pos &= h[["anemia_ctc_grade", "thrombopenia_ctc_grade", "leukopenia_ctc_grade"]
                 ].fillna(0).max(axis=1) >= 1
    k, n = int(pos.sum()), len(h)
    return Proportion(k, n, wilson(k, n))


def _pearson(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return None, None
    r, p = stats.pearsonr(x, y)
    return float(r), float(p)


def normoblasts_vs_survival(normoblasts, os_months, died) -> Correlation:
    """Pearson r (main figure), Spearman rho and deaths-only Pearson r."""
    df = pd.DataFrame({"x": normoblasts, "y": os_months, "d": died}).dropna(subset=["x", "y"])
    x, y = df["x"].to_numpy(float), df["y"].to_numpy(float)
    r, p = _pearson(x, y)
    rho = float(stats.spearmanr(x, y).statistic) if len(x) >= 3 and np.std(x) > 0 else None
    dd = df[df["d"].astype(bool)]
    r_d, _ = _pearson(dd["x"].to_numpy(float), dd["y"].to_numpy(float))
    return Correlation("Pearson r (normoblasts per 100 WBC vs OS from BMC in months, censored "
                       "times as observed)", r, p, len(x), rho, r_d)

"""Incidence of BMC among the breast-cancer patients in the database.

The figure is a period proportion, not a rate: patients in the cohort / patients with a
breast-cancer Condition (value set breast_cancer), with Wilson's 95% interval. It assumes the
database holds every breast-cancer patient the institution treated in the same period, which a
hospital extract rarely guarantees; a cohort patient without a coded breast cancer is counted
in the numerator and reported separately.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .diagnostics import wilson


@dataclass(frozen=True)
class Incidence:
    label: str
    cases: int
    breast_cancer_patients: int
    cases_without_breast_cancer: int
    first_year: int | None
    last_year: int | None
    ci: tuple[float, float] | None

    @property
    def proportion(self) -> float | None:
        return self.cases / self.breast_cancer_patients if self.breast_cancer_patients else None


def incidence(label: str, case_keys, breast_cancer: pd.DataFrame) -> Incidence:
    """``breast_cancer``: one row per breast-cancer patient (``patient_key``, ``first_onset``)."""
    cases = set(case_keys)
    denom = set(breast_cancer["patient_key"])
    years = pd.to_datetime(breast_cancer["first_onset"]).dt.year.dropna()
    k = len(cases & denom)
    return Incidence(label, k, len(denom), len(cases - denom),
                     int(years.min()) if len(years) else None,
                     int(years.max()) if len(years) else None, wilson(k, len(denom)))

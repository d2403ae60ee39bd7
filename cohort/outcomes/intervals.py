"""Exact (Clopper-Pearson) 95% intervals for the paper's proportions.

With 22 patients a Wald interval (p +/- 1.96 SE) leaves [0, 1] and undercovers; Wilson's score
interval (used in the diagnostics and incidence tables) is closer to 95% on average but can
undercover at a given n. The Clopper-Pearson interval inverts two one-sided exact binomial
tests, so its coverage is at least 95% for every true proportion (it is conservative: wider
than needed on average). It is what a reader of a small case series should see beside each
printed proportion. Computed with ``scipy.stats.binomtest(k, n).proportion_ci(method='exact')``.

Which published counts form a proportion, and over which denominator, is data:
``cohort/data/proportions.csv`` (``numerator`` and ``denominator`` are keys of
``cohort/data/published.csv``). The reproduced proportion of a group uses the same keys on the
values the verdicts read from the FHIR data, so the published and the reproduced interval stand
side by side.
"""
from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from scipy import stats

from .published import PublishedNumber, published_by_key

PROPORTIONS_FILE = Path(__file__).resolve().parents[1] / "data" / "proportions.csv"
METHOD = "exact binomial (Clopper-Pearson) 95% interval, scipy.stats.binomtest"


@dataclass(frozen=True)
class ExactProportion:
    """k of n with its exact interval (None when n = 0 or the counts are unknown)."""

    k: int | None
    n: int | None
    ci: tuple[float, float] | None

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.k is not None and self.n else None

    def show(self) -> str:
        if self.value is None or self.ci is None:
            return "NA"
        return f"{self.k}/{self.n} = {self.value:.3f} ({self.ci[0]:.3f}-{self.ci[1]:.3f})"


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float] | None:
    """Exact two-sided ``level`` interval of a binomial proportion k/n; None for n = 0.

    Raises ValueError for k < 0 or k > n (a count that cannot be a proportion)."""
    if n == 0:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"k = {k} is not between 0 and n = {n}")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


def exact(k: int | None, n: int | None) -> ExactProportion:
    """k/n with its Clopper-Pearson interval; unknown counts stay unknown."""
    if k is None or n is None or n == 0 or k > n:
        return ExactProportion(k, n, None)
    return ExactProportion(int(k), int(n), clopper_pearson(int(k), int(n)))


@dataclass(frozen=True)
class ProportionSpec:
    """One row of ``proportions.csv``: ``label`` = ``numerator`` / ``denominator`` keys."""

    label: str
    numerator: str
    denominator: str
    note: str


@cache
def proportion_specs(path: Path = PROPORTIONS_FILE) -> tuple[ProportionSpec, ...]:
    """The rows of ``proportions.csv``; every key must be a published key (ValueError naming
    the file and line otherwise)."""
    keys = published_by_key()
    out = []
    with Path(path).open(newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            for col in ("numerator", "denominator"):
                if row[col] not in keys:
                    raise ValueError(f"{path} line {n}: {col} {row[col]!r} is not a key of "
                                     "cohort/data/published.csv")
            out.append(ProportionSpec(row["label"], row["numerator"], row["denominator"],
                                      row.get("note") or ""))
    return tuple(out)


def _count(p: PublishedNumber | None) -> int | None:
    if p is None or p.number is None or not float(p.number).is_integer():
        return None
    return int(p.number)


def _as_count(value) -> int | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(f) if f.is_integer() else None


def proportion_rows(reproduced: Mapping[str, Mapping[str, object]],
                    specs: tuple[ProportionSpec, ...] | None = None) -> list[dict[str, str]]:
    """One row per proportion: the published k/n and interval, then per group (``reproduced``:
    group label -> published key -> reproduced value) the reproduced k/n and interval."""
    pub = published_by_key()
    rows = []
    for s in specs or proportion_specs():
        row = {"proportion": s.label,
               "published": exact(_count(pub.get(s.numerator)),
                                  _count(pub.get(s.denominator))).show()}
        for label, values in reproduced.items():
            row[f"reproduced ({label})"] = exact(_as_count(values.get(s.numerator)),
                                                 _as_count(values.get(s.denominator))).show()
        row["note"] = s.note
        rows.append(row)
    return rows

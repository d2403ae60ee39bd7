"""The paper's numbers as kept in the project: ``cohort/data/published.csv``.

One row per number printed in the paper (Anticancer Research 31:4025-4030, 2011): ``key``,
``value`` as printed (``NA`` = not available in a table), ``unit``, ``source`` (Abstract,
Results, Figure 1 caption, Table I, Table II) and the ``statement`` it comes from. Table I/II
cells have keys ``table_i.<NN>.<column>`` / ``table_ii.<NN>.<column>`` (NN = paper patient).

The tolerance with which a reproduced value "equals" a printed one follows from how it was
printed: counts, grades and text must match exactly; a measured quantity (months, r, chi-square,
p, percent) matches when it rounds to the printed value, i.e. lies within half a unit of the
last printed digit.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "published.csv"
EXACT_UNITS = frozenset({"patients", "events", "year", "regimens", "CTC grade", "text", "claim"})
TABLE_I_COLUMNS = ("age_years", "sex", "histology", "grade", "er", "pr", "her2", "stage")
TABLE_II_COLUMNS = ("interval_months", "prior_regimens", "bmc_diagnosis",
                    "normoblasts_per_100_wbc", "leukopenia_ctc_grade", "anemia_ctc_grade",
                    "thrombopenia_ctc_grade", "metastatic_sites")


@dataclass(frozen=True)
class PublishedNumber:
    """One number of the paper, as printed."""

    key: str
    value: str
    unit: str
    source: str
    statement: str
    #: Why any data would reproduce it (empty: a change in the data can move it).
    by_construction: str | None = None

    @property
    def missing(self) -> bool:
        """A table cell printed as NA / '-'."""
        return self.value in ("NA", "-", "")

    @property
    def number(self) -> float | None:
        """The value as a number, or None for text, claims and NA."""
        try:
            return float(self.value)
        except ValueError:
            return None

    @property
    def tolerance(self) -> float:
        """Half a unit of the last printed digit; 0 for counts, grades and text."""
        if self.unit in EXACT_UNITS or self.number is None:
            return 0.0
        try:
            exp = Decimal(self.value).as_tuple().exponent
        except InvalidOperation:
            return 0.0
        return 0.5 * 10.0 ** int(exp) if isinstance(exp, int) else 0.0

    @property
    def table(self) -> str | None:
        """'table_i' / 'table_ii' for a table cell, else None."""
        head = self.key.split(".", 1)[0]
        return head if head in ("table_i", "table_ii") else None

    @property
    def paper_patient(self) -> int | None:
        return int(self.key.split(".")[1]) if self.table else None

    @property
    def column(self) -> str | None:
        return self.key.split(".")[2] if self.table else None


@cache
def load_published(path: Path = DATA_FILE) -> tuple[PublishedNumber, ...]:
    """Every row of the published-numbers file, in file order (keys are unique)."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        rows = tuple(PublishedNumber(**r) for r in csv.DictReader(fh))
    keys = [r.key for r in rows]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"{path}: duplicate keys {dup[:5]}")
    return rows


def published_by_key(path: Path = DATA_FILE) -> dict[str, PublishedNumber]:
    return {r.key: r for r in load_published(path)}


def published_table(name: str, path: Path = DATA_FILE) -> dict[int, dict[str, str | None]]:
    """Table I or II as transcribed: paper patient -> column -> printed value (None for NA)."""
    cols = TABLE_I_COLUMNS if name == "table_i" else TABLE_II_COLUMNS
    out: dict[int, dict[str, str | None]] = {}
    for r in load_published(path):
        patient, column = r.paper_patient, r.column
        if r.table == name and patient is not None and column is not None:
            out.setdefault(patient, dict.fromkeys(cols))[column] = (
                None if r.missing else r.value)
    return dict(sorted(out.items()))

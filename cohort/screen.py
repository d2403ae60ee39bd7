"""Screening for unrecognised BMC: who should be looked at (tier 1) or get a smear (tier 2).

Tier 1 meets the cohort definition but nobody named it (no coded marrow diagnosis, no marrow
pathology report). Tier 2 has breast cancer with bone metastases and a cytopenia of grade >= 2
that chemotherapy in the preceding weeks does not explain, and no nRBC result on file -- the
paper's "bone metastases and otherwise unexplained cytopenia". Patients a rule removed (an
alternative cause, chemotherapy) are listed as tier 'excluded' with the reason, not hidden.
The rules are ``queries/bmc/screen_*.sql``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from .definition import CohortResult, build_cohort
from .engine import DuckDBEngine, Engine
from .runner import RunInfo, run_group
from .usercodes import UserCodes

SCREEN_COLUMNS = ("patient_id", "tier", "reasons", "rank", "worst_grade", "finding_date")


@dataclass
class ScreenResult:
    """The ranked screen (one row per patient) and counts per tier."""

    screen: pd.DataFrame
    counts: dict[str, int]
    cohort: CohortResult
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def run_screen(con: duckdb.DuckDBPyConnection,
               params: Mapping[str, Any] | None = None,
               codes: UserCodes | None = None) -> ScreenResult:
    """Build the cohort (or reuse its tables when they are up to date with these parameters
    and the user's ``codes``, as after ``bmc cohort``), then the screen; ``bmc_screen`` is
    left in the database."""
    cohort = build_cohort(con, params, reuse=True, codes=codes)
    return read_screen(DuckDBEngine(con), cohort, run_group(
        con, "screen", cohort.params, extra=codes.rows if codes else None))


def read_screen(engine: Engine, cohort: CohortResult, info: RunInfo) -> ScreenResult:
    """The screen result from ``bmc_screen`` as it stands, on either engine."""
    screen = engine.query(f"SELECT {', '.join(SCREEN_COLUMNS)} FROM bmc_screen ORDER BY rank")
    counts = {t: int((screen.tier == t).sum()) for t in ("1", "2", "excluded")}
    return ScreenResult(screen, counts, cohort, cohort.notes + info.notes,
                        {**cohort.timings, **info.timings})

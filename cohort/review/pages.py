"""What the review pages show, read from the built ``bmc_*`` tables and the ``review`` table.

Pure reads: the caller builds the cohort and the screen first (``bmc review`` does at start)
and holds the connection. Rows come back as pandas frames; the templates escape every text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from ..engine import DuckDBEngine
from ..evidence import RULES, read_evidence
from . import store

#: analytes on the timeline, top to bottom (bmc_lab names; nRBC either as ratio or absolute)
TIMELINE_ANALYTES = ("hgb", "plt", "wbc", "anc", "nrbc_ratio", "nrbc_abs")
#: worklist columns a user may sort by, and statuses a user may filter by
SORTS = ("rank", "tier", "status", "finding_date", "index_date", "patient_id", "reviewed_at")
STATUSES = ("all", "unreviewed", *store.VERDICTS)


@dataclass
class PatientPage:
    """Everything on one patient's page."""

    patient_id: str
    rules: dict[str, Any]
    cohort_row: dict[str, Any] | None
    screen_row: dict[str, Any] | None
    ledger: pd.DataFrame
    diagnoses: pd.DataFrame
    labs: pd.DataFrame
    bands: pd.DataFrame
    events: pd.DataFrame
    reviews: pd.DataFrame

    @property
    def patient_key(self) -> str:
        return f"Patient/{self.patient_id}"

    @property
    def index_date(self):
        return self.cohort_row["index_date"] if self.cohort_row else None

    @property
    def finding_date(self):
        return self.screen_row["finding_date"] if self.screen_row else None

    @property
    def rule_rows(self) -> list[tuple[str, str]]:
        """(rule, 'pass' | 'FAIL') in the definition's order."""
        return [(r.removeprefix("rule_"), "pass" if self.rules[r] else "FAIL") for r in RULES]


def worklist(con: duckdb.DuckDBPyConnection, *, include_cohort: bool = False,
             status: str = "all", sort: str = "rank", descending: bool = False) -> pd.DataFrame:
    """The screen's tier 1/2 candidates (and the cohort, if asked) with their review status,
    filtered by status and sorted by one of :data:`SORTS` (unknown values: the defaults)."""
    store.ensure_table(con)
    df = con.execute(store.sql("worklist"), {"include_cohort": include_cohort}).df()
    if status in STATUSES and status != "all":
        df = df[df.status == status]
    if sort in SORTS and sort != "rank":
        df = df.sort_values([sort, "rank"], ascending=[not descending, True],
                            na_position="last", kind="stable")
    elif descending:
        df = df.iloc[::-1]
    return df.reset_index(drop=True)


def patient_page(con: duckdb.DuckDBPyConnection, patient_id: str) -> PatientPage:
    """One patient's page; :class:`cohort.evidence.UnknownPatient` if the id is unknown."""
    ev = read_evidence(DuckDBEngine(con), patient_id)
    key = f"Patient/{ev.patient_id}"
    screen = con.execute("SELECT tier, reasons, rank, worst_grade, finding_date FROM bmc_screen "
                         "WHERE patient_id = ?", [ev.patient_id]).df()
    anemia_grade4 = con.execute("SELECT value FROM bmc_parameter WHERE name = 'anemia_grade4'"
                                ).fetchone()
    bands = con.execute(store.sql("ctcae_bands"), {
        "anemia_grade4": anemia_grade4 is None or anemia_grade4[0] == "true"}).df()
    return PatientPage(
        patient_id=ev.patient_id, rules=ev.rules, cohort_row=ev.cohort_row,
        screen_row=screen.iloc[0].to_dict() if len(screen) else None,
        ledger=ev.ledger,
        diagnoses=con.execute(store.sql("patient_diagnoses"), {"patient_key": key}).df(),
        labs=con.execute(store.sql("patient_labs"), {
            "patient_key": key, "analytes": list(TIMELINE_ANALYTES)}).df(),
        bands=bands,
        events=con.execute(store.sql("patient_events"), {"patient_key": key}).df(),
        reviews=store.history(con, ev.patient_id))


def source_of(row: Any) -> str:
    """``file:line`` of a ledger row (``file#entry[n]`` for a Bundle entry)."""
    line = getattr(row, "source_line", None)
    if line is not None and not pd.isna(line):
        return f"{row.source_file}:{int(line)}"
    entry = getattr(row, "source_entry", None)
    if entry is not None and not pd.isna(entry):
        return f"{row.source_file}#{entry}"
    return str(row.source_file or "")

"""The ``review`` table: every adjudication, appended, never updated; the latest one counts.

Reviews are not built from the FHIR sources, so they live in their own table that neither
``bmc load`` (which writes the declared and provenance tables) nor a cohort build (which
replaces the ``bmc_*`` tables) touches. Each row records the definition build it was made on
(``bmc_build.fingerprint`` and the parameters), so a decision taken on an older build can be
told apart after new data arrive. SQL: ``cohort/review/sql/``.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd

from ..errors import DatabaseError, UsageError

SQL_DIR = Path(__file__).resolve().parent / "sql"

#: verdict code -> what the reviewer reads on the form and in the worklist
VERDICTS = {"confirmed": "confirmed BMC", "not_bmc": "not BMC", "unsure": "unsure"}
#: verdict -> truth label for `bmc check` (unsure is no label)
LABELS = {"confirmed": True, "not_bmc": False}
MAX_NOTE = 4000
MAX_REVIEWER = 200


@cache
def sql(name: str) -> str:
    """The text of ``cohort/review/sql/<name>.sql``."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def has_reviews_table(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("SELECT 1 FROM information_schema.tables "
                            "WHERE table_name = 'review'").fetchall())


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``review`` (if missing) and the ``review_latest`` view beside it."""
    con.execute(sql("review_table"))
    con.execute(sql("review_latest_view"))


def current_build(con: duckdb.DuckDBPyConnection) -> tuple[str | None, str]:
    """(fingerprint, parameters as JSON) of the ``bmc_*`` tables as they stand now."""
    try:
        rows = con.execute("SELECT fingerprint FROM bmc_build").fetchall()
        params = dict(con.execute("SELECT name, value FROM bmc_parameter ORDER BY name").fetchall())
    except duckdb.CatalogException:
        return None, "{}"
    return (rows[0][0] if rows else None), json.dumps(params, sort_keys=True)


def add_review(con: duckdb.DuckDBPyConnection, patient_id: str, verdict: str, note: str,
               reviewer: str, now: dt.datetime) -> str:
    """Append one decision (``now`` is passed in: the caller owns the clock); returns its id.

    Raises :class:`UsageError` for an unknown verdict, an empty reviewer name or an
    over-long text, and for a patient the cohort tables do not know.
    """
    reviewer = reviewer.strip()
    note = note.strip()
    if verdict not in VERDICTS:
        raise UsageError(f"verdict must be one of {', '.join(VERDICTS)}")
    if not reviewer:
        raise UsageError("the reviewer's name is required")
    if len(reviewer) > MAX_REVIEWER or len(note) > MAX_NOTE:
        raise UsageError(f"reviewer name at most {MAX_REVIEWER} and note at most {MAX_NOTE} "
                         f"characters")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    known = con.execute("SELECT 1 FROM bmc_patient WHERE patient_id = ? LIMIT 1",
                        [patient_id]).fetchall()
    if not known:
        raise UsageError("no such patient in this database")
    build, params = current_build(con)
    review_id = str(uuid.uuid4())
    ensure_table(con)
    con.execute(sql("review_insert"), {
        "review_id": review_id, "patient_id": patient_id, "verdict": verdict,
        "note": note or None, "reviewer": reviewer, "reviewed_at": now,
        "definition_build": build, "parameters": params})
    return review_id


def latest(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The decision that counts per reviewed patient (empty if nobody reviewed yet)."""
    if not has_reviews_table(con):
        return pd.DataFrame(columns=["patient_id", "verdict", "note", "reviewer", "reviewed_at",
                                     "definition_build", "review_id", "seq"])
    return con.execute("SELECT * FROM review_latest ORDER BY patient_id").df()


def history(con: duckdb.DuckDBPyConnection, patient_id: str) -> pd.DataFrame:
    """Every decision on one patient, newest first."""
    if not has_reviews_table(con):
        return pd.DataFrame(columns=["review_id", "verdict", "note", "reviewer", "reviewed_at",
                                     "definition_build"])
    return con.execute(sql("review_history"), {"patient_id": patient_id}).df()


def all_reviews(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every decision in the order made (for the FHIR export)."""
    if not has_reviews_table(con):
        raise DatabaseError("no adjudications in this database yet; make some with "
                            "`bmc review --db FILE`")
    return con.execute(sql("review_all")).df()


def review_labels(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, bool], int]:
    """Truth labels from the latest decisions (confirmed 1, not BMC 0) and how many patients'
    latest decision is 'unsure' (no label). :class:`DatabaseError` when nobody has reviewed."""
    df = latest(con)
    if df.empty:
        raise DatabaseError("no adjudications in this database yet; make some with "
                            "`bmc review --db FILE`")
    labels = {pid: LABELS[v] for pid, v in zip(df.patient_id, df.verdict, strict=True)
              if v in LABELS}
    return labels, int((df.verdict == "unsure").sum())


def labels_frame(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """``patient_id,label`` (1/0) as ``bmc check --truth FILE`` reads it."""
    labels, _ = review_labels(con)
    return pd.DataFrame({"patient_id": list(labels),
                         "label": [int(v) for v in labels.values()]})

"""The evidence ledger of one patient: every rule, its outcome, and the resources behind it.

What a reviewer opens to check a case: for each rule, the resources that were looked at,
whether each counted, values in canonical units with the raw ones beside them, CTCAE grades
with the LLN used and where it came from, and the source file with line or bundle entry.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from .definition import COHORT_COLUMNS, ensure_built
from .engine import DuckDBEngine, Engine
from .errors import CohortError
from .usercodes import UserCodes

RULES = ("rule_breast_cancer", "rule_marrow_evidence", "rule_smear_cytopenia", "rule_no_alt_cause")
LEDGER_COLUMNS = ("rule", "role", "counted", "resource_key", "date", "date_precision", "code",
                  "value", "unit", "value_raw", "unit_raw", "comparator", "grade", "lln",
                  "lln_source", "note", "source_file", "source_line", "source_entry")


class UnknownPatient(CohortError):
    """No Patient with that id was loaded."""


@dataclass
class EvidenceResult:
    """One patient's rule outcomes, cohort row (if any) and ledger."""

    patient_id: str
    rules: dict[str, Any]
    cohort_row: dict[str, Any] | None
    ledger: pd.DataFrame


NOT_APPLICABLE = "not applicable"


def rule_outcomes(rules: Mapping[str, Any]) -> dict[str, str]:
    """'pass', 'FAIL' or 'not applicable (why)' per rule of one patient's ``bmc_patient_rule``
    row. The SQL passes a rule it never had to apply (no nRBC-positive smear to check for
    cytopenia; histology proof, which makes the smear rules moot): a reviewer must not read
    that as evidence that was checked and found."""
    out = {}
    for rule in RULES:
        name = rule.removeprefix("rule_")
        why = None
        if name in ("smear_cytopenia", "no_alt_cause") and rules.get("histology"):
            why = "proven by histology/cytology"
        elif name in ("smear_cytopenia", "no_alt_cause") and not rules.get("nrbc_positive"):
            why = "no nRBC-positive result"
        out[name] = (f"{NOT_APPLICABLE} ({why})" if why
                     else "pass" if rules.get(rule) else "FAIL")
    return out


def evidence(con: duckdb.DuckDBPyConnection, patient_id: str,
             params: Mapping[str, Any] | None = None, codes: UserCodes | None = None
             ) -> EvidenceResult:
    """The ledger of ``patient_id`` (the Patient id, with or without 'Patient/').

    Uses the ``bmc_*`` tables when they were built with these parameters and the user's
    ``codes``, else builds them.
    """
    ensure_built(con, params, codes=codes)
    return read_evidence(DuckDBEngine(con), patient_id)


def read_evidence(engine: Engine, patient_id: str) -> EvidenceResult:
    """The ledger of ``patient_id`` from built ``bmc_*`` tables, on either engine."""
    pid = patient_id.removeprefix("Patient/")
    row = engine.query(
        f"SELECT breast_cancer, histology, coded_marrow_dx, marrow_report, nrbc_positive, "
        f"smear, smear_date, alt_cause, alt_causes, {', '.join(RULES)}, in_cohort, failed_rules "
        f"FROM bmc_patient_rule WHERE patient_id = $pid", {"pid": pid})
    if row.empty:
        raise UnknownPatient(f"no Patient with id {pid!r} in this database")
    rules = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.iloc[0].items()}
    cohort = engine.query(f"SELECT {', '.join(COHORT_COLUMNS)} FROM bmc_cohort "
                          f"WHERE patient_id = $pid", {"pid": pid})
    ledger = engine.query(
        f"SELECT {', '.join(LEDGER_COLUMNS)} FROM bmc_evidence WHERE patient_id = $pid "
        f"ORDER BY rule, date, resource_key", {"pid": pid})
    return EvidenceResult(pid, rules, cohort.iloc[0].to_dict() if len(cohort) else None, ledger)

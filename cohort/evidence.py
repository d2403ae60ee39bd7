"""The evidence ledger of one patient: every rule, its outcome, and the resources behind it.

What a reviewer opens to check a case: for each rule, the resources that were looked at,
whether each counted, values in canonical units with the raw ones beside them, CTCAE grades
with the LLN used and where it came from, and the source file with line or bundle entry.
For a patient on the screen, the ledger also holds what put them there (rule ``screen``: the
bone metastasis, the cytopenias, the chemotherapy that explains them or not), and
:func:`ledger_text` lays it all out for a terminal: per rule its outcome, then one line per
resource.
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
from .text_table import GAP, TextTable, cell_text, cell_width, wrap
from .usercodes import UserCodes

RULES = ("rule_breast_cancer", "rule_marrow_evidence", "rule_smear_cytopenia", "rule_no_alt_cause")
#: Ledger sections beside the rules: what put the patient on the screen, the counts at index.
SECTIONS = ("screen", "index_grades")
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
    screen_row: dict[str, Any] | None = None
    screen_ran: bool = False


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
        elif name in ("smear_cytopenia", "no_alt_cause") and not rules.get("nrbc_result", True):
            why = "no nRBC result on file"
        elif name in ("smear_cytopenia", "no_alt_cause") and not rules.get("nrbc_positive"):
            why = "no nRBC-positive result"
        out[name] = (f"{NOT_APPLICABLE} ({why})" if why
                     else "pass" if rules.get(rule) else "FAIL")
    return out


def evidence(con: duckdb.DuckDBPyConnection, patient_id: str,
             params: Mapping[str, Any] | None = None, codes: UserCodes | None = None
             ) -> EvidenceResult:
    """The ledger of ``patient_id`` (the Patient id, with or without 'Patient/').

    Uses the ``bmc_*`` tables (cohort and screen) when they were built with these parameters
    and the user's ``codes``, else builds them.
    """
    ensure_built(con, params, group="screen", codes=codes)
    return read_evidence(DuckDBEngine(con), patient_id)


def read_evidence(engine: Engine, patient_id: str) -> EvidenceResult:
    """The ledger of ``patient_id`` from built ``bmc_*`` tables, on either engine."""
    pid = patient_id.removeprefix("Patient/")
    row = engine.query(
        f"SELECT breast_cancer, histology, coded_marrow_dx, marrow_report, nrbc_positive, "
        f"nrbc_result, "
        f"smear, smear_date, alt_cause, alt_causes, {', '.join(RULES)}, in_cohort, failed_rules "
        f"FROM bmc_patient_rule WHERE patient_id = $pid", {"pid": pid})
    if row.empty:
        raise UnknownPatient(f"no Patient with id {pid!r} in this database")
    rules = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.iloc[0].items()}
    cohort = engine.query(f"SELECT {', '.join(COHORT_COLUMNS)} FROM bmc_cohort "
                          f"WHERE patient_id = $pid", {"pid": pid})
    tables = engine.tables()
    cols = ", ".join(LEDGER_COLUMNS)
    screened = {"bmc_screen", "bmc_screen_evidence"} <= tables  # the screen has run
    ledger = engine.query(
        f"SELECT {cols} FROM bmc_evidence WHERE patient_id = $pid"
        + (f" UNION ALL SELECT {cols} FROM bmc_screen_evidence WHERE patient_id = $pid"
           if screened else "")
        + " ORDER BY rule, date, resource_key, role", {"pid": pid})
    screen = engine.query("SELECT tier, rank, reasons FROM bmc_screen WHERE patient_id = $pid",
                          {"pid": pid}) if screened else pd.DataFrame()
    return EvidenceResult(pid, rules, cohort.iloc[0].to_dict() if len(cohort) else None, ledger,
                          screen.iloc[0].to_dict() if len(screen) else None, screened)


# -- the ledger for a terminal -------------------------------------------------------------------
LAYOUT_COLUMNS = ("date", "resource", "value", "file:line")


def _num(v: Any) -> str:
    return cell_text(float(v)) if v is not None and not pd.isna(v) else ""


def _present(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and pd.isna(v)) and v is not pd.NA \
        and v is not pd.NaT and v == v


def resource_line(row: Mapping[str, Any], cwd: str | None = None) -> list[str]:
    """One ledger row as the cells of its line: the date (as precise as the source wrote it),
    what the resource is (and whether it counted), the value with unit and grade and the LLN
    with where it came from, and ``file:line`` (``file#entry[n]`` inside a Bundle; relative
    to ``cwd`` when under it, so it can be opened from where the command ran)."""
    date = str(row["date"])[:10] if _present(row.get("date")) else ""
    precision = row.get("date_precision")
    if date and precision in ("month", "year"):
        date = date[:7] if precision == "month" else date[:4]
    what = str(row["role"]) + ("" if row.get("counted") else " (not counted)")
    if _present(row.get("note")):
        what += f": {row['note']}"
    value = ""
    if _present(row.get("value")):
        unit = row["unit"] if _present(row.get("unit")) else ""
        comparator = row["comparator"] if _present(row.get("comparator")) else ""
        value = f"{comparator}{_num(row['value'])} {unit}".strip()
        if _present(row.get("unit_raw")) and row["unit_raw"] != unit \
                and _present(row.get("value_raw")):
            value += f" (as {_num(row['value_raw'])} {row['unit_raw']})"
    if _present(row.get("grade")):
        value += f"{', ' if value else ''}grade {int(row['grade'])}"
    if _present(row.get("lln")):
        source = f" from {row['lln_source']}" if _present(row.get("lln_source")) else ""
        value += f"{'; ' if value else ''}LLN {_num(row['lln'])}{source}"
    where = str(row["source_file"]) if _present(row.get("source_file")) else ""
    if cwd and where.startswith(cwd.rstrip("/") + "/"):
        where = where[len(cwd.rstrip("/")) + 1:]
    if _present(row.get("source_line")):
        where += f":{int(row['source_line'])}"
    elif _present(row.get("source_entry")):
        where += f"#{row['source_entry']}"
    return [date, cell_text(what), cell_text(value), cell_text(where)]


def _outcomes(result: EvidenceResult) -> list[tuple[str, str, list[str]]]:
    """(section, outcome, paragraph lines) in the order a reviewer reads them."""
    out: list[tuple[str, str, list[str]]] = [
        (rule, outcome, []) for rule, outcome in rule_outcomes(result.rules).items()]
    s = result.screen_row
    if s:
        out.append(("screen", f"tier {s['tier']} (rank {int(s['rank'])})",
                    [cell_text(s["reasons"])]))
    elif result.screen_ran:
        out.append(("screen", "not on the screen", []))
    if result.cohort_row:
        out.append(("index_grades", "the counts nearest the index date "
                    f"{str(result.cohort_row['index_date'])[:10]}", []))
    return out


def ledger_text(result: EvidenceResult, width: int, cwd: str | None = None) -> str:
    """The ledger for a reader at ``width`` cells: the verdict, then per rule (and the screen,
    and the counts at index) its outcome and one line per resource; text wraps inside its
    column, nothing is cut. ``--format csv|json`` is the full ledger (ids, codes, raw units)."""
    r = result.rules
    head = f"Patient/{result.patient_id}: " + (
        "in the cohort" if r.get("in_cohort")
        else f"not in the cohort (fails: {r.get('failed_rules')})")
    if result.cohort_row:
        row = result.cohort_row
        head += f", index date {str(row['index_date'])[:10]}, route {row['route']}"
    rows = [dict(zip(result.ledger.columns, v, strict=True))
            for v in result.ledger.itertuples(index=False, name=None)]
    sections = _outcomes(result)
    lines = {sec: [resource_line(x, cwd) for x in rows if x["rule"] == sec]
             for sec, _, _ in sections}
    every = [cells for sec in lines.values() for cells in sec] or [[""] * 4]
    indent = "  "
    inner = max(width - len(indent), 40)
    table = TextTable(LAYOUT_COLUMNS, every, inner, min_text=12)
    below = max(cell_width(c[3]) for c in every) > table.widths.get(3, 0)
    if below:  # file:line on a line of its own under the resource, not folded in a column
        table = TextTable(LAYOUT_COLUMNS[:3], [c[:3] for c in every], inner, min_text=12)
        at = indent + " " * (table.widths[0] + GAP)
    out = wrap(head, width)
    out += [indent + x for x in table.header_lines()]
    k = 0
    for section, outcome, paragraph in sections:
        out.append(f"{section}: {outcome}")
        for text in paragraph:
            out += [indent + x for x in wrap(text, inner)]
        if not lines[section] and section != "screen":
            out.append(f"{indent}(no resources)")
        for _ in lines[section]:
            out += [indent + x for x in table.row_lines(k)]
            if below and every[k][3]:
                out += [at + x for x in wrap(every[k][3], max(width - len(at), 20))]
            k += 1
    out += wrap("--format csv or json: the full ledger (resource ids, codes, raw values and "
                "units, dates' precision)", width)
    return "\n".join(out) + "\n"

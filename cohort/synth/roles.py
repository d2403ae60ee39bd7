"""What each generated patient is meant to be: one row of ``roles.csv``.

The role is never written into FHIR; it lives only here and in the CSV beside the data.
Column meanings are documented in ``sample_bundles/README.md`` (written by :mod:`.sample`).
"""
from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from datetime import date

SMEAR_WINDOW_DAYS = 14  # +/- window between nRBC>0 and cytopenia for the smear route
CHEMO_WINDOW_DAYS = 21  # cytopenia within 3 weeks after an administration = explained by chemo


@dataclass
class RoleRow:
    patient_id: str
    role: str
    paper_patient: int | None = None
    sex: str = ""
    cancer: str = ""  # breast | prostate | gastric | lung | colon | none
    expected_in_cohort: int = 0
    expected_route: str = "none"  # histology | smear | both | coded | none
    coded_bmc: int = 0
    expected_index_date: date | None = None
    expected_screen_tier: str = "none"  # known | 1 | 2 | none
    bmc_label: int = 0
    lab: str = ""
    notes: str = ""


COLUMNS = [f.name for f in fields(RoleRow)]


def csv_cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def roles_csv(rows: list[RoleRow]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in sorted(rows, key=lambda r: r.patient_id):
        d = asdict(r)
        w.writerow([csv_cell(d[c]) for c in COLUMNS])
    return buf.getvalue().encode()


def truth_csv(rows: list[RoleRow]) -> bytes:
    """``patient_id,label`` (1 = a true breast-cancer BMC case: the paper's 22 and the planted
    unrecognized cases) for ``bmc check --truth``."""
    lines = ["patient_id,label"] + [f"{r.patient_id},{r.bmc_label}" for r in sorted(rows, key=lambda r: r.patient_id)]
    return ("\n".join(lines) + "\n").encode()

"""``stream_bulk``: a Bulk NDJSON export of any size, generated patient by patient.

Memory stays bounded: each patient's record is built, appended to the per-type files and
dropped; ``roles.csv`` and ``truth_labels.csv`` are appended as well. Roles follow
:data:`.mix.STREAM_MIX` (exactly the paper's 22 BMC cases at n = 12,970). The k-th BMC case is a
copy of paper patient (k mod 22) + 1 with its own ids and lab noise; the first 22 are the 22.
"""
from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .bulk import BulkWriter
from .institution import BUILDERS
from .mix import schedule
from .paper import load_paper_patients
from .paper_patients import build as build_paper
from .record import Record
from .roles import COLUMNS, RoleRow, csv_cell

_OWNED = re.compile(r"^([A-Z][A-Za-z]+\.\d{3}\.ndjson|manifest\.json)$")


@dataclass
class BulkSummary:
    patients: int
    roles: dict[str, int]
    resources: dict[str, int]
    bytes_written: int
    files: int


def stream_bulk(out_dir: Path, n_patients: int, seed: int = 2011,
                progress: Callable[[int], None] | None = None,
                max_lines_per_file: int = 1_000_000) -> BulkSummary:
    """Write ``n_patients`` patients as a Bulk Data export (plus roles.csv, truth_labels.csv).

    Earlier ``<Type>.<nnn>.ndjson`` files and ``manifest.json`` in ``out_dir`` are removed first;
    ``progress`` is called with the number of patients done (every 256 and at the end).
    """
    if n_patients < 0:
        raise ValueError("n_patients must be >= 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for f in out.iterdir():  # a previous, larger export must not leave files behind
        if _OWNED.match(f.name):
            f.unlink()
    paper = load_paper_patients()
    writer = BulkWriter(out, max_lines=max_lines_per_file)
    counters: dict[str, int] = {}
    extra = 0
    with (out / "roles.csv").open("w", encoding="utf-8", newline="\n") as roles_fh, \
            (out / "truth_labels.csv").open("w", encoding="utf-8", newline="\n") as truth_fh:
        roles_fh.write(",".join(COLUMNS) + "\n")
        truth_fh.write("patient_id,label\n")
        for i, role in enumerate(schedule(n_patients)):
            v = counters.get(role, 0)
            counters[role] = v + 1
            rng = random.Random(f"{seed}/stream/{i}")
            if role == "bmc_paper":
                rec, row = build_paper(paper[v % len(paper)], rng)
            else:
                rec = Record(rng)
                row = BUILDERS[role](rec, v)
            writer.write_record(rec)
            roles_fh.write(_csv_line(row))
            truth_fh.write(f"{row.patient_id},{row.bmc_label}\n")
            if progress is not None and (i + 1) % 256 == 0:
                progress(i + 1)
        extra = roles_fh.tell() + truth_fh.tell()
    manifest = writer.close()
    if progress is not None:
        progress(n_patients)
    return BulkSummary(
        patients=n_patients, roles=dict(sorted(counters.items())),
        resources=dict(sorted(writer.counts.items())),
        bytes_written=writer.bytes_written + extra, files=len(manifest["output"]),
    )


def _csv_line(row: RoleRow) -> str:
    cells = []
    for c in COLUMNS:
        s = csv_cell(getattr(row, c))
        if any(ch in s for ch in ',"\n'):
            s = '"' + s.replace('"', '""') + '"'
        cells.append(s)
    return ",".join(cells) + "\n"

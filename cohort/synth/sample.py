"""``write_sample``: the committed sample (per-patient Bundles, Bulk export, roles, README)."""
from __future__ import annotations

import random
from pathlib import Path

from .bulk import BulkWriter
from .bundle import bundle_bytes
from .institution import BUILDERS
from .mix import SAMPLE_MIX
from .paper import load_paper_patients
from .paper_patients import build as build_paper
from .readme import readme_text
from .record import Record
from .roles import RoleRow, roles_csv, truth_csv
from .summary import SampleSummary


def _clean(out: Path) -> None:
    """Remove only files this writer owns, so a re-run leaves no stale patients behind."""
    for pattern in ("bundles/*.json", "bulk/*.ndjson", "bulk/manifest.json"):
        for f in out.glob(pattern):
            f.unlink()


def sample_records(seed: int = 2011):
    """Yield (Record, RoleRow) of the sample, in a seeded shuffled order."""
    jobs: list[tuple[str, int]] = [("bmc_paper", n) for n in range(1, 23)]
    for role, count in SAMPLE_MIX.items():
        jobs += [(role, v) for v in range(count)]
    random.Random(f"{seed}/sample/order").shuffle(jobs)
    paper = {p.number: p for p in load_paper_patients()}
    for role, v in jobs:
        rng = random.Random(f"{seed}/sample/{role}/{v}")
        if role == "bmc_paper":
            yield build_paper(paper[v], rng)
        else:
            rec = Record(rng)
            yield rec, BUILDERS[role](rec, v)


def write_sample(out_dir: Path, seed: int = 2011) -> SampleSummary:
    """Write the committed sample into ``out_dir`` (``sample_bundles/``); deterministic in ``seed``."""
    out = Path(out_dir)
    (out / "bundles").mkdir(parents=True, exist_ok=True)
    _clean(out)
    bulk = BulkWriter(out / "bulk")
    rows: list[RoleRow] = []
    bytes_bundles = 0
    for rec, row in sample_records(seed):
        data = bundle_bytes(rec)
        (out / "bundles" / f"{rec.patient_id}.json").write_bytes(data)
        bytes_bundles += len(data)
        bulk.write_record(rec)
        rows.append(row)
    bulk.close()
    (out / "roles.csv").write_bytes(roles_csv(rows))
    (out / "truth_labels.csv").write_bytes(truth_csv(rows))
    roles: dict[str, int] = {}
    for r in rows:
        roles[r.role] = roles.get(r.role, 0) + 1
    summary = SampleSummary(
        patients=len(rows), roles=dict(sorted(roles.items())), resources=dict(sorted(bulk.counts.items())),
        bytes_bundles=bytes_bundles, bytes_bulk=bulk.bytes_written, bytes_total=0,
    )
    (out / "README.md").write_text(readme_text(summary, rows, seed), encoding="utf-8", newline="\n")
    summary.bytes_total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return summary

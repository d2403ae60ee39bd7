"""What ``write_sample`` reports: a record of its own, so the README text that prints it
(:mod:`.readme`) and the writer that makes it (:mod:`.sample`) need not import each other."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SampleSummary:
    patients: int
    roles: dict[str, int]
    resources: dict[str, int]
    bytes_bundles: int
    bytes_bulk: int
    bytes_total: int

"""Deterministic synthetic FHIR R4 data for the BMC study.

* :func:`write_sample` writes the committed ``sample_bundles/``: the 22 paper patients
  (Anticancer Res 31:4025-4030) and ~250 institution patients, as per-patient transaction
  Bundles and as a Bulk Data NDJSON export, with ``roles.csv`` / ``truth_labels.csv``.
* :func:`stream_bulk` streams a Bulk export of any size in bounded memory.

Same seed, byte-identical output. Clinical numbers come from ``../shared/paper`` (read at
generation time) and ``../shared/clinical/CODES.md`` (codes, cited per section in
:mod:`.codes`). The outcome definitions the generator honours are in ``DEFINITIONS.md``.
"""
from __future__ import annotations

from .sample import SampleSummary, write_sample
from .stream import BulkSummary, stream_bulk

__all__ = ["BulkSummary", "SampleSummary", "stream_bulk", "write_sample"]

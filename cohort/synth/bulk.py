"""Bulk Data export writer: one NDJSON file per resource type plus ``manifest.json``.

References are written relative (``Type/<uuid>``) and every resource carries its ``id``. Later
versions of a resource (same id, higher ``meta.versionId``) follow the earlier line in the same
file, so a loader must keep the highest version per (type, id). Files rotate after
``max_lines`` lines (``Observation.000.ndjson``, ``Observation.001.ndjson``, ...).
"""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import orjson

from .record import Record, Ref

TRANSACTION_TIME = "2010-07-01T02:00:00+02:00"  # the export ran the night after the cut-off
REQUEST = "https://bmc-cohort.example.org/fhir/$export"


def _default(o: object) -> str:
    if isinstance(o, Ref):
        return f"{o.rtype}/{o.uid}"
    raise TypeError(f"cannot serialise {type(o).__name__}")


def dumps_bulk(resource: dict) -> bytes:
    return orjson.dumps(resource, default=_default)


class BulkWriter:
    """Append records resource by resource; memory does not grow with the number of patients."""

    def __init__(self, out_dir: Path, max_lines: int = 1_000_000, buffer: int = 1 << 20) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.max_lines = max_lines
        self.buffer = buffer
        self._fh: dict[str, BinaryIO] = {}
        self._lines: dict[str, int] = {}
        self._files: dict[str, list[tuple[str, int]]] = {}  # type -> [(file name, count)]
        self.counts: dict[str, int] = {}
        self.bytes_written = 0

    def _open(self, rtype: str) -> BinaryIO:
        files = self._files.setdefault(rtype, [])
        name = f"{rtype}.{len(files):03d}.ndjson"
        files.append((name, 0))
        fh = open(self.out_dir / name, "wb", buffering=self.buffer)  # noqa: SIM115 - closed in close()
        self._fh[rtype] = fh
        self._lines[rtype] = 0
        return fh

    def write_record(self, rec: Record) -> None:
        for e in rec.entries:
            res = e.resource
            rtype = res["resourceType"]
            fh = self._fh.get(rtype)
            if fh is None or self._lines[rtype] >= self.max_lines:
                if fh is not None:
                    fh.close()
                fh = self._open(rtype)
            line = orjson.dumps(res, default=_default, option=orjson.OPT_APPEND_NEWLINE)
            fh.write(line)
            self._lines[rtype] += 1
            name, n = self._files[rtype][-1]
            self._files[rtype][-1] = (name, n + 1)
            self.counts[rtype] = self.counts.get(rtype, 0) + 1
            self.bytes_written += len(line)

    def close(self) -> dict:
        """Close all files and write ``manifest.json`` (Bulk Data manifest, CODES.md §10.1).

        ``url`` is the file name relative to the manifest: the export as downloaded.
        """
        for fh in self._fh.values():
            fh.close()
        self._fh.clear()
        output = [
            {"type": rtype, "url": name, "count": n}
            for rtype in sorted(self._files)
            for name, n in self._files[rtype]
        ]
        manifest = {
            "transactionTime": TRANSACTION_TIME,
            "request": REQUEST,
            "requiresAccessToken": False,
            "output": output,
            "error": [],
        }
        data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
        (self.out_dir / "manifest.json").write_bytes(data)
        self.bytes_written += len(data)
        return manifest

"""Shared test fixtures: where ../shared is, and small FHIR writers."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EXTERNAL = SHARED / "external"


def pytest_report_header(config):
    return f"shared material: {SHARED} ({'present' if SHARED.is_dir() else 'MISSING'})"


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not present (CI puts ../shared beside the clone)")
    return SHARED


def write_ndjson(path: Path, docs, *, gz: bool = False, bom: bool = False, crlf: bool = False) -> Path:
    """Write resources (dicts) or raw lines (str) as NDJSON."""
    nl = "\r\n" if crlf else "\n"
    text = nl.join(d if isinstance(d, str) else json.dumps(d) for d in docs) + nl
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def write_json(path: Path, doc, *, bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + json.dumps(doc).encode())
    return path

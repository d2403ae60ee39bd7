"""Where the shipped data folders are, in a source checkout and in an installed wheel."""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    checkout = _HERE.parent / name          # editable install / source checkout
    if checkout.is_dir():
        return checkout
    installed = _HERE / f"_{name}"          # wheel: force-included by pyproject.toml
    if installed.is_dir():
        return installed
    raise FileNotFoundError(f"cannot find the {name}/ folder next to {_HERE}")


def queries_dir() -> Path:
    """The ``queries/`` folder: cohort SQL and reference data (value sets, units, CTCAE)."""
    return _find("queries")


def sample_bundles_dir() -> Path:
    """The committed sample export (per-patient Bundles and a Bulk NDJSON export)."""
    return _find("sample_bundles")

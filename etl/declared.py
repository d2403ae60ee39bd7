"""The declared tables: the ViewDefinition files in ``etl/views/``, read and compiled once."""
from __future__ import annotations

import json
from functools import cache
from importlib import resources as importlib_resources


def _view_dir():
    return importlib_resources.files("etl").joinpath("views")


@cache
def load_view_json() -> dict[str, dict]:
    """Every declared ViewDefinition by table name (its ``name``), in file-name order."""
    out: dict[str, dict] = {}
    folder = _view_dir()
    if not folder.is_dir():
        return out
    for f in sorted(folder.iterdir(), key=lambda p: p.name):
        if f.name.endswith(".json"):
            view = json.loads(f.read_text())
            out[view["name"]] = view
    return out


@cache
def compiled_views() -> tuple:
    """The declared views compiled to DuckDB SQL (see etl.viewdef.compiler)."""
    from .viewdef.compiler import compile_view
    return tuple(compile_view(v) for v in load_view_json().values())

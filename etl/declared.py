"""The declared tables: the ViewDefinition files in ``etl/views/``, read and compiled once.

The one reader of ``etl/views/``: the loader creates and fills one table per view, the export
and the CLI document them, and all come here, so the JSON files stay the one declaration of
every table (name, columns, types, meaning). :mod:`etl.viewdef` stays a generic
ViewDefinition compiler that knows nothing of these views.

``docs/tables.md`` is :func:`render_markdown` of the declared views, kept in git (a test
checks it is current); regenerate it with ``python -m etl.declared > docs/tables.md``.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path

from etl.errors import ViewDefinitionError
from etl.viewdef.compiled import CompiledView


def views_dir() -> Path:
    """The folder holding the declared ViewDefinitions (``etl/views``)."""
    return Path(str(resources.files("etl") / "views"))


def read_views(folder: Path) -> dict[str, dict]:
    """Every ViewDefinition in ``folder`` by table name, in file-name order.

    The file name is the table name: a view whose ``name`` differs, or a file that is not
    JSON, is a :class:`ViewDefinitionError` naming the file (not a KeyError later on).
    """
    out: dict[str, dict] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            view = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ViewDefinitionError(f"{path.name}: not valid JSON ({exc})") from None
        name = view.get("name") if isinstance(view, dict) else None
        if name != path.stem:
            raise ViewDefinitionError(f"{path.name}: name is {name!r}, expected "
                                      f"{path.stem!r} (the file name is the table name)")
        out[name] = view
    return out


@cache
def load_view_json() -> dict[str, dict]:
    """The declared ViewDefinitions by table name, in file-name order (read once)."""
    return read_views(views_dir())


def compile_views(views: dict[str, dict]) -> tuple[CompiledView, ...]:
    """``views`` compiled to DuckDB SQL (see :mod:`etl.viewdef.compiler`); errors name the
    file."""
    from etl.viewdef.compiler import compile_view  # the FHIR models: only when compiling

    out = []
    for name, view in views.items():
        try:
            out.append(compile_view(view))
        except ViewDefinitionError as exc:
            raise ViewDefinitionError(f"{name}.json: {exc}") from None
    return tuple(out)


@cache
def compiled_views() -> tuple[CompiledView, ...]:
    """The declared views compiled (once per process; the disk cache spans processes)."""
    return compile_views(load_view_json())


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def render_markdown(views: Iterable[CompiledView]) -> str:
    """Column documentation of ``views`` as Markdown: one section and table per view."""
    lines = ["# Declared tables", "",
             "Generated from `etl/views/*.json` (`python -m etl.declared > "
             "docs/tables.md`; `bmc tables --markdown` prints the same).", "",
             "Conventions: after loading, a *reference key* column holds the target's key "
             "`Type/<id>` whatever form the reference had (relative, absolute URL, "
             "`_history`, `urn:uuid:`, conditional `Type?identifier=...`; `#contained` becomes "
             "`Type/<container id>#<id>`); what cannot be resolved stays as written and is "
             "listed in `unresolved_reference`. A `*_codings` column lists a "
             "CodeableConcept's codings as `system|code` strings (`|code` when the coding has "
             "no system; split at the first `|`, which a URI cannot hold), next to the older "
             "code-only `*_codes` column. A collection column is an empty list when the "
             "element is absent. A *required* column is never NULL: the loader rejects a "
             "resource without it (listed in `load_error`).", ""]
    for view in views:
        lines += [f"## {view.name}", "", f"Resource: `{view.resource}`. Columns after `_rid` "
                  "(the provenance row id):", "",
                  "| column | type | FHIR type | description |", "|---|---|---|---|"]
        for col in view.columns:
            kind = col.duckdb_type + (" (reference key)" if col.is_reference_key else "")
            if ("required", "true") in col.tags:
                kind += ", required"
            lines.append(f"| `{col.name}` | {kind} | {_cell(col.fhir_type)} | "
                         f"{_cell(col.description)} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown(compiled_views()))

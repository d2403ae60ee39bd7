"""The product's declared tables: every ``etl/views/*.json`` ViewDefinition, compiled.

The loader creates and fills one table per view, and the CLI documents them; both come here
so the JSON files stay the one declaration of every table (name, columns, types, meaning).

``docs/tables.md`` is this module's Markdown, kept in git (a test checks it is current);
regenerate it with ``python -m etl.viewdef.catalog > docs/tables.md``.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from etl.errors import ViewDefinitionError
from etl.viewdef.compiler import CompiledView, compile_view


def views_dir() -> Path:
    """The folder holding the declared ViewDefinitions (``etl/views``)."""
    return Path(str(resources.files("etl") / "views"))


def load_declared_views() -> list[CompiledView]:
    """Compile every declared view, sorted by file name; errors name the file."""
    out = []
    for path in sorted(views_dir().glob("*.json")):
        try:
            view = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ViewDefinitionError(f"{path.name}: not valid JSON ({exc})") from None
        try:
            compiled = compile_view(view)
        except ViewDefinitionError as exc:
            raise ViewDefinitionError(f"{path.name}: {exc}") from None
        if compiled.name != path.stem:
            raise ViewDefinitionError(f"{path.name}: name is {compiled.name!r}, expected "
                                      f"{path.stem!r} (the file name is the table name)")
        out.append(compiled)
    return out


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def render_markdown(views: list[CompiledView]) -> str:
    """Column documentation of ``views`` as Markdown: one section and table per view."""
    lines = ["# Declared tables", "",
             "Generated from `etl/views/*.json` (`python -m etl.viewdef.catalog > "
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
    print(render_markdown(load_declared_views()))

"""Run a ViewDefinition over a few in-memory resources (tests, the suite, ``bmc view``).

The resources' JSON text goes into a DuckDB relation, is parsed with the view's structure,
filtered to the view's resource type and run through the compiled SQL -- the same SQL the
loader runs over whole exports, so this is a faithful small-scale check of it.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from etl.errors import ViewDefinitionError
from etl.sql import template_string
from etl.viewdef.compiler import compile_view
from etl.viewdef.macros import install_macros

_RUNTIME_PREFIXES = ("FHIRPath:", "repeat:")


def evaluate_view(con: duckdb.DuckDBPyConnection, view: dict[str, Any],
                  resources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of ``view`` over ``resources`` as dicts in view column order.

    Values are what the SQL-on-FHIR test suite expects: strings (dates as their ISO text),
    Python numbers, bools, lists for collection columns, None for empty. Raises
    ViewDefinitionError for an invalid view or a path that yields several values for a
    non-collection column.
    """
    compiled = compile_view(view)
    install_macros(con)
    resources = list(resources)
    texts = [orjson.dumps(r).decode() for r in resources]
    types = [r.get("resourceType") for r in resources]
    table = pa.table({"_rid": pa.array(range(len(texts)), pa.int64()),
                      "resource_type": pa.array(types, pa.string()),
                      "json": pa.array(texts, pa.string())})
    name = f"_bmc_eval_{id(table)}"
    con.register(name, table)
    try:
        structure = template_string(orjson.dumps(compiled.structure).decode())
        source = (f"(SELECT _rid, json_transform(json, {structure}) AS r FROM {name} "
                  f"WHERE resource_type = {template_string(compiled.resource)})")
        sql = compiled.render(source) + "\nORDER BY 1"
        try:
            result = con.execute(sql)
        except duckdb.InvalidInputException as exc:
            message = str(exc)
            for prefix in _RUNTIME_PREFIXES:
                if prefix in message:
                    raise ViewDefinitionError(message[message.index(prefix):]) from None
            raise
        names = [d[0] for d in result.description]
        rows = result.fetchall()
    finally:
        con.unregister(name)
    return [dict(zip(names[1:], row[1:], strict=True)) for row in rows]

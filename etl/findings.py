"""Value findings: typed values that are not what their FHIR type says, kept as NULL.

``json_transform`` coerces what it is given: ``true`` becomes 1.0 in a DOUBLE, ``"7.5"`` 7.5,
``1e400`` infinity, ``"2019-02-30"`` stays a VARCHAR date. FHIR decimals are JSON numbers and
dates have one format, so anything else is a data-quality finding: the resource is kept, the
value is stored as NULL, and one ``load_issue`` row per (resource, element, reason) says so.

What is checked comes from the declared views, not from a list here: every typed decimal,
integer, boolean, date, dateTime and instant element a view reads from the resource's own
structure (``CompiledView.checks``, recorded by the compiler). The rules are the SQL macros
of ``findings.sql``. Per batch, one set-based query finds the resources with a finding (the
common case returns no rows); only those few are re-read in Python, their bad values set to
null (judged by the same macros), and their view rows staged again.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources as importlib_resources
from typing import Any

import duckdb
import pyarrow as pa

from .errors import Location
from .sql import quote_ident, sql_string
from .store import run_script

# FHIR primitive type -> the findings.sql macro call that judges a JSON value of it.
RULES: dict[str, str] = {
    "decimal": "bmc_decimal_problem({})",
    "integer": "bmc_integer_problem({}, -2147483648)",
    "unsignedInt": "bmc_integer_problem({}, 0)",
    "positiveInt": "bmc_integer_problem({}, 1)",
    "integer64": "bmc_integer64_problem({})",
    "boolean": "bmc_boolean_problem({})",
    "date": "bmc_date_problem({})",
    "dateTime": "bmc_datetime_problem({})",
    "instant": "bmc_instant_problem({})",
}

ISSUE_COLUMNS = ("load_id", "_rid", "file", "line", "entry", "resource_type", "resource_id",
                 "path", "kind", "reason")


def install_rules(con: duckdb.DuckDBPyConnection) -> None:
    """Create the findings.sql macros on ``con`` (temporary; idempotent)."""
    run_script(con, importlib_resources.files("etl").joinpath("findings.sql").read_text())


@dataclass(frozen=True)
class ValueCheck:
    """One checked element: dotted path below the resource, FHIR type, and the steps from the
    resource to it (name, repeating) as the views' structure reads them."""

    path: str
    fhir_type: str
    steps: tuple[tuple[str, bool], ...]


def _steps(structure: dict, path: str) -> tuple[tuple[str, bool], ...] | None:
    """Follow ``path`` through a json_transform structure; None unless it ends in a typed
    leaf reached through objects and lists (JSON-typed elements are not checked)."""
    node: object = structure
    out = []
    for name in path.split("."):
        if not isinstance(node, dict) or name not in node:
            return None
        node = node[name]
        repeating = isinstance(node, list)
        if isinstance(node, list):
            node = node[0]
        out.append((name, repeating))
    if node == "JSON" or isinstance(node, (dict, list)):
        return None
    return tuple(out)


def plan(views: Iterable) -> tuple[ValueCheck, ...]:
    """The checks for one resource type's views (each element once)."""
    seen: dict[str, ValueCheck] = {}
    for v in views:
        for path, fhir_type in v.checks:
            if fhir_type not in RULES or path in seen:
                continue
            steps = _steps(v.structure, path)
            if steps is not None:
                seen[path] = ValueCheck(path, fhir_type, steps)
    return tuple(seen[p] for p in sorted(seen))


def structure(checks: Iterable[ValueCheck]) -> dict:
    """A json_transform structure reading each checked element as raw JSON."""
    root: dict = {}
    for c in checks:
        node = root
        for i, (name, repeating) in enumerate(c.steps):
            last = i == len(c.steps) - 1
            if last:
                node[name] = ["JSON"] if repeating else "JSON"
            else:
                child = node.get(name)
                if child is None:
                    child = [{}] if repeating else {}
                    node[name] = child
                node = child[0] if isinstance(child, list) else child
    return root


def _problems_sql(c: ValueCheck, expr: str = "c", depth: int = 0) -> str:
    """SQL for the list of reasons (NULL where fine) over every value of one check."""
    name, repeating = c.steps[depth]
    acc = f"({expr}).{quote_ident(name)}"
    var = f"_q{depth}"
    if depth == len(c.steps) - 1:
        if repeating:
            return f"list_transform({acc}, lambda {var}: {RULES[c.fhir_type].format(var)})"
        return f"[{RULES[c.fhir_type].format(acc)}]"
    if repeating:
        inner = _problems_sql(c, var, depth + 1)
        return f"flatten(list_transform({acc}, lambda {var}: {inner}))"
    return _problems_sql(c, acc, depth + 1)


def find_sql(checks: tuple[ValueCheck, ...]) -> str:
    """SELECT _rid and one reasons list per check, only for rows with a finding, from the
    batch texts filtered by ``{mine}``."""
    shape = sql_string(json.dumps(structure(checks)))
    cols = ", ".join(f"list_distinct(list_filter({_problems_sql(c)}, lambda _p: _p IS NOT NULL)) "
                     f"AS f{i}" for i, c in enumerate(checks))
    any_bad = " OR ".join(f"len(f{i}) > 0" for i in range(len(checks)))
    return (f"SELECT _rid, [{', '.join(f'f{i}' for i in range(len(checks)))}] FROM "
            f"(SELECT _rid, {cols} FROM (SELECT _rid, json_transform(text, {shape}) AS c "
            f"FROM _batch WHERE {{mine}})) WHERE {any_bad}")


# -- the few resources with findings ---------------------------------------------------------
def _slots(doc: object, steps: tuple[tuple[str, bool], ...]) -> list[tuple[object, object]]:
    """(container, key) of every value at ``steps`` in a parsed resource, as the view's
    structure would read it (a list where the structure has an object is not read)."""
    found: list[tuple[object, object]] = [(None, doc)]
    out: list[tuple[object, object]] = []
    for i, (name, repeating) in enumerate(steps):
        last = i == len(steps) - 1
        nxt: list[tuple[object, object]] = []
        for _, node in found:
            if not isinstance(node, dict) or node.get(name) is None:
                continue
            value = node[name]
            if repeating:
                if not isinstance(value, list):
                    continue
                items: list[tuple[Any, Any]] = [(value, k) for k in range(len(value)) if value[k] is not None]
            else:
                items = [(node, name)]
            if last:
                out.extend(items)
            else:
                nxt.extend((None, cont[key]) for cont, key in items)
        found = nxt
    return out


def null_bad_values(con: duckdb.DuckDBPyConnection, texts: list[str],
                    checks: tuple[ValueCheck, ...]) -> list[str]:
    """The texts with every value that fails its rule set to null (judged by the SQL rules,
    so Python and SQL cannot disagree). Python's json reads NaN, Infinity and 1e400 too."""
    docs = [json.loads(t) for t in texts]
    by_type: dict[str, list[tuple[object, object]]] = {}
    for doc in docs:
        for c in checks:
            by_type.setdefault(c.fhir_type, []).extend(_slots(doc, c.steps))
    for fhir_type, slots in by_type.items():
        if not slots:
            continue
        values = [json.dumps(cont[key]) for cont, key in slots]  # type: ignore[index]
        rule = RULES[fhir_type].format("CAST(_v AS JSON)")
        (verdicts,) = con.execute(f"SELECT list_transform(?::VARCHAR[], lambda _v: {rule})",
                                  [values]).fetchall()[0]
        for (cont, key), why in zip(slots, verdicts, strict=True):
            if why is not None:
                cont[key] = None  # type: ignore[index]
    return [json.dumps(d) for d in docs]


def check_batch(con: duckdb.DuckDBPyConnection, resource_type: str, checks: tuple[ValueCheck, ...],
                views: Iterable, mine: str, load_id: int,
                file_name: Callable[[int], str]) -> int:
    """Find the batch's values that fail their rule, store NULL for them (the resources'
    view rows are staged again from the corrected text) and record one load_issue row per
    resource, element and reason. Returns the number of findings."""
    if not checks:
        return 0
    bad = con.execute(find_sql(checks).replace("{mine}", mine)).fetchall()
    if not bad:
        return 0
    rids = [rid for rid, _ in bad]
    where = {rid: (f, ln, e, i) for rid, f, ln, e, i in con.execute(
        "SELECT _rid, file_id, line, entry, r.id FROM _h WHERE _rid IN "
        "(SELECT unnest(?::BIGINT[]))", [rids]).fetchall()}
    texts = dict(con.execute("SELECT _rid, text FROM _batch WHERE _rid IN "
                             "(SELECT unnest(?::BIGINT[]))", [rids]).fetchall())
    fixed = null_bad_values(con, [texts[r] for r in rids], checks)
    views = list(views)
    for v in views:
        con.execute(f"DELETE FROM {quote_ident(v.name)} WHERE _rid IN "
                    f"(SELECT unnest(?::BIGINT[]))", [rids])
    con.register("_fixed", pa.table({"_rid": pa.array(rids, pa.int64()),
                                     "text": pa.array(fixed, pa.large_string())}))
    try:
        for v in views:
            src = (f"(SELECT _rid, json_transform(text, {sql_string(json.dumps(v.structure))}) "
                   f"AS r FROM _fixed)")
            con.execute(f"INSERT INTO {quote_ident(v.name)} {v.render(src)}")
    finally:
        con.unregister("_fixed")
    rows = []
    for rid, lists in bad:
        file_id, line, entry, res_id = where[rid]
        loc = Location(file_name(file_id), line, entry, resource_type, res_id)
        for c, reasons in zip(checks, lists, strict=True):
            for why in reasons or ():
                rows.append((load_id, rid, loc.file, loc.line, loc.entry, loc.resource_type,
                             loc.resource_id, f"{resource_type}.{c.path}", "value",
                             f"{why}; stored as NULL"))
    con.executemany(f"INSERT INTO load_issue ({', '.join(ISSUE_COLUMNS)}) VALUES "
                    f"({', '.join('?' * len(ISSUE_COLUMNS))})", rows)
    return len(rows)

"""FHIRPath functions used by ViewDefinitions, as DuckDB SQL.

Supported: where, select, exists, empty, first, last, count, not, ofType, extension, join,
getResourceKey, getReferenceKey, lowBoundary, highBoundary. Any other function is a
ViewDefinitionError naming it, so a view never silently computes something else.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from etl.sql import template_string
from etl.viewdef import fhirpath as fp
from etl.viewdef import schema
from etl.viewdef.expressions import (
    BOOLEAN,
    INTEGER,
    STRING,
    STRINGY,
    Expr,
    FType,
    PathError,
    Scope,
    as_single,
    exists_sql,
    fresh,
    map_items,
)


class Translator(Protocol):
    """What a function needs of the translator that calls it (``translator.Translator``);
    a protocol, so this module does not import the translator that imports it."""

    def translate(self, node: fp.Node, scope: Scope) -> Expr: ...

    def child(self, base: Expr, name: str, offset: int) -> Expr: ...

    def of_type(self, base: Expr, type_name: str, offset: int) -> Expr: ...


_ARITY: dict[str, tuple[int, int]] = {
    "where": (1, 1), "select": (1, 1), "exists": (0, 1), "empty": (0, 0), "first": (0, 0), "last": (0, 0),
    "count": (0, 0), "not": (0, 0), "ofType": (1, 1), "extension": (1, 1), "join": (0, 1),
    "getResourceKey": (0, 0), "getReferenceKey": (0, 1), "lowBoundary": (0, 1),
    "highBoundary": (0, 1),
}


def call(tr: Translator, node: fp.Call, base: Expr, scope: Scope) -> Expr:
    """Translate ``base.name(args)``."""
    if node.name not in _ARITY:
        raise PathError(f"unsupported function '{node.name}()'", node.offset)
    low, high = _ARITY[node.name]
    if not low <= len(node.args) <= high:
        raise PathError(f"{node.name}() takes {low}..{high} arguments, got {len(node.args)}",
                        node.offset)
    handler = globals()["_fn_" + node.name]
    return handler(tr, node, base, scope)


def _filter(tr: Translator, base: Expr, criteria: fp.Node, scope: Scope) -> Expr:
    var = fresh()
    focus = Expr(var, False, base.t) if base.many else base
    cond = tr.translate(criteria, replace(scope, focus=focus))
    if not cond.is_boolean:
        raise PathError("where() criteria must be boolean", criteria.offset)
    test = f"coalesce({as_single(cond, 'where() criteria')}, FALSE)"
    if base.many:
        return Expr(f"list_filter({base.sql}, lambda {var}: {test})", True, base.t)
    return Expr(f"(CASE WHEN {test} THEN ({base.sql}) END)", False, base.t)


def _fn_where(tr: Translator, node: fp.Call, base: Expr, scope: Scope) -> Expr:
    return _filter(tr, base, node.args[0], scope)


def _fn_select(tr: Translator, node: fp.Call, base: Expr, scope: Scope) -> Expr:
    """``base.select(projection)``: the projection of each item, flattened; empty for an
    empty ``base`` (``coding.select(system & '|' & code)``)."""
    def project(item: Expr) -> Expr:
        return tr.translate(node.args[0], replace(scope, focus=item))

    if base.many:
        return map_items(base, project)
    out = project(base)
    guard = f"({base.sql}) IS NULL"
    return Expr(f"(CASE WHEN {guard} THEN NULL ELSE {out.sql} END)", out.many, out.t)


def _fn_exists(tr: Translator, node: fp.Call, base: Expr, scope: Scope) -> Expr:
    if node.args:
        base = _filter(tr, base, node.args[0], scope)
    return Expr(exists_sql(base), False, BOOLEAN)


def _fn_empty(tr: Translator, node: fp.Call, base: Expr, scope: Scope) -> Expr:
    return Expr(f"(NOT {exists_sql(base)})", False, BOOLEAN)


def _union_operands(ast: fp.Node | None) -> list[fp.Node]:
    """The operands of ``a | b | c`` (any nesting), or [] when ``ast`` is not a union."""
    if not (isinstance(ast, fp.Binary) and ast.op == "|"):
        return []
    return [*(_union_operands(ast.left) or [ast.left]),
            *(_union_operands(ast.right) or [ast.right])]


def _fn_first(tr: Translator, node: fp.Call, base: Expr, scope: Scope) -> Expr:
    if not base.many:
        return base
    # (a | b | c).first() of single values -- the choice-type idiom
    # (effective.ofType(dateTime) | effective.ofType(Period).start) -- is the first value
    # present: coalesce() instead of building, de-duplicating and indexing a list.
    operands = [tr.translate(o, scope) for o in _union_operands(node.target)]
    if operands and all(not o.many and o.t.kind == "primitive" and
                        schema.duckdb_type_of_primitive(o.t.name) ==
                        schema.duckdb_type_of_primitive(base.t.name) for o in operands):
        return Expr(f"coalesce({', '.join(o.sql for o in operands)})", False, base.t)
    return Expr(f"({base.sql})[1]", False, base.t)


def _fn_last(tr: Translator, node: fp.Call, base: Expr, scope: Scope) -> Expr:
    return Expr(f"({base.sql})[-1]", False, base.t) if base.many else base


def _fn_count(tr: Translator, node: fp.Call, base: Expr, scope: Scope) -> Expr:
    if base.many:
        return Expr(f"coalesce(len({base.sql}), 0)", False, INTEGER)
    return Expr(f"(CASE WHEN ({base.sql}) IS NULL THEN 0 ELSE 1 END)", False, INTEGER)


def _fn_not(tr: Translator, node: fp.Call, base: Expr, scope: Scope) -> Expr:
    if not base.is_boolean:
        raise PathError("not() needs a boolean", node.offset)
    return Expr(f"(NOT ({as_single(base, 'not()')}))", False, BOOLEAN)


def _type_name(arg: fp.Node) -> str:
    if isinstance(arg, fp.Identifier):
        return arg.name
    if isinstance(arg, fp.Member) and isinstance(arg.target, fp.Identifier):
        return f"{arg.target.name}.{arg.name}"
    raise PathError("expected a type name", arg.offset)


def _fn_ofType(tr: Translator, node: fp.Call, base: Expr, scope: Scope) -> Expr:
    return tr.of_type(base, _type_name(node.args[0]), node.offset)


def _string_arg(arg: fp.Node, what: str) -> str:
    if isinstance(arg, fp.Literal) and arg.kind == "string":
        return str(arg.value)
    raise PathError(f"{what} must be a string literal", arg.offset)


def _fn_extension(tr: Translator, node: fp.Call, base: Expr, scope: Scope) -> Expr:
    url = _string_arg(node.args[0], "extension() url")
    extensions = tr.child(base, "extension", node.offset)
    var = fresh()
    url_sql = tr.child(Expr(var, False, extensions.t), "url", node.offset).sql
    return Expr(f"list_filter({extensions.sql}, lambda {var}: {url_sql} = {template_string(url)})",
                True, extensions.t)


def _fn_join(tr: Translator, node: fp.Call, base: Expr, scope: Scope) -> Expr:
    if base.t.kind != "primitive" or base.t.name not in STRINGY:
        raise PathError("join() needs strings", node.offset)
    sep = _string_arg(node.args[0], "join() separator") if node.args else ""
    if not base.many:
        return base
    return Expr(f"(CASE WHEN len({base.sql}) > 0 THEN array_to_string({base.sql}, "
                f"{template_string(sep)}) END)", False, STRING)


def _fn_getResourceKey(tr: Translator, node: fp.Call, base: Expr,
                       scope: Scope) -> Expr:
    if not (base.t.kind == "complex" and base.t.resource):
        raise PathError("getResourceKey() needs a resource", node.offset)

    def key(item: Expr) -> Expr:
        ident = tr.child(item, "id", node.offset)
        if base.t.name in ("Resource", "DomainResource"):
            rtype = tr.child(item, "resourceType", node.offset).sql
        else:
            rtype = template_string(base.t.name)
        return Expr(f"({rtype} || '/' || {ident.sql})", False, STRING)

    return map_items(base, key)


def _fn_getReferenceKey(tr: Translator, node: fp.Call, base: Expr,
                        scope: Scope) -> Expr:
    if not (base.t.kind == "complex" and base.t.name == "Reference"):
        raise PathError("getReferenceKey() needs a Reference", node.offset)
    wanted = template_string(_type_name(node.args[0])) if node.args else "NULL"

    def key(item: Expr) -> Expr:
        ref = tr.child(item, "reference", node.offset)
        return Expr(f"bmc_reference_key({ref.sql}, {wanted})", False, STRING)

    return map_items(base, key)


# -- lowBoundary / highBoundary (dates, dateTimes, times) -------------------------------

def _date_bound(s: str, high: bool) -> str:
    if high:
        return (f"(CASE length({s}) WHEN 4 THEN {s} || '-12-31' "
                f"WHEN 7 THEN strftime(last_day(CAST({s} || '-01' AS DATE)), '%Y-%m-%d') "
                f"ELSE {s} END)")
    return f"(CASE length({s}) WHEN 4 THEN {s} || '-01-01' WHEN 7 THEN {s} || '-01' ELSE {s} END)"


def _time_bound(s: str, high: bool) -> str:
    sec, frac = ("59", "999") if high else ("00", "000")
    return (f"(CASE WHEN length({s}) = 2 THEN {s} || ':{sec}:{sec}.{frac}' "
            f"WHEN length({s}) = 5 THEN {s} || ':{sec}.{frac}' "
            f"WHEN length({s}) = 8 THEN {s} || '.{frac}' "
            f"ELSE rpad({s}, 12, '{frac[0]}') END)")


def _datetime_bound(s: str, high: bool) -> str:
    zone = "-12:00" if high else "+14:00"
    date = f"split_part({s}, 'T', 1)"
    rest = f"split_part({s}, 'T', 2)"
    clock = f"regexp_extract({rest}, '^[0-9:.]*')"
    tz = f"substr({rest}, length({clock}) + 1)"
    time = _time_bound(clock, high)
    return (f"(CASE WHEN NOT contains({s}, 'T') THEN {_date_bound(s, high)} || "
            f"'T{'23:59:59.999' if high else '00:00:00.000'}{zone}' "
            f"ELSE {date} || 'T' || {time} || (CASE WHEN {tz} = '' THEN '{zone}' ELSE {tz} END)"
            f" END)")


def _boundary(tr: Translator, node: fp.Call, base: Expr, high: bool) -> Expr:
    if node.args:
        raise PathError(f"{node.name}() with a precision argument is not supported",
                        node.offset)
    kind = base.t.name if base.t.kind == "primitive" else base.t.kind
    builders = {"date": _date_bound, "dateTime": _datetime_bound, "instant": _datetime_bound,
                "time": _time_bound}
    if kind not in builders:
        raise PathError(f"{node.name}() is not supported for {kind} values", node.offset)
    out_kind = "dateTime" if kind == "instant" else kind
    return map_items(base, lambda item: Expr(builders[kind](f"({item.sql})", high), False,
                                             FType("primitive", out_kind)))


def _fn_lowBoundary(tr: Translator, node: fp.Call, base: Expr, scope: Scope) -> Expr:
    return _boundary(tr, node, base, high=False)


def _fn_highBoundary(tr: Translator, node: fp.Call, base: Expr, scope: Scope) -> Expr:
    return _boundary(tr, node, base, high=True)

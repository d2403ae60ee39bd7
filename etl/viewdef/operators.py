"""FHIRPath operators (boolean logic, comparison, arithmetic, union) as DuckDB SQL.

FHIRPath's three-valued logic (empty = unknown) is SQL's NULL logic, so ``and``/``or``/
``implies`` map directly. Comparisons and arithmetic take singletons; an empty operand gives
empty (NULL). Equality of collections follows FHIRPath: empty if either side is empty,
otherwise equal only when both have the same items in the same order.

Dates and times are compared as their ISO strings, which is exact for values of the same
precision and time-zone offset (FHIRPath's rules for mixed precision are not implemented).
"""
from __future__ import annotations

from etl.viewdef import fhirpath as fp
from etl.viewdef.expressions import (
    BOOLEAN,
    DECIMAL,
    NUMERIC,
    STRING,
    STRINGY,
    TEMPORAL,
    Expr,
    FType,
    PathError,
    as_list,
    as_single,
)

_COMPARE = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _family(t: FType) -> str:
    if t.kind != "primitive":
        return t.kind
    if t.name in NUMERIC:
        return "number"
    if t.name in STRINGY or t.name in TEMPORAL:
        return "string"
    return t.name


def _need(e: Expr, family: str, op: str, node: fp.Node) -> None:
    if _family(e.t) != family:
        raise PathError(f"operator '{op}' needs {family} operands, got "
                        f"{e.t.name or e.t.kind}", node.offset)


def binary(node: fp.Binary, left: Expr, right: Expr) -> Expr:
    """Translate ``left <op> right``."""
    op = node.op
    if op in ("and", "or", "xor", "implies"):
        _need(left, "boolean", op, node)
        _need(right, "boolean", op, node)
        a, b = as_single(left, op), as_single(right, op)
        sql = {"and": f"(({a}) AND ({b}))", "or": f"(({a}) OR ({b}))",
               "xor": f"(({a}) <> ({b}))", "implies": f"((NOT ({a})) OR ({b}))"}[op]
        return Expr(sql, False, BOOLEAN)
    if op in ("=", "!="):
        return _equality(node, left, right)
    if op in ("<", "<=", ">", ">="):
        fam = _family(left.t)
        if fam not in ("number", "string") or fam != _family(right.t):
            raise PathError(f"cannot compare {left.t.name or left.t.kind} with "
                            f"{right.t.name or right.t.kind}", node.offset)
        a, b = as_single(left, op), as_single(right, op)
        return Expr(f"(({a}) {op} ({b}))", False, BOOLEAN)
    if op in ("+", "-", "*", "/", "div", "mod"):
        return _arithmetic(node, left, right)
    if op == "&":
        _need(left, "string", op, node)
        _need(right, "string", op, node)
        a, b = as_single(left, op), as_single(right, op)
        return Expr(f"(coalesce({a}, '') || coalesce({b}, ''))", False, STRING)
    if op == "|":
        if _family(left.t) != _family(right.t) or left.t.kind != "primitive":
            raise PathError("'|' is supported for primitive values of one type only",
                            node.offset)
        sql = f"list_distinct(list_concat({as_list(left)}, {as_list(right)}))"
        return Expr(sql, True, left.t)
    if op in ("in", "contains"):
        item, coll = (left, right) if op == "in" else (right, left)
        if _family(item.t) != _family(coll.t) or item.t.kind != "primitive":
            raise PathError(f"'{op}' needs primitive operands of one type", node.offset)
        one = as_single(item, op)
        sql = (f"(CASE WHEN ({one}) IS NULL THEN NULL "
               f"ELSE coalesce(list_contains({as_list(coll)}, {one}), FALSE) END)")
        return Expr(sql, False, BOOLEAN)
    raise PathError(f"operator '{op}' is not supported", node.offset)


def _equality(node: fp.Binary, left: Expr, right: Expr) -> Expr:
    fam_l, fam_r = _family(left.t), _family(right.t)
    if fam_l != fam_r or fam_l not in ("number", "string", "boolean"):
        raise PathError(f"cannot compare {left.t.name or left.t.kind} with "
                        f"{right.t.name or right.t.kind} using '{node.op}'", node.offset)
    sql_op = _COMPARE[node.op]
    if not left.many and not right.many:
        sql = f"(({left.sql}) {sql_op} ({right.sql}))"
    elif left.many and right.many:
        eq = f"(({left.sql}) = ({right.sql}))"
        sql = (f"(CASE WHEN coalesce(len({left.sql}), 0) = 0 OR coalesce(len({right.sql}), 0)"
               f" = 0 THEN NULL ELSE {eq if node.op == '=' else 'NOT ' + eq} END)")
    else:
        coll, one = (left, right) if left.many else (right, left)
        eq = f"(({coll.sql})[1] = ({one.sql}))"
        differ = "FALSE" if node.op == "=" else "TRUE"
        sql = (f"(CASE WHEN coalesce(len({coll.sql}), 0) = 0 OR ({one.sql}) IS NULL THEN NULL "
               f"WHEN len({coll.sql}) = 1 THEN {eq if node.op == '=' else 'NOT ' + eq} "
               f"ELSE {differ} END)")
    return Expr(sql, False, BOOLEAN)


def _arithmetic(node: fp.Binary, left: Expr, right: Expr) -> Expr:
    op = node.op
    if op == "+" and _family(left.t) == "string" and _family(right.t) == "string":
        a, b = as_single(left, op), as_single(right, op)
        return Expr(f"(({a}) || ({b}))", False, STRING)
    _need(left, "number", op, node)
    _need(right, "number", op, node)
    a, b = as_single(left, op), as_single(right, op)
    integral = left.t.name != "decimal" and right.t.name != "decimal"
    result = FType("primitive", "integer") if integral else DECIMAL
    if op in ("+", "-", "*"):
        return Expr(f"(({a}) {op} ({b}))", False, result)
    if op == "/":
        # FHIRPath '/' always yields a decimal; division by zero yields empty.
        return Expr(f"(CASE WHEN ({b}) = 0 THEN NULL ELSE CAST({a} AS DOUBLE) / ({b}) END)",
                    False, DECIMAL)
    if op == "div":
        return Expr(f"(CASE WHEN ({b}) = 0 THEN NULL ELSE CAST(trunc(({a}) / ({b})) AS "
                    f"{'BIGINT' if integral else 'DOUBLE'}) END)", False, result)
    mod = f"(({a}) % ({b}))" if integral else f"fmod({a}, {b})"
    return Expr(f"(CASE WHEN ({b}) = 0 THEN NULL ELSE {mod} END)", False, result)

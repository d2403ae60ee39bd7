"""Translate FHIRPath ASTs into DuckDB SQL expressions over the typed resource struct.

Every FHIRPath value is a collection. At compile time each expression knows whether its SQL
is a *scalar* (zero or one item, NULL meaning empty) or a *LIST* (any number of items) --
derived from the element metadata, so paths through non-repeating elements stay plain struct
field accesses -- and the FHIR type of its items. Collections are LISTs that may be NULL
(absent in the JSON) and never hold NULL items.

Where FHIRPath needs one item (comparisons, arithmetic, boolean logic, non-collection
columns) a LIST is reduced to a singleton at run time, and more than one item raises an
error, as the FHIRPath specification requires. Anything the translator cannot do exactly
raises ViewDefinitionError instead of producing approximate SQL.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from decimal import Decimal

from etl.errors import ViewDefinitionError
from etl.sql import quote_ident, template_string
from etl.viewdef import schema
from etl.viewdef.structure import JSON, StructNode

NUMERIC = {"integer", "positiveInt", "unsignedInt", "integer64", "decimal"}
STRINGY = {"string", "code", "id", "uri", "url", "canonical", "oid", "uuid", "markdown",
           "base64Binary", "xhtml"}
TEMPORAL = {"date", "dateTime", "instant", "time"}


@dataclass(frozen=True)
class FType:
    """The type of the items of an expression.

    kind: ``primitive`` (``name`` = FHIR primitive), ``complex`` (``model`` + the struct
    ``node`` its fields are recorded in; ``resource`` for a resource), ``choice`` (an
    unresolved ``value[x]``: ``info`` and the ``parent`` expression), ``json`` (untyped JSON).
    """

    kind: str
    name: str = ""
    model: type | None = None
    node: StructNode | None = None
    info: schema.ElementInfo | None = None
    parent: Expr | None = None
    resource: bool = False


@dataclass(frozen=True)
class Expr:
    sql: str
    many: bool
    t: FType

    @property
    def is_boolean(self) -> bool:
        return self.t.kind == "primitive" and self.t.name == "boolean"


BOOLEAN = FType("primitive", "boolean")
INTEGER = FType("primitive", "integer")
DECIMAL = FType("primitive", "decimal")
STRING = FType("primitive", "string")

_var_ids: ContextVar[itertools.count[int] | None] = ContextVar("bmc_viewdef_var_ids",
                                                             default=None)


def fresh(prefix: str = "v") -> str:
    """A lambda parameter name unique within one compilation (nested lambdas may not clash)."""
    ids = _var_ids.get()
    if ids is None:
        ids = itertools.count(1)
        _var_ids.set(ids)
    return f"_{prefix}{next(ids)}"


@contextmanager
def fresh_names() -> Iterator[None]:
    """Number lambda names from 1 inside the block, so a view always compiles to one SQL."""
    token = _var_ids.set(itertools.count(1))
    try:
        yield
    finally:
        _var_ids.reset(token)


@dataclass(frozen=True)
class Scope:
    """What a path is evaluated against: the focus ($this), %rowIndex, constants, the root."""

    focus: Expr
    row_index: str
    constants: dict[str, Expr]
    root: Expr


class PathError(ViewDefinitionError):
    """A FHIRPath problem; ``offset`` points into the expression."""

    def __init__(self, message: str, offset: int):
        self.offset = offset
        super().__init__(f"{message} at offset {offset}")


# --- collection helpers ------------------------------------------------------------------

def as_list(e: Expr) -> str:
    """SQL of ``e`` as a LIST (possibly NULL for empty)."""
    if e.many:
        return e.sql
    return f"(CASE WHEN ({e.sql}) IS NULL THEN NULL ELSE [({e.sql})] END)"


def as_single(e: Expr, what: str = "expression") -> str:
    """SQL of ``e`` as a scalar; a LIST with more than one item raises at run time."""
    if not e.many:
        return e.sql
    message = template_string(f"FHIRPath: {what} returned more than one value")
    return f"(CASE WHEN len({e.sql}) > 1 THEN error({message}) ELSE ({e.sql})[1] END)"


def exists_sql(e: Expr) -> str:
    if e.many:
        return f"(coalesce(len({e.sql}), 0) > 0)"
    return f"(({e.sql}) IS NOT NULL)"


def map_items(e: Expr, body: Callable[[Expr], Expr]) -> Expr:
    """Apply ``body`` to each item of ``e``, flattening and dropping empties."""
    item = replace(e, many=False)
    if not e.many:
        return body(item)
    var = fresh()
    out = body(Expr(var, False, e.t))
    mapped = f"list_transform({e.sql}, lambda {var}: {out.sql})"
    if out.many:
        mapped = f"flatten({mapped})"
    else:
        nn = fresh()
        mapped = f"list_filter({mapped}, lambda {nn}: {nn} IS NOT NULL)"
    if "lambda" not in e.sql:
        # DuckDB runs a lambda even over a NULL list, at a cost; most repeating elements
        # are absent (focus, derivedFrom, hasMember), so skip it there.
        mapped = f"(CASE WHEN {e.sql} IS NULL THEN NULL ELSE {mapped} END)"
    return Expr(mapped, True, out.t)


def json_items(sql: str) -> str:
    """A raw JSON value as a LIST of JSON items (arrays are spread, NULL is empty)."""
    return (f"(CASE WHEN ({sql}) IS NULL THEN NULL WHEN json_type({sql}) = 'ARRAY' "
            f"THEN json_extract({sql}, '$[*]') ELSE [({sql})] END)")


def literal(value: object, kind: str) -> Expr:
    """A FHIRPath literal (or ViewDefinition constant) as a typed scalar expression."""
    if kind == "empty":
        return Expr("NULL", False, FType("primitive", "empty"))
    if kind == "boolean":
        return Expr("TRUE" if value else "FALSE", False, BOOLEAN)
    if kind == "integer":
        return Expr(str(int(value)), False, INTEGER)  # type: ignore[call-overload]
    if kind == "decimal":
        return Expr(f"CAST({template_string(str(Decimal(str(value))))} AS DOUBLE)", False, DECIMAL)
    if kind in ("string", *STRINGY, *TEMPORAL):
        return Expr(template_string(str(value)), False, FType("primitive", kind))
    raise ViewDefinitionError(f"unsupported literal kind {kind}")


__all__ = ["JSON", "Expr", "FType", "PathError", "Scope", "quote_ident"]

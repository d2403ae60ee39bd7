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
from etl.viewdef import fhirpath as fp
from etl.viewdef import schema
from etl.viewdef.structure import JSON, StructNode, Structure, quote_ident, sql_string

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
    message = sql_string(f"FHIRPath: {what} returned more than one value")
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


# --- the translator ----------------------------------------------------------------------

class Translator:
    """Translates FHIRPath ASTs of one view; records used elements in ``structure``."""

    def __init__(self, structure: Structure, resource_type: str):
        self.structure = structure
        self.resource_type = resource_type

    def root_expr(self, sql: str = "r") -> Expr:
        model = schema.resource_model(self.resource_type)
        return Expr(sql, False, FType("complex", self.resource_type, model,
                                      self.structure.root, resource=True))

    # -- navigation ----------------------------------------------------------------
    def child(self, base: Expr, name: str, offset: int) -> Expr:
        """``base.name`` per FHIRPath: flattened, empties dropped."""
        t = base.t
        if t.kind == "choice":
            raise PathError(f"'{t.info.name if t.info else '?'}' is a choice element: "
                            f"use ofType(...) before '.{name}'", offset)
        if t.kind == "primitive":
            raise PathError(f"cannot navigate to '{name}' from a {t.name} value", offset)
        if t.kind == "json":
            return map_items(base, lambda item: Expr(
                json_items(f"json_extract({item.sql}, {sql_string('$.' + name)})"), True,
                FType("json")))
        info = schema.element(t.model, name)
        if info is None and t.resource and name == "resourceType":
            info = schema.ElementInfo("resourceType", False, "primitive", "code")
        if info is None:
            # Not an R4 element (R5-only, unknown type): read it as untyped JSON.
            template = self.structure.json_field(t.node, name)
            return map_items(base, lambda item: Expr(
                json_items(template.format(f"({item.sql})")), True, FType("json")))
        if info.kind == "choice":
            return Expr(base.sql, base.many, FType("choice", name, info=info, parent=base))
        return map_items(base, lambda item: self._field(item, t.node, info))

    def _field(self, item: Expr, node: StructNode, info: schema.ElementInfo) -> Expr:
        if info.kind == "primitive":
            leaf = schema.duckdb_type_of_primitive(info.type_name)
            template, _ = self.structure.typed_field(node, info.name, info.repeating, leaf,
                                                     info.type_name)
            return Expr(template.format(f"({item.sql})"), info.repeating,
                        FType("primitive", info.type_name))
        template, child = self.structure.typed_field(node, info.name, info.repeating, None)
        ftype = FType("complex", info.type_name, info.model, child,
                      resource=info.kind == "resource")
        return Expr(template.format(f"({item.sql})"), info.repeating, ftype)

    # -- entry point -----------------------------------------------------------------
    def translate(self, node: fp.Node, scope: Scope) -> Expr:
        method = getattr(self, "_t_" + type(node).__name__)
        return method(node, scope)

    def _t_Literal(self, node: fp.Literal, scope: Scope) -> Expr:
        return literal(node.value, node.kind)

    def _t_This(self, node: fp.This, scope: Scope) -> Expr:
        return scope.focus

    def _t_Variable(self, node: fp.Variable, scope: Scope) -> Expr:
        if node.name == "rowIndex":
            return Expr(scope.row_index, False, INTEGER)
        if node.name in ("resource", "rootResource"):
            return scope.root
        if node.name in scope.constants:
            return scope.constants[node.name]
        raise PathError(f"undefined constant '%{node.name}'", node.offset)

    def _t_Identifier(self, node: fp.Identifier, scope: Scope) -> Expr:
        focus = scope.focus
        if focus.t.resource and node.name == focus.t.name and \
                schema.element(focus.t.model, node.name) is None:
            return focus  # 'Patient.name' style path starting with the resource type
        return self.child(focus, node.name, node.offset)

    def _t_Member(self, node: fp.Member, scope: Scope) -> Expr:
        return self.child(self.translate(node.target, scope), node.name, node.offset)

    def _t_Index(self, node: fp.Index, scope: Scope) -> Expr:
        base = self.translate(node.target, scope)
        index = self.translate(node.index, scope)
        if index.t.name not in ("integer", "positiveInt", "unsignedInt"):
            raise PathError("an index must be an integer", node.index.offset)
        idx = as_single(index, "index")
        if base.many:
            return Expr(f"({base.sql})[({idx}) + 1]", False, base.t)
        return Expr(f"(CASE WHEN ({idx}) = 0 THEN ({base.sql}) END)", False, base.t)

    def _t_Unary(self, node: fp.Unary, scope: Scope) -> Expr:
        operand = self.translate(node.operand, scope)
        if operand.t.kind != "primitive" or operand.t.name not in NUMERIC:
            raise PathError(f"unary {node.op} needs a number", node.offset)
        sql = as_single(operand)
        return Expr(f"(-({sql}))" if node.op == "-" else sql, False, operand.t)

    def _t_TypeOp(self, node: fp.TypeOp, scope: Scope) -> Expr:
        operand = self.translate(node.operand, scope)
        typed = self.of_type(operand, node.type_name, node.offset)
        if node.op == "as":
            return Expr(as_single(typed, "'as'"), False, typed.t)
        return Expr(exists_sql(typed), False, BOOLEAN)

    def _t_Binary(self, node: fp.Binary, scope: Scope) -> Expr:
        from etl.viewdef.operators import binary

        left = self.translate(node.left, scope)
        right = self.translate(node.right, scope)
        return binary(node, left, right)

    def _t_Call(self, node: fp.Call, scope: Scope) -> Expr:
        from etl.viewdef.functions import call

        base = scope.focus if node.target is None else self.translate(node.target, scope)
        return call(self, node, base, scope)

    # -- types -------------------------------------------------------------------------
    def of_type(self, base: Expr, type_name: str, offset: int) -> Expr:
        """``base.ofType(type_name)``."""
        name = schema.SYSTEM_TYPES.get(type_name, type_name.removeprefix("FHIR."))
        t = base.t
        if t.kind == "choice":
            assert t.info is not None and t.parent is not None
            field = schema.choice_field(t.info, name)
            if field is not None:
                return self.child(t.parent, field, offset)
            return self._undeclared_choice(t.parent, t.info.name, name, offset)
        if t.kind == "primitive":
            # FHIR primitive types are distinct (a code is not a string for ofType).
            return base if name == t.name else Expr("NULL", False, t)
        if t.kind == "complex" and t.resource and t.model is not None and \
                t.name in ("Resource", "DomainResource"):
            model = schema.resource_model(name)
            if model is None or not schema.is_resource_type(name):
                raise PathError(f"unknown resource type {name}", offset)
            rt_template, _ = self.structure.typed_field(t.node, "resourceType", False,
                                                         "VARCHAR")
            narrowed = FType("complex", name, model, t.node, resource=True)
            var = fresh()
            cond = f"{rt_template.format(var)} = {sql_string(name)}"
            if base.many:
                return Expr(f"list_filter({base.sql}, lambda {var}: {cond})", True, narrowed)
            return Expr(f"(CASE WHEN {rt_template.format('(' + base.sql + ')')} = "
                        f"{sql_string(name)} THEN {base.sql} END)", False, narrowed)
        if t.kind == "complex":
            if t.name == name or schema.type_matches(t.model, name):
                return base
            return Expr("NULL", False, t)
        raise PathError(f"ofType({name}) is not supported on untyped JSON", offset)


    def _undeclared_choice(self, parent: Expr, base: str, type_name: str, offset: int) -> Expr:
        """A choice type the R4B model does not list (R4's open ``*`` types such as Task
        output ``valueUuid``): typed from the type name when it names a FHIR type."""
        field = base + type_name[0].upper() + type_name[1:]
        leaf = schema.duckdb_type_of_primitive(type_name)
        model = None if leaf else schema.resource_model(type_name)
        if leaf is None and model is None:
            raise PathError(f"'{base}' cannot be of type {type_name}", offset)
        kind = "primitive" if leaf else "complex"
        info = schema.ElementInfo(field, False, kind, type_name, model)
        return map_items(parent, lambda item: self._field(item, parent.t.node, info))


def literal(value: object, kind: str) -> Expr:
    """A FHIRPath literal (or ViewDefinition constant) as a typed scalar expression."""
    if kind == "empty":
        return Expr("NULL", False, FType("primitive", "empty"))
    if kind == "boolean":
        return Expr("TRUE" if value else "FALSE", False, BOOLEAN)
    if kind == "integer":
        return Expr(str(int(value)), False, INTEGER)  # type: ignore[call-overload]
    if kind == "decimal":
        return Expr(f"CAST({sql_string(str(Decimal(str(value))))} AS DOUBLE)", False, DECIMAL)
    if kind in ("string", *STRINGY, *TEMPORAL):
        return Expr(sql_string(str(value)), False, FType("primitive", kind))
    raise ViewDefinitionError(f"unsupported literal kind {kind}")


__all__ = ["JSON", "Expr", "FType", "PathError", "Scope", "Translator", "quote_ident"]

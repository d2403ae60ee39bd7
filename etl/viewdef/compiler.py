"""Compile a SQL-on-FHIR v2 ViewDefinition into one DuckDB query.

The query reads ``{source}`` (exactly once), a relation with ``_rid`` (provenance row id) and
``r`` (the resource parsed with ``json_transform(json, CompiledView.structure)``), and
returns ``_rid`` followed by the view's columns in view order.

Row generation: columns outside any iteration are plain projections of ``r``. Each forEach,
forEachOrNull or repeat is one ``unnest`` in a nested SELECT (its item and, when used,
its 1-based index become columns), and DuckDB repeats the outer columns across it; sibling
iterations nest, so they multiply. A forEachOrNull over an empty list unnests ``[NULL]``,
and its index, NULL there, marks the null row. A unionAll splits the view into variants, one
SELECT each, joined by UNION ALL over a CTE of the source (parsed once). No lambdas build
rows and no STRUCTs are packed, so DuckDB spends its time on the columns themselves
(tests/etl/test_viewdef_shapes.py checks the rows against the older list-of-STRUCTs shape).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from etl.errors import ViewDefinitionError
from etl.sql import quote_ident
from etl.viewdef import cache as view_cache
from etl.viewdef import fhirpath as fp
from etl.viewdef import schema
from etl.viewdef.compiled import CompiledView, ViewColumn
from etl.viewdef.expressions import (
    STRING,
    Expr,
    PathError,
    Scope,
    as_list,
    as_single,
    fresh,
    fresh_names,
    literal,
)
from etl.viewdef.repeat import repeat_items
from etl.viewdef.structure import Structure
from etl.viewdef.translator import Translator
from etl.viewdef.validation import check_shape

# --- rows ----------------------------------------------------------------------------------
#
# A select tree compiles to one or more *variants*: alternatives without unionAll (a unionAll
# contributes one variant per branch; products and iteration distribute over it). A variant
# is a chain of *levels* (one ``unnest`` each: forEach, forEachOrNull, repeat) plus the column
# expressions, and becomes one SELECT:
#
#   SELECT _rid, <columns> FROM (SELECT *, unnest(<items>) AS _it2 FROM
#                               (SELECT *, unnest(<items>) AS _it1 FROM {source}))
#
# so columns outside any iteration are plain projections that DuckDB repeats across the
# unnests. Several variants are a UNION ALL over one CTE of the source (parsed once).

MAX_VARIANTS = 256


@dataclass
class _Col:
    name: str
    duckdb_type: str
    sql: str


@dataclass(frozen=True)
class _Level:
    """One unnest: ``item`` takes each value of ``items``; ``index`` (if not None) its
    1-based position, NULL in a forEachOrNull null row. ``guard`` is true in an enclosing
    forEachOrNull null row, where the level passes one NULL item through."""

    item: str
    items: str
    index: str | None
    or_null: bool
    guard: str | None

    def select_items(self) -> list[str]:
        items, n = self.items, f"len({self.items})"
        if self.or_null:
            values = f"(CASE WHEN {n} > 0 THEN {items} ELSE [NULL] END)"
            index = f"(CASE WHEN {n} > 0 THEN range(1, {n} + 1) ELSE [NULL] END)"
        else:
            values = items
            index = f"range(1, coalesce({n}, 0) + 1)"
        if self.guard is not None:
            values = f"(CASE WHEN {self.guard} THEN [NULL] ELSE {values} END)"
            index = f"(CASE WHEN {self.guard} THEN [NULL] ELSE {index} END)"
        out = [f"unnest({values}) AS {self.item}"]
        if self.index is not None:
            out.append(f"unnest({index}) AS {self.index}")
        return out


@dataclass
class _Variant:
    levels: list[_Level]
    cols: list[_Col]


def _product(parts: list[list[_Variant]], where: str) -> list[_Variant]:
    out = [_Variant([], [])]
    for part in parts:
        out = [_Variant(a.levels + b.levels, a.cols + b.cols) for a in out for b in part]
        if len(out) > MAX_VARIANTS:
            raise ViewDefinitionError(f"{where}: unionAll branches multiply to more than "
                                      f"{MAX_VARIANTS} row shapes; simplify the view")
    return out


def _mentions(name: str, variants: list[_Variant]) -> bool:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    return any(pattern.search(text) for v in variants
               for text in [*(c.sql for c in v.cols),
                            *(lv.items + (lv.guard or "") for lv in v.levels)])


# Functions that give NULL (empty) when their input is NULL (empty).
_STRICT_CALLS = {"ofType", "first", "last", "getReferenceKey", "where"}


def _strict_path(ast: fp.Node) -> bool:
    """True when ``ast`` navigates from the focus only, so an empty focus gives NULL."""
    if isinstance(ast, (fp.This, fp.Identifier)):
        return True
    if isinstance(ast, fp.Member):
        return _strict_path(ast.target)
    if isinstance(ast, fp.Call) and ast.name in _STRICT_CALLS:
        return ast.target is None or _strict_path(ast.target)
    return False


def _typed_path(ast: fp.Node) -> bool:
    """True when the SQL of ``ast`` has exactly the DuckDB type of its FHIR type (an element
    read from the typed structure, or a reference key)."""
    while isinstance(ast, fp.Call) and ast.name in ("first", "last", "getReferenceKey",
                                                      "ofType"):
        if ast.target is None:
            return ast.name != "getReferenceKey"
        ast = ast.target
    if isinstance(ast, fp.Identifier):
        return True
    return isinstance(ast, fp.Member) and _typed_path(ast.target)


# --- compilation ---------------------------------------------------------------------------

@dataclass
class _Compiler:
    view: dict[str, Any]
    structure: Structure
    tr: Translator
    constants: dict[str, Expr] = field(default_factory=dict)
    columns: list[ViewColumn] = field(default_factory=list)

    def parse(self, path: Any, where: str) -> fp.Node:
        try:
            return fp.parse(path)
        except fp.FhirPathSyntaxError as exc:
            raise ViewDefinitionError(f"{where}: {exc}") from None

    def translate(self, path: str, scope: Scope, where: str) -> tuple[fp.Node, Expr]:
        ast = self.parse(path, where)
        try:
            return ast, self.tr.translate(ast, scope)
        except PathError as exc:
            raise ViewDefinitionError(f"{where}: {exc}") from None
        except ViewDefinitionError as exc:
            raise ViewDefinitionError(f"{where}: {exc}") from None

    def column(self, col: dict[str, Any], scope: Scope, where: str, record: bool,
               null_if: str | None, own_null: str | None) -> _Col:
        """One column. ``null_if``: SQL true in a forEachOrNull null row (every column is
        NULL there, except that a forEachOrNull's own ``%rowIndex`` column is 0 in its own
        null row, ``own_null``)."""
        name, path = col["name"], col["path"]
        ast, e = self.translate(path, scope, f"{where}.path")
        declared = col.get("type")
        collection = col.get("collection") is True
        if e.t.kind == "choice":
            raise ViewDefinitionError(f"{where}.path: '{path}' is a choice element; "
                                      f"use ofType(...)")
        is_json = e.t.kind == "json"
        if is_json:
            var = fresh()
            e = Expr(f"list_transform({as_list(e)}, lambda {var}: {var} ->> '$')", True,
                     STRING)
        if declared is not None:
            duck = schema.duckdb_type_of_primitive(declared)
            if duck is None:
                raise ViewDefinitionError(f"{where}.type: '{declared}' is not a FHIR primitive "
                                          f"type; select its elements instead")
        elif e.t.kind == "primitive" and e.t.name != "empty":
            duck = schema.duckdb_type_of_primitive(e.t.name) or "VARCHAR"
        else:
            raise ViewDefinitionError(f"{where}.path: '{path}' yields {e.t.name or e.t.kind} "
                                      f"values, not a typed primitive; navigate to an element "
                                      f"or declare the column type")
        exact = (not is_json and e.t.kind == "primitive" and _typed_path(ast)
                 and schema.duckdb_type_of_primitive(e.t.name) == duck)
        if collection:
            sql = f"coalesce({as_list(e)}, [])"
            out_type = f"{duck}[]"
        else:
            sql = as_single(e, f"column {name}")
            out_type = duck
        if not exact:
            sql = f"CAST({sql} AS {out_type})"
        if null_if is not None and (collection or is_json or not _strict_path(ast)):
            if own_null is not None and isinstance(ast, fp.Variable) and \
                    ast.name == "rowIndex":
                outer = null_if.removesuffix(f" OR {own_null}").removesuffix(own_null)
                outer_case = f"WHEN {outer} THEN NULL " if outer else ""
                sql = f"(CASE {outer_case}WHEN {own_null} THEN 0 ELSE {sql} END)"
            else:
                sql = f"(CASE WHEN {null_if} THEN NULL ELSE {sql} END)"
        if record:
            ref_types = _reference_key_types(ast)
            self.columns.append(ViewColumn(
                name=name, duckdb_type=out_type,
                fhir_type=declared or (e.t.name if e.t.kind == "primitive" else None),
                description=col.get("description"), collection=collection, path=path,
                is_reference_key=ref_types is not None, reference_types=ref_types or (),
                tags=tuple((str(t.get("name")), str(t.get("value"))) for t in col.get("tag", []))))
        return _Col(name, out_type, sql)

    def node(self, sel: dict[str, Any], scope: Scope, where: str, record: bool,
             null_if: str | None) -> list[_Variant]:
        """Variants of one select node (its forEach/forEachOrNull/repeat applied)."""
        if "forEach" in sel or "forEachOrNull" in sel:
            key = "forEach" if "forEach" in sel else "forEachOrNull"
            _, items = self.translate(sel[key], scope, f"{where}.{key}")
            if items.t.kind == "choice":
                raise ViewDefinitionError(f"{where}.{key}: use ofType(...) on a choice element")
            return self.iterate(sel, scope, where, record, items, key == "forEachOrNull",
                                null_if)
        if "repeat" in sel:
            items = repeat_items(self.tr, scope.focus, sel["repeat"], f"{where}.repeat")
            return self.iterate(sel, scope, where, record, items, False, null_if)
        return self.body(sel, scope, where, record, null_if, None)

    def iterate(self, sel: dict[str, Any], scope: Scope, where: str, record: bool,
                items: Expr, or_null: bool, null_if: str | None) -> list[_Variant]:
        item, index = fresh("it"), fresh("ix")
        inner = Scope(Expr(item, False, items.t), f"({index} - 1)", scope.constants,
                      scope.root)
        own_null = f"{index} IS NULL" if or_null else None
        inner_null = " OR ".join(c for c in (null_if, own_null) if c) or None
        body = self.body(sel, inner, where, record, inner_null, own_null)
        index_used = index if _mentions(index, body) else None
        # The null row is one row: only the first variant of a body with unionAll emits it.
        return [_Variant([_Level(item, as_list(items), index_used, or_null and i == 0, null_if),
                          *v.levels], v.cols) for i, v in enumerate(body)]

    def body(self, sel: dict[str, Any], scope: Scope, where: str, record: bool,
             null_if: str | None, own_null: str | None) -> list[_Variant]:
        parts: list[list[_Variant]] = []
        if sel.get("column"):
            parts.append([_Variant([], [
                self.column(c, scope, f"{where}.column[{i}]", record, null_if, own_null)
                for i, c in enumerate(sel["column"])])])
        for i, child in enumerate(sel.get("select", [])):
            parts.append(self.node(child, scope, f"{where}.select[{i}]", record, null_if))
        if sel.get("unionAll"):
            parts.append(self.union(sel["unionAll"], scope, f"{where}.unionAll", record,
                                    null_if))
        if not parts:
            raise ViewDefinitionError(f"{where}: a select needs column, select or unionAll")
        return _product(parts, where)

    def union(self, branches: list[dict[str, Any]], scope: Scope, where: str,
              record: bool, null_if: str | None) -> list[_Variant]:
        compiled = [self.node(b, scope, f"{where}[{i}]", record and i == 0, null_if)
                    for i, b in enumerate(branches)]
        first = [(c.name, c.duckdb_type) for c in compiled[0][0].cols]
        for i, variants in enumerate(compiled[1:], start=1):
            names = [(c.name, c.duckdb_type) for c in variants[0].cols]
            if [n for n, _ in names] != [n for n, _ in first]:
                raise ViewDefinitionError(
                    f"{where}[{i}]: unionAll branches must have the same columns in the same "
                    f"order ({', '.join(n for n, _ in first)} vs {', '.join(n for n, _ in names)})")
            if names != first:
                raise ViewDefinitionError(f"{where}[{i}]: unionAll branch column types differ "
                                          f"from the first branch")
        out = [v for variants in compiled for v in variants]
        if len(out) > MAX_VARIANTS:
            raise ViewDefinitionError(f"{where}: unionAll branches multiply to more than "
                                      f"{MAX_VARIANTS} row shapes; simplify the view")
        return out


def _variant_sql(variant: _Variant, source: str) -> str:
    """One SELECT: the variant's unnests nested around ``source``, its columns outside."""
    rel = source
    for level in variant.levels:
        rel = f"(SELECT *, {', '.join(level.select_items())}\n      FROM {rel})"
    cols = ",\n       ".join(f"{c.sql} AS {quote_ident(c.name)}" for c in variant.cols)
    return f"SELECT _rid,\n       {cols}\nFROM {rel}"


def _reference_key_types(ast: fp.Node) -> tuple[str, ...] | None:
    """The type arguments when ``ast`` ends in getReferenceKey(...) (first()/last() allowed
    after it); None when it does not."""
    while isinstance(ast, fp.Call) and ast.name in ("first", "last") and ast.target is not None:
        ast = ast.target
    if not (isinstance(ast, fp.Call) and ast.name == "getReferenceKey"):
        return None
    out = []
    for arg in ast.args:
        if isinstance(arg, fp.Identifier):
            out.append(arg.name)
    return tuple(out)


_CONSTANT_KINDS = {
    "valueString": "string", "valueCode": "code", "valueId": "id", "valueUri": "uri",
    "valueUrl": "url", "valueCanonical": "canonical", "valueOid": "oid", "valueUuid": "uuid",
    "valueMarkdown": "markdown", "valueBase64Binary": "base64Binary",
    "valueBoolean": "boolean", "valueInteger": "integer", "valuePositiveInt": "integer",
    "valueUnsignedInt": "integer", "valueInteger64": "integer", "valueDecimal": "decimal",
    "valueDate": "date", "valueDateTime": "dateTime", "valueInstant": "instant",
    "valueTime": "time",
}


def _constants(view: dict[str, Any]) -> dict[str, Expr]:
    out: dict[str, Expr] = {}
    for i, const in enumerate(view.get("constant", [])):
        where = f"constant[{i}]"
        values = [k for k in const if k.startswith("value")]
        if len(values) != 1:
            raise ViewDefinitionError(f"{where}: needs exactly one value[x], found {len(values)}")
        kind = _CONSTANT_KINDS.get(values[0])
        if kind is None:
            raise ViewDefinitionError(f"{where}: {values[0]} is not a supported constant type")
        value = const[values[0]]
        if (kind == "boolean" and not isinstance(value, bool)) or \
                (kind == "integer" and (not isinstance(value, int) or isinstance(value, bool))):
            raise ViewDefinitionError(f"{where}: {values[0]} has a value of the wrong type")
        out[const["name"]] = literal(value, kind)
    return out


def _compile(view: dict[str, Any], force_json: frozenset[tuple[str, ...]]) -> tuple[
        CompiledView, Structure]:
    resource = view["resource"]
    structure = Structure(resource, force_json)
    tr = Translator(structure, resource)
    comp = _Compiler(view, structure, tr, _constants(view))
    root = tr.root_expr("r")
    scope = Scope(root, "0", comp.constants, root)

    variants = _product([comp.node(sel, scope, f"select[{i}]", record=True, null_if=None)
                         for i, sel in enumerate(view["select"])], "select")
    seen: set[str] = set()
    for col in comp.columns:
        if col.name in seen:
            raise ViewDefinitionError(f"column name '{col.name}' is used twice")
        seen.add(col.name)

    filters = []
    for i, w in enumerate(view.get("where", [])):
        _, e = comp.translate(w["path"], scope, f"where[{i}].path")
        if not e.is_boolean:
            raise ViewDefinitionError(f"where[{i}].path: '{w['path']}' does not return a "
                                      f"boolean")
        filters.append(f"coalesce({as_single(e, f'where[{i}]')}, FALSE)")
    source = "{source}"
    if filters:
        source = f"(SELECT * FROM {{source}} AS _s\n      WHERE {' AND '.join(filters)})"
    if len(variants) == 1:
        sql = _variant_sql(variants[0], source)
    else:
        # One parse of the source for all branches (DuckDB materialises the CTE).
        sql = f"WITH _source AS {source}\n" + "\nUNION ALL\n".join(
            _variant_sql(v, "_source") for v in variants)
    # Column types come from the (possibly unioned) rows; view order is rows order.
    by_name = {c.name: c for c in comp.columns}
    columns = tuple(by_name[c.name] for c in variants[0].cols)
    compiled = CompiledView(view.get("name"), resource, columns,
                            _structure_dict(structure), structure.finish_sql(sql),
                            tuple(sorted((".".join(p), t) for p, t in structure.checked.items())))
    return compiled, structure


def _structure_dict(structure: Structure) -> dict:
    rendered = structure.render()
    if isinstance(rendered, dict):
        return rendered
    return {"id": "VARCHAR"}  # nothing read from the resource itself (constants only)


def compile_view(view: dict[str, Any]) -> CompiledView:
    """Compile a ViewDefinition (a parsed JSON dict); raise ViewDefinitionError if invalid or
    unsupported. Successful compilations are cached on disk (see etl.viewdef.cache)."""
    cached = view_cache.load(view) if isinstance(view, dict) else None
    if cached is not None:
        return cached
    check_shape(view)
    with fresh_names():
        compiled, structure = _compile(view, frozenset())
    if structure.conflicts:
        # An element read both as JSON (repeat) and typed: recompile, JSON throughout.
        with fresh_names():
            compiled, structure = _compile(view, frozenset(structure.conflicts))
    if structure.conflicts:
        raise ViewDefinitionError("could not settle which elements are JSON: "
                                  + ", ".join(".".join(p) for p in structure.conflicts))
    view_cache.store(view, compiled)
    return compiled


def validate_view(view: dict[str, Any]) -> None:
    """Raise ViewDefinitionError saying what is wrong and where; return None if valid."""
    compile_view(view)


__all__ = ["CompiledView", "ViewColumn", "compile_view", "validate_view"]

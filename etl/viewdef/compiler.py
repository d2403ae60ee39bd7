"""Compile a SQL-on-FHIR v2 ViewDefinition into one DuckDB SELECT.

The SELECT reads ``{source}``, a relation with ``_rid`` (provenance row id) and ``r`` (the
resource parsed with ``json_transform(json, CompiledView.structure)``), and returns
``_rid`` followed by the view's columns in view order.

Row generation: a select node without iteration yields exactly one row, kept as plain
column expressions, so a view without forEach/unionAll/repeat is a flat projection. As soon
as a node can yield several rows it becomes a LIST of STRUCT rows (``forEach`` maps over the
items with a lambda, ``unionAll`` concatenates lists, sibling nodes multiply), and the
final SELECT unnests that list once per resource. Everything stays a per-row expression --
no joins, no correlated subqueries -- which DuckDB vectorises well.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from etl.errors import ViewDefinitionError
from etl.viewdef import fhirpath as fp
from etl.viewdef import schema
from etl.viewdef.expressions import (
    STRING,
    Expr,
    PathError,
    Scope,
    Translator,
    as_list,
    as_single,
    fresh,
    fresh_names,
    literal,
)
from etl.viewdef.repeat import repeat_items
from etl.viewdef.structure import Structure, quote_ident
from etl.viewdef.validation import check_shape


@dataclass(frozen=True)
class ViewColumn:
    """One output column; ``is_reference_key`` marks paths ending in getReferenceKey()."""

    name: str
    duckdb_type: str
    fhir_type: str | None
    description: str | None
    collection: bool
    path: str
    is_reference_key: bool
    reference_types: tuple[str, ...]


@dataclass(frozen=True)
class CompiledView:
    """A compiled view: its columns, the resource structure and the SELECT over ``{source}``."""

    name: str | None
    resource: str
    columns: tuple[ViewColumn, ...]
    structure: dict
    sql: str

    def render(self, source: str) -> str:
        """The SQL with ``{source}`` replaced by ``source`` (a relation name or subquery)."""
        return self.sql.replace("{source}", source)


# --- rows ----------------------------------------------------------------------------------

@dataclass
class _Col:
    name: str
    duckdb_type: str
    sql: str
    row_index: bool = False  # the path is exactly %rowIndex (0 in a forEachOrNull null row)


@dataclass
class _Rows:
    """Columns plus either one row (``list_sql`` None; values in ``cols[i].sql``) or a LIST of
    STRUCT rows."""

    cols: list[_Col]
    list_sql: str | None = None


def _pack(fields: list[tuple[str, str]]) -> str:
    return "struct_pack(" + ", ".join(f"{quote_ident(n)} := {s}" for n, s in fields) + ")"


def _as_list(rows: _Rows) -> str:
    if rows.list_sql is not None:
        return rows.list_sql
    return f"[{_pack([(c.name, c.sql) for c in rows.cols])}]"


def _product(a: _Rows, b: _Rows) -> _Rows:
    cols = a.cols + b.cols
    if a.list_sql is None and b.list_sql is None:
        return _Rows(cols)
    va, vb = fresh("ra"), fresh("rb")

    def from_row(var: str, rows: _Rows) -> list[tuple[str, str]]:
        if rows.list_sql is None:
            return [(c.name, c.sql) for c in rows.cols]
        return [(c.name, f"{var}.{quote_ident(c.name)}") for c in rows.cols]

    packed = _pack(from_row(va, a) + from_row(vb, b))
    if a.list_sql is None:
        return _Rows(cols, f"list_transform({b.list_sql}, lambda {vb}: {packed})")
    if b.list_sql is None:
        return _Rows(cols, f"list_transform({a.list_sql}, lambda {va}: {packed})")
    return _Rows(cols, f"flatten(list_transform({a.list_sql}, lambda {va}: "
                       f"list_transform({b.list_sql}, lambda {vb}: {packed})))")


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

    def column(self, col: dict[str, Any], scope: Scope, where: str, record: bool) -> _Col:
        name, path = col["name"], col["path"]
        ast, e = self.translate(path, scope, f"{where}.path")
        declared = col.get("type")
        collection = col.get("collection") is True
        if e.t.kind == "choice":
            raise ViewDefinitionError(f"{where}.path: '{path}' is a choice element; "
                                      f"use ofType(...)")
        if e.t.kind == "json":
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
        if collection:
            sql = f"CAST(coalesce({as_list(e)}, []) AS {duck}[])"
            out_type = f"{duck}[]"
        else:
            sql = f"CAST({as_single(e, f'column {name}')} AS {duck})"
            out_type = duck
        if record:
            ref_types = _reference_key_types(ast)
            self.columns.append(ViewColumn(
                name=name, duckdb_type=out_type,
                fhir_type=declared or (e.t.name if e.t.kind == "primitive" else None),
                description=col.get("description"), collection=collection, path=path,
                is_reference_key=ref_types is not None, reference_types=ref_types or ()))
        return _Col(name, out_type, sql, isinstance(ast, fp.Variable) and
                    ast.name == "rowIndex")

    def node(self, sel: dict[str, Any], scope: Scope, where: str, record: bool) -> _Rows:
        """Rows of one select node (its forEach/forEachOrNull/repeat applied)."""
        if "forEach" in sel or "forEachOrNull" in sel:
            key = "forEach" if "forEach" in sel else "forEachOrNull"
            _, items = self.translate(sel[key], scope, f"{where}.{key}")
            if items.t.kind == "choice":
                raise ViewDefinitionError(f"{where}.{key}: use ofType(...) on a choice element")
            return self.iterate(sel, scope, where, record, items, or_null=key == "forEachOrNull")
        if "repeat" in sel:
            items = repeat_items(self.tr, scope.focus, sel["repeat"], f"{where}.repeat")
            return self.iterate(sel, scope, where, record, items, or_null=False)
        return self.body(sel, scope, where, record)

    def iterate(self, sel: dict[str, Any], scope: Scope, where: str, record: bool,
                items: Expr, or_null: bool) -> _Rows:
        var, idx = fresh("it"), fresh("ix")
        inner = Scope(Expr(var, False, items.t), f"({idx} - 1)", scope.constants, scope.root)
        body = self.body(sel, inner, where, record)
        items_sql = as_list(items)
        if body.list_sql is None:
            rows = f"list_transform({items_sql}, lambda {var}, {idx}: " \
                   f"{_pack([(c.name, c.sql) for c in body.cols])})"
        else:
            rows = f"flatten(list_transform({items_sql}, lambda {var}, {idx}: {body.list_sql}))"
        if or_null:
            own = {c["name"] for c in sel.get("column", [])}
            null_row = _pack([(c.name, "0" if c.row_index and c.name in own
                               else f"CAST(NULL AS {c.duckdb_type})") for c in body.cols])
            rows = (f"(CASE WHEN coalesce(len({items_sql}), 0) = 0 THEN [{null_row}] "
                    f"ELSE {rows} END)")
        return _Rows(body.cols, rows)

    def body(self, sel: dict[str, Any], scope: Scope, where: str, record: bool) -> _Rows:
        parts: list[_Rows] = []
        if sel.get("column"):
            parts.append(_Rows([self.column(c, scope, f"{where}.column[{i}]", record)
                                for i, c in enumerate(sel["column"])]))
        for i, child in enumerate(sel.get("select", [])):
            parts.append(self.node(child, scope, f"{where}.select[{i}]", record))
        if sel.get("unionAll"):
            parts.append(self.union(sel["unionAll"], scope, f"{where}.unionAll", record))
        if not parts:
            raise ViewDefinitionError(f"{where}: a select needs column, select or unionAll")
        rows = parts[0]
        for part in parts[1:]:
            rows = _product(rows, part)
        return rows

    def union(self, branches: list[dict[str, Any]], scope: Scope, where: str,
              record: bool) -> _Rows:
        compiled = [self.node(b, scope, f"{where}[{i}]", record and i == 0)
                    for i, b in enumerate(branches)]
        first = [(c.name, c.duckdb_type) for c in compiled[0].cols]
        for i, rows in enumerate(compiled[1:], start=1):
            names = [(c.name, c.duckdb_type) for c in rows.cols]
            if [n for n, _ in names] != [n for n, _ in first]:
                raise ViewDefinitionError(
                    f"{where}[{i}]: unionAll branches must have the same columns in the same "
                    f"order ({', '.join(n for n, _ in first)} vs {', '.join(n for n, _ in names)})")
            if names != first:
                raise ViewDefinitionError(f"{where}[{i}]: unionAll branch column types differ "
                                          f"from the first branch")
        sql = "list_concat(" + ", ".join(_as_list(r) for r in compiled) + ")" \
            if len(compiled) > 1 else _as_list(compiled[0])
        return _Rows(compiled[0].cols, sql)


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

    rows: _Rows | None = None
    for i, sel in enumerate(view["select"]):
        part = comp.node(sel, scope, f"select[{i}]", record=True)
        rows = part if rows is None else _product(rows, part)
    assert rows is not None
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
    where_sql = f"\nWHERE {' AND '.join(filters)}" if filters else ""

    if rows.list_sql is None:
        select = ",\n       ".join(f"{c.sql} AS {quote_ident(c.name)}" for c in rows.cols)
        sql = f"SELECT _rid,\n       {select}\nFROM {{source}}{where_sql}"
    else:
        select = ",\n       ".join(f"_row.{quote_ident(c.name)} AS {quote_ident(c.name)}"
                                   for c in rows.cols)
        sql = (f"SELECT _rid,\n       {select}\nFROM (SELECT _rid, unnest({rows.list_sql}) AS _row"
               f"\n      FROM {{source}}{where_sql}) AS _rows")
    # Column types come from the (possibly unioned) rows; view order is rows order.
    by_name = {c.name: c for c in comp.columns}
    columns = tuple(by_name[c.name] for c in rows.cols)
    compiled = CompiledView(view.get("name"), resource, columns,
                            _structure_dict(structure), structure.finish_sql(sql))
    return compiled, structure


def _structure_dict(structure: Structure) -> dict:
    rendered = structure.render()
    if isinstance(rendered, dict):
        return rendered
    return {"id": "VARCHAR"}  # nothing read from the resource itself (constants only)


def compile_view(view: dict[str, Any]) -> CompiledView:
    """Compile a ViewDefinition (a parsed JSON dict); raise ViewDefinitionError if invalid or
    unsupported."""
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
    return compiled


def validate_view(view: dict[str, Any]) -> None:
    """Raise ViewDefinitionError saying what is wrong and where; return None if valid."""
    compile_view(view)


__all__ = ["CompiledView", "ViewColumn", "compile_view", "validate_view"]

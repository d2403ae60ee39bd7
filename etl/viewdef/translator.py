"""The FHIRPath translator: walks an AST and builds typed SQL expressions of one view.

Kept apart from :mod:`.expressions` (the value types and collection helpers) so that the
operators and functions it dispatches to import those helpers without importing it back:
the arrows run translator -> functions/operators -> expressions, never the other way.
"""
from __future__ import annotations

from etl.sql import template_string
from etl.viewdef import fhirpath as fp
from etl.viewdef import schema
from etl.viewdef.expressions import (
    BOOLEAN,
    INTEGER,
    NUMERIC,
    Expr,
    FType,
    PathError,
    Scope,
    as_single,
    exists_sql,
    fresh,
    json_items,
    literal,
    map_items,
)
from etl.viewdef.functions import call
from etl.viewdef.operators import binary
from etl.viewdef.structure import StructNode, Structure

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
                json_items(f"json_extract({item.sql}, {template_string('$.' + name)})"), True,
                FType("json")))
        node = t.node
        assert node is not None, "a complex value always carries its structure node"
        info = schema.element(t.model, name)
        if info is None and t.resource and name == "resourceType":
            info = schema.ElementInfo("resourceType", False, "primitive", "code")
        if info is None:
            # Not an R4 element (R5-only, unknown type): read it as untyped JSON.
            template = self.structure.json_field(node, name)
            return map_items(base, lambda item: Expr(
                json_items(template.format(f"({item.sql})")), True, FType("json")))
        if info.kind == "choice":
            return Expr(base.sql, base.many, FType("choice", name, info=info, parent=base))
        return map_items(base, lambda item: self._field(item, node, info))

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
        left = self.translate(node.left, scope)
        right = self.translate(node.right, scope)
        return binary(node, left, right)

    def _t_Call(self, node: fp.Call, scope: Scope) -> Expr:
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
            assert t.node is not None, "a complex value always carries its structure node"
            rt_template, _ = self.structure.typed_field(t.node, "resourceType", False,
                                                         "VARCHAR")
            narrowed = FType("complex", name, model, t.node, resource=True)
            var = fresh()
            cond = f"{rt_template.format(var)} = {template_string(name)}"
            if base.many:
                return Expr(f"list_filter({base.sql}, lambda {var}: {cond})", True, narrowed)
            return Expr(f"(CASE WHEN {rt_template.format('(' + base.sql + ')')} = "
                        f"{template_string(name)} THEN {base.sql} END)", False, narrowed)
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
        node = parent.t.node
        assert node is not None, "a choice's parent is a complex value with a structure node"
        return map_items(parent, lambda item: self._field(item, node, info))

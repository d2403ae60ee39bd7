"""The ``repeat`` directive: recursive traversal (Questionnaire items and the like).

A recursive element cannot be given a finite typed structure, so the element the traversal
starts from is read as raw JSON and each level's children are found with ``json_extract``
``json_extract`` (arrays spread, so the metadata is needed only to type the items). DuckDB SQL has no recursion inside an
expression (lambdas may not hold subqueries), so the depth-first traversal is unrolled to
``MAX_DEPTH`` levels; a resource nested deeper raises an error at run time rather than being
cut short silently. Items come out in document (pre-)order, which is what ``%rowIndex``
numbers. Each item is then parsed with ``from_json`` into a typed struct holding only the
elements the view reads from it.
"""
from __future__ import annotations

from etl.errors import ViewDefinitionError
from etl.sql import template_string
from etl.viewdef import fhirpath as fp
from etl.viewdef import schema
from etl.viewdef.expressions import Expr, FType, fresh, json_items
from etl.viewdef.translator import Translator

MAX_DEPTH = 12


def _steps(path: str, where: str) -> list[str]:
    try:
        node = fp.parse(path)
    except fp.FhirPathSyntaxError as exc:
        raise ViewDefinitionError(f"{where}: {exc}") from None
    names: list[str] = []
    while isinstance(node, fp.Member):
        names.append(node.name)
        node = node.target
    if not isinstance(node, fp.Identifier):
        raise ViewDefinitionError(f"{where}: repeat supports element paths like 'item' or "
                                  f"'answer.item' only")
    names.append(node.name)
    return names[::-1]


def _model_reached(model: type | None, steps: list[str]) -> type | None:
    """The model of the objects ``steps`` lead to from ``model``; None when unknown."""
    for step in steps:
        info = schema.element(model, step)
        if info is None or info.kind != "complex":
            return None
        model = info.model
    return model


def _json_path(model: type | None, steps: list[str]) -> str | None:
    """A wildcard JSONPath for ``steps`` from an object of ``model`` (``$.answer[*].item[*]``),
    or None when the metadata does not know every step."""
    parts = ["$"]
    for step in steps:
        info = schema.element(model, step)
        if info is None or info.kind != "complex":
            return None
        parts.append(f".{step}[*]" if info.repeating else f".{step}")
        model = info.model
    return "".join(parts)


def _children(item: str, steps: list[str], model: type | None) -> str:
    """LIST of JSON reached from one JSON object ``item`` by ``steps``."""
    path = _json_path(model, steps)
    if path is not None:
        # Known metadata: one wildcard extraction (much smaller SQL than step by step).
        return f"coalesce(json_extract({item}, {template_string(path)}), [])"
    return _follow(f"[{item}]", steps)


def _follow(start: str, steps: list[str]) -> str:
    """LIST of JSON reached from the JSON items in ``start`` by ``steps`` (arrays spread)."""
    current = start
    for step in steps:
        var = fresh("j")
        extracted = json_items(f"json_extract({var}, {template_string('$.' + step)})")
        current = f"flatten(list_transform({current}, lambda {var}: coalesce({extracted}, [])))"
    return current


def repeat_items(tr: Translator, ctx: Expr, paths: list[str], where: str) -> Expr:
    """A LIST of the nodes reached by repeatedly following ``paths`` from ``ctx``: typed
    structs when the element metadata is known, untyped JSON otherwise."""
    if ctx.t.kind != "complex" or ctx.t.node is None or ctx.many:
        raise ViewDefinitionError(f"{where}: repeat needs a single element as context")
    all_steps = [_steps(p, f"{where}[{i}]") for i, p in enumerate(paths)]
    models = {m for m in (_model_reached(ctx.t.model, s) for s in all_steps) if m is not None}
    if len(models) > 1:
        raise ViewDefinitionError(f"{where}: all repeat paths must reach one type")
    item_model = models.pop() if models else None

    first = []
    for steps in all_steps:
        # From the context (a typed struct) the first step is read as raw JSON.
        template = tr.structure.json_field(ctx.t.node, steps[0])
        raw = template.format("(" + ctx.sql + ")")
        first.append(_follow(f"coalesce({json_items(raw)}, [])", steps[1:]))

    def children(x: str) -> str:
        lists = [_children(x, steps, item_model) for steps in all_steps]
        return lists[0] if len(lists) == 1 else f"list_concat({', '.join(lists)})"

    def below(x: str, depth: int) -> str:
        if depth > MAX_DEPTH:
            message = template_string(f"repeat: nesting deeper than {MAX_DEPTH} levels")
            return (f"(CASE WHEN len({children(x)}) > 0 THEN error({message}) "
                    f"ELSE CAST([] AS JSON[]) END)")
        var = fresh("j")
        return (f"flatten(list_transform({children(x)}, lambda {var}: "
                f"list_concat([{var}], {below(var, depth + 1)})))")

    var = fresh("j")
    start_list = first[0] if len(first) == 1 else f"list_concat({', '.join(first)})"
    nodes = (f"flatten(list_transform({start_list}, lambda {var}: "
             f"list_concat([{var}], {below(var, 2)})))")
    if item_model is None:
        return Expr(nodes, True, FType("json"))
    item_node = tr.structure.detached((*ctx.t.node.path, all_steps[0][-1]))
    conv = fresh("j")
    type_name = getattr(item_model, "__resource_type__", "BackboneElement")
    sql = (f"list_transform({nodes}, lambda {conv}: "
           f"from_json({conv}, {tr.structure.placeholder(item_node)}))")
    return Expr(sql, True, FType("complex", type_name, item_model, item_node))

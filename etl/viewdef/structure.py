"""The ``json_transform`` structure of a resource: only the elements a view uses, typed.

DuckDB parses JSON fastest when it is given a typed structure (``json_transform``), and it
then only materialises the keys named in it. So while a view is compiled every element it
navigates is recorded here, with its type from :mod:`etl.viewdef.schema`; at the end the
tree is rendered to the structure dict.

Elements that cannot be typed finitely are recorded as ``"JSON"`` and handled with DuckDB's
JSON functions: the targets of ``repeat`` (recursive), elements the R4B models do not know,
and elements used both ways in one view. A typed use of a JSON element goes through
``from_json(<json>, '<structure>')`` with a *detached* node whose structure is rendered
when compilation is complete; the SQL holds a placeholder until then (``finish_sql``).
"""
from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field

from etl.errors import ViewDefinitionError
from etl.sql import quote_ident, template_string

JSON = "JSON"
_ids = itertools.count(1)
_PLACEHOLDER = re.compile(r"'__bmc_structure_(\d+)(_list)?__'")


@dataclass
class Field:
    """One used element: repeating or not, and its leaf (a DuckDB type, JSON or a node)."""

    repeating: bool
    leaf: str | StructNode


@dataclass(eq=False)
class StructNode:
    """A JSON object type: the fields used so far, keyed by JSON name.

    ``path`` names the node from the resource root (used to report and to remember elements
    that must be JSON); ``detached`` nodes are rendered separately for ``from_json``.
    """

    path: tuple[str, ...]
    fields: dict[str, Field] = field(default_factory=dict)
    detached: bool = False
    ident: int = field(default_factory=lambda: next(_ids))

    def child_path(self, name: str) -> tuple[str, ...]:
        return (*self.path, name)


class Structure:
    """All nodes of one view's resource structure, plus the JSON/typed conflicts found."""

    def __init__(self, resource_type: str, force_json: frozenset[tuple[str, ...]] = frozenset()):
        self.root = StructNode((resource_type,))
        self.force_json = force_json
        self.conflicts: set[tuple[str, ...]] = set()
        self._detached: dict[int, StructNode] = {}
        self._json_views: dict[tuple[int, str], StructNode] = {}
        # typed primitive elements read from the resource's own structure, by path below the
        # resource (("valueQuantity", "value") -> "decimal"): the loader checks their JSON
        # types and formats, which json_transform would coerce silently (true -> 1.0)
        self.checked: dict[tuple[str, ...], str] = {}

    # -- registration ------------------------------------------------------------------
    def typed_field(self, node: StructNode, name: str, repeating: bool,
                    leaf: str | None, fhir_type: str | None = None) -> tuple[str, StructNode | None]:
        """Record a typed use of ``node.name``.

        ``leaf`` is a DuckDB type for primitives or None for an object (a child node is
        made). Returns (how to read it from the parent, child node or None). The access is
        either ``."name"`` (plain struct field) or a ``from_json`` template with ``{}`` for
        the parent expression when the element is JSON in this view.
        """
        path = node.child_path(name)
        existing = node.fields.get(name)
        if path in self.force_json or (existing is not None and existing.leaf == JSON):
            if existing is None:
                node.fields[name] = Field(False, JSON)
            return self._from_json_access(node, name, repeating, leaf)
        if existing is None:
            node.fields[name] = Field(repeating, StructNode(path) if leaf is None else leaf)
            existing = node.fields[name]
        if leaf is None and not isinstance(existing.leaf, StructNode):
            raise ViewDefinitionError(
                f"element {'.'.join(path)} is used both as a value and as an object")
        if leaf is not None and existing.leaf != leaf:
            raise ViewDefinitionError(
                f"element {'.'.join(path)} is used with two types ({existing.leaf}, {leaf})")
        child = existing.leaf if isinstance(existing.leaf, StructNode) else None
        if fhir_type is not None and leaf is not None and not node.detached:
            self.checked[path[1:]] = fhir_type
        return "{}." + quote_ident(name), child

    def json_field(self, node: StructNode, name: str) -> str:
        """Record that ``node.name`` is read as raw JSON; returns the access template."""
        existing = node.fields.get(name)
        if existing is not None and existing.leaf != JSON:
            self.conflicts.add(node.child_path(name))
        node.fields[name] = Field(False, JSON)
        return "{}." + quote_ident(name)

    def _from_json_access(self, node: StructNode, name: str, repeating: bool,
                          leaf: str | None) -> tuple[str, StructNode | None]:
        src = "{}." + quote_ident(name)
        if leaf is not None:
            shape = json.dumps([leaf] if repeating else leaf)
            return f"from_json({src}, {template_string(shape)})", None
        key = (node.ident, name)
        view = self._json_views.get(key)
        if view is None:
            view = StructNode(node.child_path(name), detached=True)
            self._json_views[key] = view
            self._detached[view.ident] = view
        return f"from_json({src}, {self.placeholder(view, repeating)})", view

    def detached(self, path: tuple[str, ...]) -> StructNode:
        """A node rendered on its own, for ``from_json`` of JSON values (repeat items)."""
        node = StructNode(path, detached=True)
        self._detached[node.ident] = node
        return node

    @staticmethod
    def placeholder(node: StructNode, repeating: bool = False) -> str:
        """A SQL literal standing for ``node``'s rendered structure (see ``finish_sql``)."""
        return f"'__bmc_structure_{node.ident}{'_list' if repeating else ''}__'"

    # -- rendering ---------------------------------------------------------------------
    def render(self, node: StructNode | None = None) -> dict | str:
        """The json_transform structure of ``node`` (default: the resource root)."""
        return _render(node or self.root)

    def finish_sql(self, sql: str) -> str:
        """Replace structure placeholders in ``sql`` by the final structures."""

        def repl(m: re.Match[str]) -> str:
            shape = _render(self._detached[int(m.group(1))])
            return template_string(json.dumps([shape] if m.group(2) else shape))

        return _PLACEHOLDER.sub(repl, sql)


def _render(node: StructNode) -> dict | str:
    if not node.fields:
        # An object of which nothing but its presence is used: DuckDB has no empty STRUCT.
        return JSON
    out: dict[str, object] = {}
    for name, fld in node.fields.items():
        leaf = _render(fld.leaf) if isinstance(fld.leaf, StructNode) else fld.leaf
        out[name] = [leaf] if fld.repeating else leaf
    return out

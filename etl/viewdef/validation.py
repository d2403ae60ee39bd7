"""Shape checks of a ViewDefinition before compilation.

The compiler assumes a well-formed tree (lists where lists belong, strings for paths,
names that are valid column names); this module checks that first so every message says
where the problem is, e.g. ``select[0].forEach: expected a FHIRPath string, got int``.
"""
from __future__ import annotations

import re
from typing import Any

from etl.errors import ViewDefinitionError

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESOURCE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_SELECT_KEYS = {"column", "select", "forEach", "forEachOrNull", "repeat", "unionAll"}
_COLUMN_KEYS = {"name", "path", "type", "collection", "description", "tag"}


def _fail(where: str, message: str) -> ViewDefinitionError:
    return ViewDefinitionError(f"{where}: {message}" if where else message)


def _type(value: Any) -> str:
    return type(value).__name__


def _list(value: Any, where: str, non_empty: bool = True) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, f"expected a list, got {_type(value)}")
    if non_empty and not value:
        raise _fail(where, "must not be empty")
    return value


def _path(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise _fail(where, f"expected a FHIRPath string, got {_type(value)}")
    if not value.strip():
        raise _fail(where, "empty FHIRPath expression")


def _column(col: Any, where: str) -> None:
    if not isinstance(col, dict):
        raise _fail(where, f"expected an object, got {_type(col)}")
    unknown = set(col) - _COLUMN_KEYS
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(sorted(unknown))}")
    name = col.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(f"{where}.name", "a column name must match [A-Za-z][A-Za-z0-9_]*")
    _path(col.get("path"), f"{where}.path")
    if "type" in col and not isinstance(col["type"], str):
        raise _fail(f"{where}.type", f"expected a string, got {_type(col['type'])}")
    if "collection" in col and not isinstance(col["collection"], bool):
        raise _fail(f"{where}.collection", "expected true or false")
    for i, tag in enumerate(_list(col.get("tag", []), f"{where}.tag", non_empty=False)):
        if not isinstance(tag, dict) or not isinstance(tag.get("name"), str) or \
                not isinstance(tag.get("value"), str):
            raise _fail(f"{where}.tag[{i}]", 'a tag is {"name": "...", "value": "..."} '
                                             "(two strings)")


def _select(sel: Any, where: str) -> None:
    if not isinstance(sel, dict):
        raise _fail(where, f"expected an object, got {_type(sel)}")
    unknown = set(sel) - _SELECT_KEYS
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(sorted(unknown))}")
    iterators = [k for k in ("forEach", "forEachOrNull", "repeat") if k in sel]
    if len(iterators) > 1:
        raise _fail(where, f"use only one of {', '.join(iterators)}")
    for key in ("forEach", "forEachOrNull"):
        if key in sel:
            _path(sel[key], f"{where}.{key}")
    if "repeat" in sel:
        for i, p in enumerate(_list(sel["repeat"], f"{where}.repeat")):
            _path(p, f"{where}.repeat[{i}]")
    if not any(k in sel for k in ("column", "select", "unionAll")):
        raise _fail(where, "needs column, select or unionAll")
    for i, col in enumerate(_list(sel.get("column", [None]), f"{where}.column")):
        if "column" in sel:
            _column(col, f"{where}.column[{i}]")
    for key in ("select", "unionAll"):
        if key in sel:
            for i, child in enumerate(_list(sel[key], f"{where}.{key}")):
                _select(child, f"{where}.{key}[{i}]")


def check_shape(view: Any) -> None:
    """Raise ViewDefinitionError if ``view`` is not a well-formed ViewDefinition."""
    if not isinstance(view, dict):
        raise _fail("", f"a ViewDefinition must be a JSON object, got {_type(view)}")
    if not view:
        raise _fail("", "empty ViewDefinition")
    resource = view.get("resource")
    if resource is None:
        raise _fail("resource", "missing (which resource type does the view read?)")
    if not isinstance(resource, str) or not _RESOURCE.match(resource):
        raise _fail("resource", "expected a resource type name such as 'Patient'")
    if "select" not in view:
        raise _fail("select", "missing")
    for i, sel in enumerate(_list(view["select"], "select")):
        _select(sel, f"select[{i}]")
    for i, w in enumerate(_list(view.get("where", []), "where", non_empty=False)):
        if not isinstance(w, dict):
            raise _fail(f"where[{i}]", f"expected an object, got {_type(w)}")
        _path(w.get("path"), f"where[{i}].path")
    for i, c in enumerate(_list(view.get("constant", []), "constant", non_empty=False)):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or \
                not _NAME.match(c["name"]):
            raise _fail(f"constant[{i}].name", "a constant needs a name matching "
                                               "[A-Za-z][A-Za-z0-9_]*")

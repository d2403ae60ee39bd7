"""FHIR R4 element metadata, read from the ``fhir.resources.R4B`` models.

The compiler needs to know, for each element a view touches, whether it repeats, whether it
is a primitive (and which) or a complex type (and which model describes its children), and
which concrete elements a choice element ``value[x]`` stands for. The pydantic models of
``fhir.resources.R4B`` carry exactly that, so the metadata is derived from them instead of
being written down a second time. Models are imported lazily, one resource type at a time
(importing all of them takes seconds), and every answer is cached.

Elements the models do not know (R5-only elements in test fixtures, unknown resource types)
get ``None``; the compiler then falls back to untyped JSON for them.
"""
from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the R4B models are pydantic models; pydantic is imported lazily with them
    from pydantic import BaseModel

# FHIR primitive type -> DuckDB type used when *parsing* the JSON (json_transform) and for
# output columns. Dates and times stay VARCHAR: FHIR allows partial dates ('2019-03') and
# offsets that DATE/TIMESTAMP would lose or reject.
PRIMITIVE_DUCKDB: dict[str, str] = {
    "boolean": "BOOLEAN",
    "integer": "INTEGER",
    "positiveInt": "INTEGER",
    "unsignedInt": "INTEGER",
    "integer64": "BIGINT",
    "decimal": "DOUBLE",
    "string": "VARCHAR",
    "code": "VARCHAR",
    "id": "VARCHAR",
    "uri": "VARCHAR",
    "url": "VARCHAR",
    "canonical": "VARCHAR",
    "oid": "VARCHAR",
    "uuid": "VARCHAR",
    "markdown": "VARCHAR",
    "base64Binary": "VARCHAR",
    "xhtml": "VARCHAR",
    "date": "VARCHAR",
    "dateTime": "VARCHAR",
    "instant": "VARCHAR",
    "time": "VARCHAR",
}

# FHIRPath system types (and their FHIR spellings) to the FHIR primitive they match.
SYSTEM_TYPES: dict[str, str] = {
    "System.String": "string", "System.Boolean": "boolean", "System.Integer": "integer",
    "System.Decimal": "decimal", "System.Date": "date", "System.DateTime": "dateTime",
    "System.Time": "time",
}


def duckdb_type_of_primitive(fhir_type: str) -> str | None:
    """The DuckDB type for a FHIR primitive type name, or None if it is not a primitive."""
    return PRIMITIVE_DUCKDB.get(fhir_type)


@dataclass(frozen=True)
class ElementInfo:
    """One element of a FHIR type.

    ``kind`` is ``primitive`` (``type_name`` is the FHIR primitive), ``complex`` (``model`` is
    the model class describing its children; ``type_name`` the FHIR type, e.g. ``HumanName``
    or a backbone element's class name such as ``PatientContact``), ``resource`` (a contained
    resource of any type) or ``choice`` (``choices`` maps each allowed type to its JSON name,
    e.g. ``Quantity -> valueQuantity``).
    """

    name: str
    repeating: bool
    kind: str
    type_name: str
    model: type[BaseModel] | None = None
    choices: tuple[tuple[str, str], ...] = ()


def _unwrap(annotation: object) -> tuple[object, bool]:
    """Strip Optional/Union-with-None and List; return (item annotation, repeating)."""
    repeating = False
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0]
        elif origin in (list, typing.List):  # noqa: UP006 - the models use typing.List
            repeating = True
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation, repeating


def _classify(annotation: object) -> tuple[str, str, type | None] | None:
    """(kind, type_name, model) for one item annotation of a model field."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        for m in meta:
            name = type(m).__name__
            fhir = name[0].lower() + name[1:]
            if fhir in PRIMITIVE_DUCKDB:
                return "primitive", fhir, None
        annotation = base
    if annotation is bool:
        return "primitive", "boolean", None
    get_klass = getattr(annotation, "get_model_klass", None)
    if get_klass is not None:
        model = get_klass()
        type_name = getattr(model, "__resource_type__", model.__name__)
        if type_name == "Resource":
            return "resource", "Resource", model
        return "complex", type_name, model
    return None


@cache
def _elements(model: type[BaseModel]) -> dict[str, ElementInfo]:
    """Every element of ``model`` by JSON name, choice elements under their base name too."""
    out: dict[str, ElementInfo] = {}
    choices: dict[str, list[tuple[str, str]]] = {}
    for field in model.model_fields.values():
        extra = field.json_schema_extra or {}
        if not isinstance(extra, dict) or not extra.get("element_property"):
            continue
        item, repeating = _unwrap(field.annotation)
        classified = _classify(item)
        if classified is None:
            continue
        kind, type_name, item_model = classified
        name = field.alias or ""
        out[name] = ElementInfo(name, repeating, kind, type_name, item_model)
        base = extra.get("one_of_many")
        if isinstance(base, str) and name.startswith(base):
            choices.setdefault(base, []).append((name[len(base):], name))
    for base, options in choices.items():
        out[base] = ElementInfo(base, False, "choice", base, None, tuple(options))
    return out


def element(model: type[BaseModel] | None, name: str) -> ElementInfo | None:
    """The element ``name`` of ``model`` (a model class), or None when unknown."""
    if model is None:
        return None
    return _elements(model).get(name)


def choice_field(info: ElementInfo, type_name: str) -> str | None:
    """The JSON name of choice ``info`` for ``type_name`` (``Quantity``, ``string``, ...)."""
    wanted = type_name[0].upper() + type_name[1:]
    for suffix, field in info.choices:
        if suffix == wanted:
            return field
    return None


@cache
def resource_model(resource_type: str) -> type[BaseModel] | None:
    """The R4B model class for a resource or data type name; None when R4B has no such type."""
    if not resource_type or not resource_type[0].isupper() or not resource_type.isalnum():
        return None
    from fhir.resources.R4B import get_fhir_model_class  # lazy: importing models is slow

    try:
        return get_fhir_model_class(resource_type)
    except (ValueError, ImportError, AttributeError):
        return None


def is_resource_type(name: str) -> bool:
    """True when ``name`` is an R4 resource type (not a data type)."""
    model = resource_model(name)
    if model is None:
        return False
    from fhir.resources.R4B.resource import Resource

    return issubclass(model, Resource)


def type_matches(model: type[BaseModel] | None, type_name: str) -> bool:
    """True when a complex value described by ``model`` is of FHIR type ``type_name``."""
    if model is None:
        return False
    wanted = resource_model(type_name)
    if wanted is None:
        return getattr(model, "__resource_type__", None) == type_name
    return issubclass(model, wanted)

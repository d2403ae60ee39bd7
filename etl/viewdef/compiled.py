"""What compiling a ViewDefinition produces: plain frozen records, no compiler logic.

A module of their own so the disk cache (:mod:`.cache`) can rebuild them without importing
the compiler that uses the cache.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ViewColumn:
    """One output column; ``is_reference_key`` marks paths ending in getReferenceKey();
    ``tags`` are the column's SQL-on-FHIR ``tag`` entries (``required``: the loader rejects a
    resource for which this column is NULL)."""

    name: str
    duckdb_type: str
    fhir_type: str | None
    description: str | None
    collection: bool
    path: str
    is_reference_key: bool
    reference_types: tuple[str, ...]
    tags: tuple[tuple[str, str], ...] = ()  # the column's tag[] (name, value), e.g. required


@dataclass(frozen=True)
class CompiledView:
    """A compiled view: its columns, the resource structure and the SELECT over ``{source}``."""

    name: str | None
    resource: str
    columns: tuple[ViewColumn, ...]
    structure: dict
    sql: str
    # typed primitive elements the structure reads (dotted path below the resource, FHIR
    # type), e.g. ("valueQuantity.value", "decimal"): what the loader's value checks cover
    checks: tuple[tuple[str, str], ...] = ()

    def render(self, source: str) -> str:
        """The SQL with ``{source}`` replaced by ``source`` (a relation name or subquery)."""
        return self.sql.replace("{source}", source)

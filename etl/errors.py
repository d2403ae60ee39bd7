"""The ETL's exceptions: one root, each carrying *where* the problem is.

Messages name the file, line (or bundle entry), resource type and id -- never resource
content, names or identifier values, so they are safe to log.
"""
from __future__ import annotations

from dataclasses import dataclass


class EtlError(Exception):
    """Root of every error the ETL raises on purpose."""


@dataclass(frozen=True)
class Location:
    """Where a record came from: file, 1-based line or bundle entry path, type and id."""

    file: str
    line: int | None = None
    entry: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None

    def __str__(self) -> str:
        """``Observation/abc in exports/Observation.000.ndjson line 1203`` (STYLE.md)."""
        where = self.file
        if self.line is not None:
            where += f" line {self.line}"
        if self.entry:
            where += f" {self.entry}"
        if self.resource_type:
            what = f"{self.resource_type}/{self.resource_id}" if self.resource_id else self.resource_type
            return f"{what} in {where}"
        return where


class InputError(EtlError):
    """A record that cannot be loaded (bad JSON, no resourceType, ...)."""

    def __init__(self, location: Location, reason: str):
        self.location = location
        self.reason = reason
        super().__init__(f"{location}: {reason}")


class SourceError(EtlError):
    """An input path that cannot be read at all (missing, unreadable, not FHIR)."""


class ViewDefinitionError(EtlError):
    """A ViewDefinition that is invalid or uses something the compiler does not support."""


class LoadAborted(EtlError):
    """The load was rolled back; the database is as it was before."""

"""The ETL's exceptions: one root, each carrying *where* the problem is.

Messages name the file, line (or bundle entry), resource type and id -- never resource
content, names or identifier values, so they are safe to log.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources as importlib_resources

#: FHIR's id datatype (R4 2.24.0.1): what an id must look like before we print or store it.
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
#: Control characters (C0, DEL, C1) and the Unicode line/paragraph separators and bidi
#: controls a terminal would act on instead of print.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ID_NOT_VALID = "id not valid"
UNKNOWN_TYPE = "unknown resourceType"


@cache
def fhir_resource_types() -> frozenset[str]:
    """Every FHIR R4 resource type name (data file etl/data/resource_types.txt)."""
    text = importlib_resources.files("etl").joinpath("data/resource_types.txt").read_text()
    return frozenset(ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#"))


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``, ``\\n``): a file name or message
    can then never move the cursor, colour the terminal or start a new log line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def known_type(resource_type: object) -> str | None:
    """The resource type when it is a FHIR type, else None: any other text came from the data."""
    return resource_type if isinstance(resource_type, str) and resource_type in \
        fhir_resource_types() else None


def valid_id(resource_id: object) -> str | None:
    """The id when it matches FHIR's id pattern, else None (it may carry an MRN, a name, a
    newline or an escape sequence: nothing else from the data is printed or stored)."""
    return resource_id if isinstance(resource_id, str) and FHIR_ID.fullmatch(resource_id) \
        else None


class EtlError(Exception):
    """Root of every error the ETL raises on purpose."""


@dataclass(frozen=True)
class Location:
    """Where a record came from: file, 1-based line or bundle entry path, type and id.

    Every message and every ``load_error`` row passes through here, so the fields are made
    safe on construction: the type is kept only when it is a FHIR resource type, the id only
    when it matches FHIR's id pattern (``id_not_valid`` says one was given but not kept), the
    file name and entry path have their control characters escaped.
    """

    file: str
    line: int | None = None
    entry: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    id_not_valid: bool = False

    def __post_init__(self) -> None:
        rtype = known_type(self.resource_type)
        rid = valid_id(self.resource_id) if rtype else None
        bad_id = self.id_not_valid or (rtype is not None and self.resource_id not in (None, "")
                                       and rid is None)
        object.__setattr__(self, "file", printable(str(self.file)))
        object.__setattr__(self, "entry", printable(self.entry) if self.entry else self.entry)
        object.__setattr__(self, "resource_type", rtype)
        object.__setattr__(self, "resource_id", rid)
        object.__setattr__(self, "id_not_valid", bad_id)

    def __str__(self) -> str:
        """``Observation/abc in exports/Observation.000.ndjson line 1203`` (STYLE.md);
        ``Observation (id not valid) in ...`` when the id does not look like a FHIR id."""
        where = self.file
        if self.line is not None:
            where += f" line {self.line}"
        if self.entry:
            where += f" {self.entry}"
        if self.resource_type:
            what = (f"{self.resource_type}/{self.resource_id}" if self.resource_id else
                    f"{self.resource_type} ({ID_NOT_VALID})" if self.id_not_valid else
                    self.resource_type)
            return f"{what} in {where}"
        return where


class InputError(EtlError):
    """A record that cannot be loaded (bad JSON, no resourceType, ...)."""

    def __init__(self, location: Location, reason: str):
        self.location = location
        self.reason = printable(reason)
        super().__init__(f"{location}: {self.reason}")


class SourceError(EtlError):
    """An input path that cannot be read at all (missing, unreadable, not FHIR)."""


class ViewDefinitionError(EtlError):
    """A ViewDefinition that is invalid or uses something the compiler does not support."""


class LoadAborted(EtlError):
    """The load was rolled back; the database is as it was before."""


def is_interruption(error: BaseException | None) -> bool:
    """True when ``error`` -- or an error it happened while handling -- is Ctrl-C.

    DuckDB turns a SIGINT during a query into ``RuntimeError('Query interrupted')`` (or
    ``duckdb.InterruptException``), and clean-up code that runs next on the aborted
    transaction raises an error of its own, which hides the interruption unless the chain
    is followed."""
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, KeyboardInterrupt) or type(error).__name__ == "InterruptException":
            return True
        if isinstance(error, RuntimeError) and str(error).strip() == "Query interrupted":
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False

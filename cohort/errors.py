"""The cohort package's exceptions: one root, each saying what to do next.

Messages name files, tables and parameters -- never patient data. The CLI turns
:class:`UsageError` into exit code 2 and every other :class:`CohortError` into exit code 1.
"""
from __future__ import annotations


class CohortError(Exception):
    """Root of every error the cohort package raises on purpose."""


class UsageError(CohortError):
    """The caller asked for something that does not exist (unknown parameter, bad value,
    missing input file): exit code 2."""


class DatabaseError(CohortError):
    """The database is missing, unreadable, or has no loaded FHIR tables: exit code 1."""


class ReferenceDataError(CohortError):
    """A reference CSV in ``queries/reference/`` is malformed (bad header, duplicate key,
    a number that is not a number): exit code 1. Names the file and line."""


class QueryError(CohortError):
    """A stage in ``queries/bmc/`` failed; names the file and the table it was building."""

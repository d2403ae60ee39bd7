"""DuckDB macros that compiled views call: reference keys.

``bmc_reference_key(ref, typ)`` normalises a ``Reference.reference`` string to the key
``Type/id`` that ``getResourceKey()`` produces for the target, from the string alone:

- relative ``Patient/123`` and absolute ``https://host/fhir/Patient/123`` -> ``Patient/123``
- versioned ``Patient/123/_history/4`` -> ``Patient/123``
- ``typ`` given and the type differs -> NULL (FHIRPath ``getReferenceKey(Observation)``)
- ``urn:uuid:...``, ``urn:oid:...`` and ``#contained`` references cannot be resolved without
  the bundle or the containing resource, so they are returned unchanged (also when ``typ``
  is given; the loader checks the type after resolving them); conditional references
  ``Type?identifier=...`` are returned unchanged too, or NULL when their type differs from
  ``typ``.

The loader finds the columns holding such keys via ``ViewColumn.is_reference_key`` and
rewrites the unresolved ones through its fullUrl/identifier index.
"""
from __future__ import annotations

import duckdb

# A literal reference: optional base URL, Type/id, optional _history version.
REFERENCE_PATTERN = r"^(?:.*/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})(?:/_history/[^/]+)?$"
CONDITIONAL_TYPE = r"(?:^|/)([A-Z][A-Za-z]+)\?"

# The common case, a plain relative ``Type/id``, is recognised with one cheap full match and
# returned as it is (it is already the key); only other forms pay for the extraction.
PLAIN_PATTERN = r"[A-Z][A-Za-z]+/[A-Za-z0-9\-\.]{1,64}"

_MACROS = (
    """
CREATE OR REPLACE MACRO bmc_literal_key(parts, ref, typ) AS (
  CASE
    WHEN parts.type = '' THEN ref
    WHEN typ IS NULL OR parts.type = typ THEN parts.type || '/' || parts.id
  END
)
""",
    f"""
CREATE OR REPLACE MACRO bmc_reference_key(ref, typ) AS (
  CASE
    WHEN ref IS NULL OR ref = '' THEN NULL
    WHEN regexp_full_match(ref, '{PLAIN_PATTERN}') THEN
      CASE WHEN typ IS NULL OR split_part(ref, '/', 1) = typ THEN ref END
    WHEN starts_with(ref, '#') OR starts_with(ref, 'urn:') THEN ref
    WHEN contains(ref, '?') THEN
      CASE WHEN typ IS NULL OR regexp_extract(ref, '{CONDITIONAL_TYPE}', 1) = typ THEN ref END
    ELSE bmc_literal_key(regexp_extract(ref, '{REFERENCE_PATTERN}', ['type', 'id']), ref, typ)
  END
)
""",
)


# FHIR date, dateTime and instant strings may be partial ('2019', '2019-03'). fhir_date_lo is
# the first day such a string denotes, fhir_date_hi the last; a dateTime is its calendar day
# as written (the first 10 characters: the clinician's local date, never shifted to UTC).
# Anything else is NULL. Temporary macros, so read-only connections can have them too.
DATE_MACROS = (
    """
CREATE OR REPLACE TEMP MACRO fhir_date_lo(t) AS (
  CASE WHEN regexp_full_match(t, '[0-9]{4}') THEN try_cast(t || '-01-01' AS DATE)
       WHEN regexp_full_match(t, '[0-9]{4}-[0-9]{2}') THEN try_cast(t || '-01' AS DATE)
       ELSE try_cast(left(t, 10) AS DATE) END
)
""",
    """
CREATE OR REPLACE TEMP MACRO fhir_date_hi(t) AS (
  CASE WHEN regexp_full_match(t, '[0-9]{4}') THEN try_cast(t || '-12-31' AS DATE)
       WHEN regexp_full_match(t, '[0-9]{4}-[0-9]{2}')
            THEN CAST(last_day(try_cast(t || '-01' AS DATE)) AS DATE)
       ELSE try_cast(left(t, 10) AS DATE) END
)
""",
)


def install_date_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create fhir_date_lo / fhir_date_hi on ``con`` (temporary; idempotent)."""
    for statement in DATE_MACROS:
        con.execute(statement)


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create (or replace) the macros compiled views need on ``con``; idempotent."""
    for statement in _MACROS:
        con.execute(statement)

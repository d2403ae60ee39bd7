-- Value checks: is a JSON value what its FHIR primitive type says it is? Each macro takes the
-- value as JSON (NULL when absent) and returns why it is not (a reason naming the rule, never
-- the value), or NULL when it is fine. json_transform would coerce such values silently
-- (true -> 1.0, "7.5" -> 7.5, 1e400 -> inf); the loader stores NULL instead and records the
-- reason in load_issue. Used by etl/findings.py; every statement is idempotent.

-- decimal: a JSON number, finite (1e400, NaN and Infinity are not FHIR decimals).
CREATE OR REPLACE TEMP MACRO bmc_decimal_problem(j) AS (
  CASE
    WHEN j IS NULL THEN NULL
    WHEN json_type(j) NOT IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN 'decimal that is not a JSON number'
    WHEN NOT isfinite(CAST(j AS DOUBLE)) THEN 'decimal out of range (not a finite number)'
  END
);

-- integer, positiveInt, unsignedInt: a JSON number without a fraction, in 32-bit range.
CREATE OR REPLACE TEMP MACRO bmc_integer_problem(j, lowest) AS (
  CASE
    WHEN j IS NULL THEN NULL
    WHEN json_type(j) NOT IN ('BIGINT', 'UBIGINT') THEN 'integer that is not a JSON integer'
    WHEN try_cast(CAST(j AS VARCHAR) AS INTEGER) IS NULL THEN 'integer out of range'
    WHEN CAST(CAST(j AS VARCHAR) AS INTEGER) < lowest THEN 'integer below its type''s minimum'
  END
);

-- integer64: a JSON number without a fraction (FHIR R5 also allows a string), in 64-bit range.
CREATE OR REPLACE TEMP MACRO bmc_integer64_problem(j) AS (
  CASE
    WHEN j IS NULL THEN NULL
    WHEN json_type(j) NOT IN ('BIGINT', 'UBIGINT', 'VARCHAR') THEN 'integer that is not a JSON integer'
    WHEN try_cast(j ->> '$' AS BIGINT) IS NULL THEN 'integer out of range'
  END
);

-- boolean: JSON true or false (not "true", not 1).
CREATE OR REPLACE TEMP MACRO bmc_boolean_problem(j) AS (
  CASE
    WHEN j IS NULL THEN NULL
    WHEN json_type(j) <> 'BOOLEAN' THEN 'boolean that is not JSON true or false'
  END
);

-- date, dateTime, instant: a JSON string in FHIR's format (partial dates allowed where the
-- type allows them; a dateTime's time zone is optional here, as many exports omit it) that
-- names a real calendar day (2019-02-30 does not; 20190301 is not the format).
CREATE OR REPLACE TEMP MACRO bmc_temporal_problem(j, pattern, what) AS (
  CASE
    WHEN j IS NULL THEN NULL
    WHEN json_type(j) <> 'VARCHAR' THEN what || ' that is not a JSON string'
    WHEN NOT regexp_full_match(j ->> '$', pattern) THEN 'not a valid FHIR ' || what
    WHEN length(j ->> '$') >= 10 AND try_cast(left(j ->> '$', 10) AS DATE) IS NULL
      THEN what || ' that is not a calendar date'
  END
);

-- The FHIR R4 formats (the regexes of the specification; dateTime's zone made optional).
CREATE OR REPLACE TEMP MACRO bmc_date_problem(j) AS (
  bmc_temporal_problem(j, '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?', 'date')
);

CREATE OR REPLACE TEMP MACRO bmc_datetime_problem(j) AS (
  bmc_temporal_problem(j, '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))?)?)?)?', 'dateTime')
);

CREATE OR REPLACE TEMP MACRO bmc_instant_problem(j) AS (
  bmc_temporal_problem(j, '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))', 'instant')
);

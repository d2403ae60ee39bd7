"""The DuckDB -> Spark rules of etl/spark/dialect.py: the text each rule writes, and (with Spark)
that DuckDB and Spark then give the same value for the cases where the engines differ."""
from __future__ import annotations

import datetime as dt

import duckdb
import pytest

pytest.importorskip("sqlglot", reason="sqlglot is not installed (pip install -e '.[spark]')")

from etl.spark.dialect import DialectError, to_spark

# (DuckDB text, the Spark text it becomes) -- one line per rule
TEXT_CASES = [
    ("SELECT x[2] FROM t", "SELECT TRY_ELEMENT_AT(x, 2) FROM t"),
    ("SELECT x[i] FROM t", "SELECT TRY_ELEMENT_AT(x, i) FROM t"),
    ("SELECT x[-1] FROM t", "SELECT TRY_ELEMENT_AT(x, -1) FROM t"),
    ("SELECT len(x), length(s) FROM t", "SELECT SIZE(x), LENGTH(s) FROM t"),
    ("SELECT date_diff('day', a, b) FROM t",
     "SELECT DATEDIFF(CAST(b AS DATE), CAST(a AS DATE)) FROM t"),
    ("SELECT date_diff('year', a, b) FROM t",
     "SELECT TIMESTAMPDIFF(YEAR, DATE_TRUNC('year', a), DATE_TRUNC('year', b)) FROM t"),
    ("SELECT date_sub('day', a, b) FROM t", "SELECT TIMESTAMPDIFF(DAY, a, b) FROM t"),
    ("SELECT a / b FROM t", "SELECT CASE WHEN b = 0 THEN CAST(a AS DOUBLE) * "
     "CAST('Infinity' AS DOUBLE) ELSE TRY_DIVIDE(a, b) END FROM t"),
    ("SELECT string_agg(DISTINCT a, ', ') FROM t",
     "SELECT ARRAY_JOIN(ARRAY_SORT(COLLECT_SET(a)), ', ') FROM t"),
    ("SELECT string_agg(DISTINCT a, ', ' ORDER BY a) FROM t",
     "SELECT ARRAY_JOIN(ARRAY_SORT(COLLECT_SET(a)), ', ') FROM t"),
    ("SELECT list_contains($statuses, s) FROM t", "SELECT ARRAY_CONTAINS(:statuses, s) FROM t"),
    # the compiled ViewDefinitions (etl/spark/views.py)
    ("SELECT flatten(x) FROM t", "SELECT FLATTEN(FILTER(x, _l -> NOT _l IS NULL)) FROM t"),
    ("SELECT list_concat(a, b) FROM t",
     "SELECT CONCAT(COALESCE(a, ARRAY()), COALESCE(b, ARRAY())) FROM t"),
    ("SELECT regexp_full_match(s, 'a.c') FROM t", "SELECT s RLIKE '^(?:a.c)$' FROM t"),
    ("SELECT list_transform(list_filter(x, lambda v: v > 1), lambda v: v + 1) FROM t",
     "SELECT TRANSFORM(FILTER(x, v -> v > 1), v -> v + 1) FROM t"),
    ("SELECT *, unnest(x) AS it FROM t", "SELECT *, EXPLODE(x) AS it FROM t"),
    ("SELECT struct_pack(a := 1, b := s) FROM t", "SELECT STRUCT(1 AS a, s AS b) FROM t"),
    ("SELECT json_extract_string(j, '$.a') FROM t", "SELECT GET_JSON_OBJECT(j, '$.a') FROM t"),
    ("SELECT *, unnest(x) AS it, unnest(range(1, coalesce(len(x), 0) + 1)) AS ix FROM t",
     "SELECT *, ix__0 + 1 AS ix FROM ( SELECT *, POSEXPLODE(x) AS (ix__0, it) FROM t )"),
    # a forEach inside a forEach: both levels become one generator each
    ("SELECT * FROM (SELECT *, unnest(c.y) AS it2, unnest(range(1, len(c.y) + 1)) AS ix2 "
     "FROM (SELECT *, unnest(x) AS c, unnest(range(1, len(x) + 1)) AS ix1 FROM t))",
     "SELECT * FROM ( SELECT *, ix2__0 + 1 AS ix2 FROM ( SELECT *, POSEXPLODE(c.y) AS "
     "(ix2__0, it2) FROM ( SELECT *, ix1__0 + 1 AS ix1 FROM ( SELECT *, POSEXPLODE(x) AS "
     "(ix1__0, c) FROM t ) ) ) )"),
    # a partial FHIR date must not become a precise one (the outcome queries)
    ("SELECT try_cast(s AS DATE) FROM t",
     "SELECT CASE WHEN CAST(s AS STRING) RLIKE "
     "'^ *[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}( *$|[ T] *[0-9]{1,2}:[0-9]{2})' "
     "THEN TRY_CAST(s AS DATE) END FROM t"),
]


@pytest.mark.parametrize(("duck", "spark"), TEXT_CASES)
def test_rule_text(duck, spark):
    assert " ".join(to_spark(duck).split()) == spark


def test_two_generators_left_in_one_select_are_an_error():
    import sqlglot

    from etl.spark.dialect import _lint_generators

    with pytest.raises(DialectError, match="2 generators left in one SELECT"):
        _lint_generators(sqlglot.parse_one("SELECT explode(a) AS x, explode(b) AS y FROM t",
                                           read="spark"))


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT date_diff(p, a, b) FROM t", "date_diff at line 1"),
    ("SELECT date_diff('millennium', a, b) FROM t", "part 'millennium' has no Spark"),
    ("SELECT x[1:2] FROM t", "list slice at line 1"),
    ("SELECT *, unnest(x) AS a, unnest(y) AS b FROM t", "one generator per SELECT"),
    ("SELECT regexp_full_match(s, p) FROM t", "pattern must be a string literal"),
    ("SELECT json_extract(j, '$.a') FROM t", "json_extract at line 1"),
    ("SELECT json_extract(j, '$[*]') FROM t", "json_extract at line 1"),
    ("SELECT j -> '$.a' FROM t", "json_extract at line 1"),
    ("SELECT json_type(j) FROM t", "json_type at line 1"),
    ("SELECT json_transform(j, '{\"a\": \"VARCHAR\"}') FROM t", "json_transform at line 1"),
])
def test_untranslatable_is_an_error_with_position(sql, message):
    with pytest.raises(DialectError, match=message):
        to_spark(sql)


# The measured differences: each expression gives the DuckDB value on Spark after the rules.
TS = dt.datetime
VALUE_CASES = [
    ("list index out of range", "SELECT [1, 2, 3][5] AS v"),
    ("negative index", "SELECT [1, 2, 3][-1] AS v"),
    ("len of a list", "SELECT len([1, 2, 3]) AS v"),
    ("calendar days between timestamps",
     "SELECT date_diff('day', TIMESTAMP '2020-01-01 23:00:00', TIMESTAMP '2020-01-02 01:00:00') AS v"),
    ("days between dates", "SELECT date_diff('day', DATE '2020-02-27', DATE '2020-03-01') AS v"),
    ("age in calendar years",
     "SELECT date_diff('year', DATE '1950-12-31', DATE '2020-01-01') AS v"),
    ("months", "SELECT date_diff('month', DATE '2020-01-31', DATE '2020-02-01') AS v"),
    ("hours", "SELECT date_diff('hour', TIMESTAMP '2020-01-01 01:59:00', "
              "TIMESTAMP '2020-01-01 02:01:00') AS v"),
    ("whole days elapsed (date_sub)",
     "SELECT date_sub('day', TIMESTAMP '2020-01-01 23:00:00', TIMESTAMP '2020-01-03 01:00:00') AS v"),
    ("whole years elapsed (date_sub)",
     "SELECT date_sub('year', DATE '1950-12-31', DATE '2020-01-01') AS v"),
    ("division by zero", "SELECT 1 / 0 AS v"),
    ("negative division by zero", "SELECT -2.5 / 0 AS v"),
    ("division of NULL by zero", "SELECT NULL / 0 AS v"),
    ("plain division", "SELECT 7 / 2 AS v"),
    ("distinct string_agg",
     "SELECT string_agg(DISTINCT x, ', ' ORDER BY x) AS v FROM (VALUES ('b'), ('a'), ('b')) t(x)"),
    ("partial date", "SELECT TRY_CAST('2019-02-30' AS DATE) AS v"),
    ("flatten skips NULL inner lists", "SELECT flatten([[1], NULL, [2]]) AS v"),
    ("list_concat with a NULL list", "SELECT list_concat(NULL::INTEGER[], [1]) AS v"),
    ("list_concat of two NULL lists",
     "SELECT list_concat(NULL::INTEGER[], NULL::INTEGER[]) AS v"),
    ("regexp_full_match is a full match", "SELECT regexp_full_match('xabc', 'a.c') AS v"),
    ("regexp_full_match", "SELECT regexp_full_match('abc', 'a.c') AS v"),
    ("struct_pack", "SELECT (struct_pack(a := 1, b := 'x')).b AS v"),
    ("item and position pairs",
     "SELECT list(ix ORDER BY ix) AS v FROM (SELECT *, unnest(x) AS it, "
     "unnest(range(1, coalesce(len(x), 0) + 1)) AS ix FROM (SELECT ['a', 'b', 'c'] AS x))"),
    ("no pairs for a NULL list",
     "SELECT count(*) AS v FROM (SELECT *, unnest(x) AS it, "
     "unnest(range(1, coalesce(len(x), 0) + 1)) AS ix FROM (SELECT NULL::VARCHAR[] AS x))"),
]

# bmc_reference_key (etl/viewdef/macros.py) over every form of reference it distinguishes
REFERENCES = [
    ("Patient/1", "'Patient'"), ("Patient/1", "'Encounter'"), ("Patient/1", "NULL"),
    ("https://h/fhir/Patient/a-1.2/_history/3", "'Patient'"),
    ("https://h/fhir/Patient/a-1.2", "'Encounter'"), ("urn:uuid:1234", "'Patient'"),
    ("#med1", "NULL"), ("Patient?identifier=x|1", "'Patient'"),
    ("Patient?identifier=x|1", "'Encounter'"), ("not a reference", "NULL"), ("", "NULL"),
]


@pytest.mark.parametrize(("ref", "typ"), REFERENCES)
def test_reference_key_macro_on_spark(spark, ref, typ):
    from etl.viewdef.macros import install_macros

    con = duckdb.connect()
    install_macros(con)
    sql = f"SELECT bmc_reference_key('{ref}', {typ}) AS v"
    expected = con.execute(sql).fetchone()[0]
    assert spark.sql(to_spark(sql)).collect()[0][0] == expected


@pytest.mark.parametrize(("what", "sql"), VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_rule_gives_duckdb_value_on_spark(spark, what, sql):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    expected = con.execute(sql).fetchone()[0]
    got = spark.sql(to_spark(sql)).collect()[0][0]
    assert got == expected, f"{what}: DuckDB {expected!r}, Spark {got!r}"


# -- the outcome queries (queries/outcomes/): partial FHIR dates ---------------------------------

@pytest.mark.parametrize("macro", ["fhir_date_lo", "fhir_date_hi"])
def test_date_macros_are_inlined_from_their_duckdb_definition(macro):
    """The macro's own body (etl/viewdef/macros.py) with ``t`` replaced by the argument: no
    call is left, the argument appears where ``t`` did, and the partial forms are told apart
    with full-match patterns."""
    text = " ".join(to_spark(f"SELECT {macro}(coalesce(a, b)) AS d FROM t").split())
    text = text.replace("( ", "(").replace(" )", ")")
    assert macro.upper() not in text.upper()
    assert "(COALESCE(a, b)) RLIKE '^(?:[0-9]{4})$'" in text
    assert "(COALESCE(a, b)) RLIKE '^(?:[0-9]{4}-[0-9]{2})$'" in text
    assert "LEFT((COALESCE(a, b)), 10)" in text
    assert ("LAST_DAY(" in text) == (macro == "fhir_date_hi")


def test_date_macro_with_two_arguments_is_an_error():
    with pytest.raises(DialectError, match=r"fhir_date_lo at line 1.*one argument"):
        to_spark("SELECT fhir_date_lo(a, b) FROM t")


# Partial FHIR dates and dateTimes, and what is not a date: both engines give the same day.
PARTIAL_DATES = [
    "2019", "2019-03", "2019-02", "2020-02", "2019-12", "2019-03-05", "2020-02-29",
    "2019-03-05T10:00:00+02:00", "2019-03-05T23:30:00-05:00", "2019-03-05T00:30:00Z",
    "2019-03-05T10:00:00.123+14:00", "2019-03-05 10:00:00", None,
    "garbage", "", "abcd", "19", "20190305", "2019-13", "2019-00", "2019-02-30", "2019-03-00",
    "2019-3-5", " 2019", "2019 ", "2019-03-05T", "2019-03-05x", "+2019-03-05", "abcd-ef",
]


def _values(texts) -> str:
    return ", ".join("(NULL)" if v is None else f"('{v}')" for v in texts)


@pytest.mark.parametrize("expression", ["fhir_date_lo(t)", "fhir_date_hi(t)",
                                        "try_cast(t AS DATE)"])
def test_partial_dates_give_the_same_day_on_spark(spark, expression):
    from etl.viewdef.macros import install_date_macros

    sql = (f"SELECT t, {expression} AS d FROM (VALUES {_values(PARTIAL_DATES)}) v(t) "
           f"ORDER BY t NULLS FIRST")
    con = duckdb.connect()
    install_date_macros(con)
    expected = [tuple(r) for r in con.execute(sql).fetchall()]
    got = [tuple(r) for r in spark.sql(to_spark(sql)).collect()]
    differ = [(e, g) for e, g in zip(expected, got, strict=True) if e != g]
    assert not differ, f"{expression}: (DuckDB, Spark) differ for {differ}"
    assert expected[1:4] == [("", None), (" 2019", None), ("+2019-03-05", None)]


@pytest.mark.parametrize(("what", "sql"), [
    ("a timestamp's day", "SELECT TRY_CAST(TIMESTAMP '2019-03-05 23:30:00' AS DATE) AS v"),
    ("a date", "SELECT TRY_CAST(DATE '2019-03-05' AS DATE) AS v"),
    ("a year alone is not a date", "SELECT TRY_CAST('2019' AS DATE) AS v"),
])
def test_try_cast_date_on_spark(spark, what, sql):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    expected = con.execute(sql).fetchone()[0]
    assert spark.sql(to_spark(sql)).collect()[0][0] == expected, what

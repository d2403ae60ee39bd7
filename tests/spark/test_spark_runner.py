"""How a stage's SQL is cut into parts on Spark (no JVM needed: this is text)."""
from __future__ import annotations

import sqlglot

from cohort.spark_runner import materialised_parts


def _tables(sql: str) -> list[str]:
    return sorted(t.name for t in sqlglot.parse_one(sql, read="spark").find_all(
        sqlglot.exp.Table))


def test_a_cte_read_twice_is_computed_once_before_the_query():
    sql = ("WITH j AS (SELECT a FROM t), once AS (SELECT a FROM j) "
           "SELECT x.a FROM j AS x JOIN once ON once.a = x.a")
    parts = materialised_parts(sql, "__s")
    assert [name for name, _ in parts] == ["__s_j", None]
    assert _tables(parts[0][1]) == ["t"]
    # the query reads the materialised view under the CTE's alias; `once` stays a CTE
    assert _tables(parts[1][1]) == ["__s_j", "__s_j", "once"]
    assert "AS x" in parts[1][1] and "WITH once AS" in parts[1][1]


def test_an_unaliased_reference_keeps_the_cte_name_as_alias():
    sql = "WITH j AS (SELECT a FROM t) SELECT j.a FROM j UNION ALL SELECT j.a FROM j"
    _, (_, main) = materialised_parts(sql, "__s")
    assert main.count("__s_j AS j") == 2


def test_a_cte_read_once_is_left_inline():
    sql = "WITH j AS (SELECT a FROM t) SELECT a FROM j"
    assert materialised_parts(sql, "__s") == [(None, sql)]


def test_a_materialised_cte_carries_the_ctes_it_reads():
    sql = ("WITH base AS (SELECT a FROM t), j AS (SELECT a FROM base) "
           "SELECT * FROM j AS p JOIN j AS q ON p.a = q.a")
    (name, part), _ = materialised_parts(sql, "__s")
    assert name == "__s_j" and part.startswith("WITH base AS")

"""Where the tables live: a DuckDB connection, or a Spark session over a Parquet lake.

Everything that only *reads* the cohort's tables (evidence, check, the outcome analyses) asks
an :class:`Engine` for a DataFrame with SQL written once, in DuckDB's dialect with ``$name``
parameters. On DuckDB the text runs as is; on Spark it is transpiled by
:mod:`etl.spark.dialect` and the values are bound by Spark (never written into the SQL). Building
tables stays engine-specific (:mod:`cohort.runner`, :mod:`cohort.spark_runner`).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

import duckdb
import pandas as pd

from .errors import QueryError

#: A bound parameter in the SQL of ``queries/`` (``$name``), on every engine.
PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def used_parameters(sql: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The values of the ``$name`` parameters ``sql`` uses (lists as lists); a parameter the
    SQL uses but ``params`` lacks raises :class:`QueryError` naming it."""
    names = dict.fromkeys(PARAMETER.findall(sql))
    params = params or {}
    missing = [n for n in names if n not in params]
    if missing:
        raise QueryError(f"no value for parameter(s) {', '.join('$' + n for n in missing)}")
    return {n: (list(params[n]) if isinstance(params[n], list | tuple | set) else params[n])
            for n in names}


class Engine(Protocol):
    """A place to read tables from with DuckDB-dialect SQL."""

    name: str

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Rows of ``sql`` (DuckDB dialect, ``$name`` parameters) as pandas."""

    def tables(self) -> set[str]:
        """Names of the tables (and views) this engine can read."""


class DuckDBEngine:
    """A DuckDB connection (a database file written by ``bmc load``)."""

    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        try:
            return self.con.execute(sql, used_parameters(sql, params)).df()
        except duckdb.Error as e:
            raise QueryError(str(e).splitlines()[0]) from None

    def tables(self) -> set[str]:
        return {r[0] for r in self.con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}

    def register(self, name: str, df: pd.DataFrame) -> None:
        """``df`` as the TEMP table ``name``: visible to this connection only, allowed on a
        read-only database, gone when the connection closes (reference data the queries join,
        never written into the user's file)."""
        self.con.register("_bmc_register_in", df)
        try:
            self.con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS '
                             f'SELECT * FROM _bmc_register_in')
        finally:
            self.con.unregister("_bmc_register_in")


class SparkEngine:
    """A Spark session whose tables are temporary views (registered from a Parquet lake)."""

    name = "spark"

    def __init__(self, spark):
        self.spark = spark

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        from etl.spark.dialect import DialectError, to_spark

        values = used_parameters(sql, params)
        try:
            text = to_spark(sql)
        except DialectError as e:
            raise QueryError(str(e)) from None
        try:
            df = self.spark.sql(text, args=spark_args(values))
            return like_duckdb(df.toPandas(), df.schema)
        except Exception as e:  # pyspark's AnalysisException, Py4JJavaError, ...
            from etl.spark.session import error_message

            raise QueryError(f"on Spark: {error_message(e)}") from None

    def tables(self) -> set[str]:
        return {t.name for t in self.spark.catalog.listTables()}

    def register(self, name: str, df: pd.DataFrame) -> None:
        """``df`` as the temporary view ``name`` (reference data the queries join), typed from
        its pandas dtypes so an all-NULL column still has a type."""
        self.spark.createDataFrame(df, spark_schema(df)).createOrReplaceTempView(name)


def spark_args(values: Mapping[str, Any]) -> dict[str, Any]:
    """Bound values as ``spark.sql(args=...)`` takes them: lists become array literals (an
    empty list ``array()``, which Spark types ``array<void>`` and compares as empty)."""
    from pyspark.sql import functions as F

    out: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, list):
            out[name] = F.array(*[F.lit(v) for v in value])
        else:
            out[name] = value
    return out


def spark_schema(df: pd.DataFrame) -> str:
    """A Spark DDL schema for a pandas DataFrame: floats double, integers bigint, booleans
    boolean, anything else string (``createDataFrame`` cannot infer a column of only NULLs)."""
    def kind(dtype) -> str:
        if pd.api.types.is_bool_dtype(dtype):
            return "boolean"
        if pd.api.types.is_integer_dtype(dtype):
            return "bigint"
        if pd.api.types.is_float_dtype(dtype):
            return "double"
        return "string"

    return ", ".join(f"`{c}` {kind(t)}" for c, t in df.dtypes.items())


#: pandas dtypes DuckDB's ``.df()`` gives integer and boolean columns: (with NULLs, without).
_DUCKDB_DTYPES = {"ByteType": ("Int8", "int8"), "ShortType": ("Int16", "int16"),
                  "IntegerType": ("Int32", "int32"), "LongType": ("Int64", "int64"),
                  "BooleanType": ("boolean", "bool")}


def like_duckdb(pdf: pd.DataFrame, schema) -> pd.DataFrame:
    """Spark's ``toPandas()`` turns an integer column with NULLs into float64 (a grade 1
    prints as 1.0); give integer and boolean columns the dtypes DuckDB gives them, so the
    same query prints the same on both engines."""
    for field in schema.fields:
        pair = _DUCKDB_DTYPES.get(type(field.dataType).__name__)
        if pair is not None and field.name in pdf.columns:
            col = pdf[field.name]
            pdf[field.name] = col.astype(pair[0] if col.isna().any() else pair[1])
    return pdf

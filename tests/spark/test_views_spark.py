"""The declared ViewDefinitions on Spark (etl/spark/views.py): the read schema and the settings
a view build runs with.

The parity of every declared view -- its rows built by Spark equal the table `bmc load` builds
with DuckDB, over the 1,000-patient export, the committed sample (CBC panels whose components
carry their own reference ranges: a forEach inside a forEach) and the loader edge cases -- is
checked on the lake `load_lake` writes, which builds each view with `read_schema` + `view_sql`
(tests/spark/test_load_spark.py::test_the_lake_equals_the_duckdb_export_of_the_same_inputs)."""
from __future__ import annotations

import pytest

from etl.declared import compiled_views

VIEWS = list(compiled_views())


def test_view_settings_are_restored(spark):
    from etl.spark.views import VIEW_CONF, view_settings

    before = {k: spark.conf.get(k, None) for k in VIEW_CONF}
    with view_settings(spark):
        assert all(spark.conf.get(k) == v for k, v in VIEW_CONF.items())
    assert {k: spark.conf.get(k, None) for k in VIEW_CONF} == before


def test_read_schema_types():
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
    from pyspark.sql import types as T

    from etl.spark.views import read_schema

    obs = next(v for v in VIEWS if v.name == "observation")
    schema = read_schema(obs)
    assert schema["resourceType"].dataType == T.StringType()
    assert schema["valueQuantity"].dataType["value"].dataType == T.DoubleType()
    coding = schema["code"].dataType["coding"].dataType
    assert isinstance(coding, T.ArrayType) and isinstance(coding.elementType, T.StructType)

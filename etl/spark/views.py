"""The declared ViewDefinitions on Spark: NDJSON read with a schema derived from the view.

A compiled view (``etl.viewdef.compiler.CompiledView``) carries ``structure``, the typed shape
DuckDB's ``json_transform`` parses each resource into, and ``sql``, a DuckDB SELECT over
``{source}`` (a relation with ``_rid`` and ``r``). For Spark:

* :func:`read_schema` turns ``structure`` into a pyspark ``StructType`` (VARCHAR -> string,
  DOUBLE -> double, BOOLEAN -> boolean, INTEGER -> int, BIGINT -> bigint, a list -> ArrayType,
  a dict -> StructType, ``"JSON"`` -> string holding the element's raw JSON text), plus
  ``resourceType`` to pick the view's resources;
* :func:`read_resources` reads NDJSON lines with Spark (``spark.read.text`` + ``from_json``
  with that schema) into ``_rid`` (``monotonically_increasing_id``: parity is on the view
  columns, not on ``_rid``) and ``r``;
* :func:`view_sql` is the view's SQL through ``etl.spark.dialect.to_spark`` (the rules for
  ``unnest`` pairs, ``flatten``, ``list_concat``, ``regexp_full_match`` and the
  ``bmc_reference_key`` macro are there, with tests in ``tests/spark/test_dialect.py``);
* :func:`build_view` runs it and returns the view's columns in view order (no ``_rid``).

What the DuckDB loader does *after* the SELECT is not repeated here: settling resource
versions, rejecting resources whose ``required`` columns are NULL, and rewriting
``urn:uuid:`` / conditional references through its index. Over a Bulk export (one version of
each resource, relative references) the rows are the same; ``tests/spark/test_views_parity.py``
checks every declared view.
"""
from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

from etl.viewdef.compiler import CompiledView

_SCALARS = {"VARCHAR": "string", "JSON": "string", "DOUBLE": "double", "BOOLEAN": "boolean",
            "INTEGER": "integer", "BIGINT": "long", "DATE": "string", "TIMESTAMP": "string"}


def _spark_type(shape):
    from pyspark.sql import types as T

    if isinstance(shape, list):
        if len(shape) != 1:
            raise ValueError(f"a list structure has one element shape, got {shape!r}")
        return T.ArrayType(_spark_type(shape[0]), containsNull=True)
    if isinstance(shape, dict):
        return T.StructType([T.StructField(name, _spark_type(sub), nullable=True)
                             for name, sub in shape.items()])
    if isinstance(shape, str) and shape.upper() in _SCALARS:
        # the type objects themselves: _parse_datatype_string asks the JVM once per field
        return {"string": T.StringType, "double": T.DoubleType, "boolean": T.BooleanType,
                "integer": T.IntegerType, "long": T.LongType}[_SCALARS[shape.upper()]]()
    raise ValueError(f"no Spark type for structure element {shape!r}")


def read_schema(view: CompiledView):
    """The pyspark StructType of ``r`` for ``view`` (with ``resourceType`` added)."""
    structure = dict(view.structure)
    structure.setdefault("resourceType", "VARCHAR")
    return _spark_type(structure)


def ndjson_files(paths: Iterable[str | Path]) -> list[str]:
    """The ``*.ndjson`` files in ``paths`` (files or folders, searched recursively)."""
    out: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(str(f) for f in sorted(p.rglob("*.ndjson")))
        elif p.exists():
            out.append(str(p))
    return out


_counter = itertools.count()

#: Settings a view build runs with. Spark 4.0's nested-column aliasing (in ColumnPruning)
#: loses a struct field when two position-carrying generators nest under columns of ``r``
#: (observation_reference_range: component, then its referenceRange): the query fails with
#: INTERNAL_ERROR_ATTRIBUTE_NOT_FOUND ``_extract_reference``. Without ColumnPruning it runs;
#: ``r`` is already pruned to the view's paths by the read schema.
VIEW_CONF = {"spark.sql.optimizer.excludedRules":
             "org.apache.spark.sql.catalyst.optimizer.ColumnPruning"}


@contextlib.contextmanager
def view_settings(spark) -> Iterator[None]:
    """Run the block (the *actions* on :func:`build_view` results: Spark optimises lazily)
    with :data:`VIEW_CONF`, restoring the session's settings after."""
    old = {k: spark.conf.get(k, None) for k in VIEW_CONF}
    for k, v in VIEW_CONF.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def read_resources(spark, view: CompiledView, paths: Iterable[str | Path]):
    """The resources of ``view.resource`` in the NDJSON files under ``paths``, as a DataFrame
    of ``_rid`` (bigint) and ``r`` (the parsed struct)."""
    from pyspark.sql import functions as F

    files = ndjson_files(paths)
    if not files:
        raise FileNotFoundError(f"no *.ndjson files under {list(map(str, paths))}")
    text = spark.read.text(files)
    parsed = text.select(F.from_json("value", read_schema(view)).alias("r"))
    mine = parsed.where(F.col("r.resourceType") == F.lit(view.resource))
    return mine.select(F.monotonically_increasing_id().alias("_rid"), "r")


def view_sql(view: CompiledView, source: str) -> str:
    """The view's SELECT in Spark SQL, reading the temporary view named ``source``."""
    from etl.spark.dialect import to_spark

    return to_spark(view.render(f"(SELECT _rid, r FROM {source})"))


def build_view(spark, view: CompiledView, paths: Iterable[str | Path] | None = None,
               resources=None):
    """The rows of ``view`` built by Spark: its columns in view order (``_rid`` dropped).

    ``resources`` (a DataFrame from :func:`read_resources`) is read from ``paths`` when not
    given. Run its actions inside :func:`view_settings`."""
    if resources is None:
        resources = read_resources(spark, view, paths or [])
    name = f"_bmc_src_{view.name}_{next(_counter)}"
    resources.createOrReplaceTempView(name)
    out = spark.sql(view_sql(view, name))
    return out.select(*[f"`{c.name}`" for c in view.columns])


__all__ = ["VIEW_CONF", "build_view", "ndjson_files", "read_resources", "read_schema",
           "view_settings", "view_sql"]

"""Why an NDJSON line was rejected, decided on the Spark executors.

The rule is :func:`etl.ingest.diagnose`, the DuckDB loader's own (one rule, not a copy in
SQL); it runs as a Python UDF over the rejected lines only, where they were read, so their
text never travels to the driver (3,000 bad lines of a large export are megabytes, and a
``collect`` of them aborts on ``spark.driver.maxResultSize``). The executors' Python must
therefore have bmc-cohort installed, as the driver's (docs/spark.md).
"""
from __future__ import annotations

#: The UDF's result, one struct per rejected line (no content: reason, type, id, flags).
REJECTION_SCHEMA = ("reason string, resource_type string, resource_id string, "
                    "untyped boolean, untyped_fhir boolean")


def classify_line(value: str) -> tuple[str, str | None, str | None, bool, bool]:
    """``(reason, resourceType, id, untyped, looks_like_fhir)`` for one rejected line:
    ``diagnose``'s answer, plus whether the line has no resourceType (a file of only such
    lines is a log, not an export) and whether such a line still looks like a FHIR record."""
    import orjson

    from etl.bundles import looks_like_fhir
    from etl.ingest import diagnose

    reason, rtype, rid = diagnose(value.encode("utf-8", "surrogatepass"))
    untyped = reason == "missing resourceType"
    return reason, rtype, rid, untyped, bool(untyped and looks_like_fhir(orjson.loads(value)))


def rejection_udf():
    """:func:`classify_line` as a Spark UDF returning :data:`REJECTION_SCHEMA`."""
    from pyspark.sql import functions as F

    return F.udf(lambda value: classify_line(value), REJECTION_SCHEMA)  # no hint inference

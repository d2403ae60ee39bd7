"""The optional Spark engine: declared views compiled for Spark, NDJSON read with a schema
derived from each view, Parquet exports read back, and ``load_lake`` (FHIR NDJSON to the
``bmc export`` lake, built by Spark) (``pip install '.[spark]'``)."""

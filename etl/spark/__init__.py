"""The optional Spark engine: declared views compiled for Spark, NDJSON read with a schema
derived from each view, and Parquet exports read back (``pip install '.[spark]'``)."""

"""Cohort discovery and outcome analyses for bone marrow carcinomatosis on FHIR data.

Runs the SQL in ``queries/`` over the tables the ``etl`` package declares, then the
paper's analyses; ``cohort.cli`` is the thin ``bmc`` command line over both.
"""

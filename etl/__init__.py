"""FHIR R4 exports -> DuckDB tables declared as SQL-on-FHIR v2 ViewDefinitions.

Data flows one way: sources (files, folders, globs) -> resources with provenance ->
declared tables (``etl/views/*.json``). ``etl`` never imports ``cohort``.
"""

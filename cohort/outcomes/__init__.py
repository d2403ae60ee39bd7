"""Outcome analyses of a BMC cohort, computed from the DuckDB tables, and the report.

Modules: ``records`` (the only one that reads the database: SQL in ``queries/outcomes/``),
``tables`` (Table I/II), ``cytopenia`` (CTCAE grades of blood counts), ``treatment`` (regimens,
response, cytopenia course, toxicity), ``survival`` (KM, log-rank, Cox with lifelines),
``diagnostics`` (smear sensitivity, normoblasts vs survival), ``incidence``, ``published`` (the
paper's numbers), ``verdicts`` (published vs reproduced), ``analysis`` (everything for one
group of patients), ``plots`` and ``report`` (HTML/Markdown/CSV).
"""

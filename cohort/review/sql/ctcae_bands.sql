-- The CTCAE grade bands the cohort grades with (ref_ctcae, loaded by the cohort run), in
-- canonical units; grade 1 ends at the LLN (high_is_lln). Anaemia grade 4 only with
-- $anemia_grade4, as in 30_lab_grade.sql.
-- Parameters: $anemia_grade4
SELECT analyte, grade, low, high, high_is_lln, unit
FROM ref_ctcae
WHERE $anemia_grade4 OR NOT (analyte = 'hgb' AND grade = 4)
ORDER BY analyte, grade

-- Blood counts as the cohort read and graded them: the usable values of bmc_lab (canonical
-- unit, the LLN it chose; statuses in the cohort's result_statuses, a preliminary result
-- superseded by a final one dropped) with their CTCAE grade from bmc_lab_grade (NULL for
-- nRBC). One row per value. bmc_lab holds the patients of bmc_scope, which includes every
-- patient the report analyses (each has marrow evidence or an nRBC result).
-- Parameters: $patient_keys VARCHAR[].
SELECT
    l.patient_key,
    l.resource_key,
    l.effective_text AS taken_at,
    l.date_lo AS day,
    l.analyte,
    l.value,
    l.comparator,
    l.unit,
    l.lln,
    g.grade
FROM bmc_lab l
LEFT JOIN bmc_lab_grade g ON g._rid = l._rid AND g.value_source = l.value_source
     AND g.component_no = l.component_no AND g.analyte = l.analyte
WHERE l.usable AND list_contains($patient_keys, l.patient_key)
ORDER BY l.patient_key, taken_at, l.analyte

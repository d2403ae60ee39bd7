-- The worklist: the screen's tier 1 and 2 candidates (and, with $include_cohort, every cohort
-- member), each with its index date if in the cohort and the latest adjudication if any.
-- Sorting and filtering happen in Python over these rows (a whitelist of columns), never by
-- formatting SQL.
-- Parameters: $include_cohort
WITH flagged AS (
    SELECT patient_id, tier, reasons, rank, worst_grade, finding_date
    FROM bmc_screen WHERE tier IN ('1', '2')
), members AS (
    SELECT patient_id, index_date, route FROM bmc_cohort
)
SELECT patient_id, coalesce(f.tier, 'cohort') AS tier, f.rank, f.worst_grade,
       f.finding_date, m.index_date, m.route, f.reasons,
       coalesce(r.verdict, 'unreviewed') AS status, r.reviewer, r.reviewed_at
FROM flagged f
FULL JOIN members m USING (patient_id)
LEFT JOIN review_latest r USING (patient_id)
WHERE f.patient_id IS NOT NULL OR $include_cohort
ORDER BY f.rank NULLS LAST, m.index_date, patient_id

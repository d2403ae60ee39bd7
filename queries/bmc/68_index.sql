-- bmc_index: the cohort's index date and route, one row per patient in the cohort.
--   index_date  the first date the definition is met: the earliest proving histology
--               evidence or smear pair (bmc_smear.met_date; a smear excluded by an
--               alternative cause does not count)
--   route       histology | smear | both: which routes the record meets (at any time)
-- Parameters: none.
WITH base AS (
    SELECT r.patient_key, r.patient_id,
           CASE WHEN r.smear AND NOT r.alt_cause THEN r.smear_date END AS smear_date,
           CASE WHEN r.histology THEN r.histology_date END AS histology_date,
           r.histology, r.smear AND NOT r.alt_cause AS smear_ok,
           r.coded_marrow_dx, r.marrow_report, r.bc_date
    FROM bmc_patient_rule r
    WHERE r.in_cohort
)
SELECT b.*,
       least(b.histology_date, b.smear_date) AS index_date,
       CASE WHEN b.histology AND b.smear_ok THEN 'both'
            WHEN b.histology THEN 'histology'
            ELSE 'smear' END AS route
FROM base b

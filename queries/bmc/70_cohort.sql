-- bmc_cohort: the BMC cohort, one row per patient (bmc_patient_rule.in_cohort), with the
-- index date and route of bmc_index and the CTCAE grades at index of bmc_index_lab
-- (NULL when no count lies within the window).
--   coded_marrow_dx   a marrow-metastasis Condition exists (whether or not it proves BMC)
--   marrow_report     a bone marrow pathology report exists (whatever its conclusion)
-- Parameters: none.
WITH grades AS (
    SELECT patient_key,
           max(CASE WHEN lineage = 'hgb' THEN grade END) AS anemia_grade,
           max(CASE WHEN lineage = 'plt' THEN grade END) AS platelet_grade,
           max(CASE WHEN lineage = 'wbc' THEN grade END) AS wbc_grade,
           max(CASE WHEN lineage = 'anc' THEN grade END) AS anc_grade,
           max(CASE WHEN lineage = 'nrbc' THEN value END) AS nrbc_per_100_wbc
    FROM bmc_index_lab
    GROUP BY patient_key
)
SELECT i.patient_id, i.index_date, i.route,
       i.histology_date, i.smear_date,
       g.anemia_grade, g.platelet_grade, g.wbc_grade, g.anc_grade, g.nrbc_per_100_wbc,
       i.coded_marrow_dx, i.marrow_report,
       i.bc_date AS breast_cancer_date,
       i.patient_key
FROM bmc_index i
LEFT JOIN grades g ON g.patient_key = i.patient_key
ORDER BY i.index_date, i.patient_id

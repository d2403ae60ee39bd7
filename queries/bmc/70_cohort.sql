-- bmc_cohort: the BMC cohort, one row per patient in it (bmc_patient_rule.in_cohort).
--   index_date  the first date the definition is met: the earliest proving histology
--               evidence or smear pair (bmc_smear.met_date; a smear excluded by an
--               alternative cause does not count)
--   route       histology | smear | both: which routes the record meets (at any time)
--   *_grade     CTCAE v5.0 grade at the index date per lineage: the result nearest to the
--               index date within $smear_window_days days (the earlier one on a tie, the
--               worst one on that day); NULL when there is none
--   nrbc_per_100_wbc  the nRBC result nearest the index date (same rule), if any
--   coded_marrow_dx   a marrow-metastasis Condition exists (whether or not it proves BMC)
-- Parameters: $smear_window_days
WITH base AS (
    SELECT r.patient_key, r.patient_id,
           CASE WHEN r.smear AND NOT r.alt_cause THEN r.smear_date END AS smear_date,
           CASE WHEN r.histology THEN r.histology_date END AS histology_date,
           r.histology, r.smear AND NOT r.alt_cause AS smear_ok,
           r.coded_marrow_dx, r.marrow_report, r.bc_date
    FROM bmc_patient_rule r
    WHERE r.in_cohort
),
indexed AS (
    SELECT b.*,
           least(b.histology_date, b.smear_date) AS index_date,
           CASE WHEN b.histology AND b.smear_ok THEN 'both'
                WHEN b.histology THEN 'histology'
                ELSE 'smear' END AS route
    FROM base b
),
near AS (
    SELECT i.patient_key, g.lineage, g.grade,
           row_number() OVER (PARTITION BY i.patient_key, g.lineage
                              ORDER BY abs(date_diff('day', i.index_date, g.date_lo)),
                                       g.date_lo, g.grade DESC) AS rn
    FROM indexed i
    JOIN bmc_lab_grade g ON g.patient_key = i.patient_key
    WHERE abs(date_diff('day', i.index_date, g.date_lo)) <= $smear_window_days
),
near_nrbc AS (
    SELECT i.patient_key, l.value AS nrbc,
           row_number() OVER (PARTITION BY i.patient_key
                              ORDER BY abs(date_diff('day', i.index_date, l.date_lo)),
                                       l.date_lo, l.value DESC) AS rn
    FROM indexed i
    JOIN bmc_lab l ON l.patient_key = i.patient_key
    WHERE l.usable AND l.analyte = 'nrbc_ratio' AND l.unit_status = 'ok'
      AND abs(date_diff('day', i.index_date, l.date_lo)) <= $smear_window_days
),
grades AS (
    SELECT patient_key,
           max(CASE WHEN lineage = 'hgb' THEN grade END) AS anemia_grade,
           max(CASE WHEN lineage = 'plt' THEN grade END) AS platelet_grade,
           max(CASE WHEN lineage = 'wbc' THEN grade END) AS wbc_grade,
           max(CASE WHEN lineage = 'anc' THEN grade END) AS anc_grade
    FROM near
    WHERE rn = 1
    GROUP BY patient_key
)
SELECT i.patient_id, i.index_date, i.route,
       i.histology_date, i.smear_date,
       g.anemia_grade, g.platelet_grade, g.wbc_grade, g.anc_grade,
       n.nrbc AS nrbc_per_100_wbc,
       i.coded_marrow_dx, i.marrow_report,
       i.bc_date AS breast_cancer_date,
       i.patient_key
FROM indexed i
LEFT JOIN grades g ON g.patient_key = i.patient_key
LEFT JOIN near_nrbc n ON n.patient_key = i.patient_key AND n.rn = 1
ORDER BY i.index_date, i.patient_id

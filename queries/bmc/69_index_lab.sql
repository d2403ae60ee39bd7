-- bmc_index_lab: the blood counts that give the cohort's grades at index, one row per
-- patient and lineage (hgb, plt, wbc, anc) and one for nRBC per 100 leukocytes: the usable
-- result nearest to the index date within $smear_window_days days (the earlier one on a tie,
-- the worst one on that day, then the lowest value, then the resource key: never an arbitrary
-- pick, so both engines and every run agree).
-- Parameters: $smear_window_days
WITH graded AS (
    SELECT i.patient_key, g.lineage, g.grade, g.value, g.unit, g.lln, g.lln_source,
           g.resource_key, g._rid, g.date_lo,
           row_number() OVER (PARTITION BY i.patient_key, g.lineage
                              ORDER BY abs(date_diff('day', i.index_date, g.date_lo)),
                                       g.date_lo, g.grade DESC, g.value, g.resource_key) AS rn
    FROM bmc_index i
    JOIN bmc_lab_grade g ON g.patient_key = i.patient_key
    WHERE abs(date_diff('day', i.index_date, g.date_lo)) <= $smear_window_days
),
nrbc AS (
    SELECT i.patient_key, 'nrbc' AS lineage, CAST(NULL AS INTEGER) AS grade, l.value, l.unit,
           l.lln, l.lln_source, l.resource_key, l._rid, l.date_lo,
           row_number() OVER (PARTITION BY i.patient_key
                              ORDER BY abs(date_diff('day', i.index_date, l.date_lo)),
                                       l.date_lo, l.value DESC, l.resource_key) AS rn
    FROM bmc_index i
    JOIN bmc_lab l ON l.patient_key = i.patient_key
    WHERE l.usable AND l.analyte = 'nrbc_ratio' AND l.unit_status = 'ok'
      AND abs(date_diff('day', i.index_date, l.date_lo)) <= $smear_window_days
)
SELECT patient_key, lineage, grade, value, unit, lln, lln_source, resource_key, _rid, date_lo
FROM graded WHERE rn = 1
UNION ALL
SELECT patient_key, lineage, grade, value, unit, lln, lln_source, resource_key, _rid, date_lo
FROM nrbc WHERE rn = 1

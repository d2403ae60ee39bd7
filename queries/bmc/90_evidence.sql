-- bmc_evidence: the evidence ledger -- for every patient and rule, the resources that were
-- looked at, whether each counted, and where it was read from (source file, NDJSON line or
-- bundle entry), so a reviewer can open exactly what decided a case. Values are in
-- canonical units with the raw value and unit beside them; grades are bmc_lab_grade's.
--   breast_cancer    breast-cancer Conditions (refuted / entered-in-error shown, not counted)
--   marrow_evidence  marrow Conditions and marrow reports (bmc_histology; counted = proves)
--   smear_cytopenia  nRBC results (positive ones, and unusable ones with the reason) and the
--                    cytopenias paired with them in the window
--   no_alt_cause     alternative-cause Conditions (counted = they exclude the smear route)
--   index_grades     the counts that give the cohort's grades at index
-- Parameters: none.
WITH bc_cond AS (
    SELECT c._rid, c.resource_key, c.patient_key, c.verification_status,
           min(coalesce(c.onset_date_time, c.recorded_date)) AS date_text,
           string_agg(DISTINCT k.system || '|' || k.code, ' ' ORDER BY k.system || '|' || k.code) AS code,
           min(k.display) AS display
    FROM bmc_coded k
    JOIN condition c ON c._rid = k._rid
    WHERE k.source = 'condition' AND k.valueset = 'breast_cancer'
    GROUP BY c._rid, c.resource_key, c.patient_key, c.verification_status
),
bc AS (
    SELECT c.patient_key, 'breast_cancer' AS rule, 'breast cancer diagnosis' AS role,
           coalesce(c.verification_status, '') NOT IN ('refuted', 'entered-in-error') AS counted,
           c.resource_key, c._rid, d.date_lo, d.precision AS date_precision, c.code,
           CAST(NULL AS DOUBLE) AS value, CAST(NULL AS VARCHAR) AS unit,
           CAST(NULL AS DOUBLE) AS value_raw, CAST(NULL AS VARCHAR) AS unit_raw,
           CAST(NULL AS VARCHAR) AS comparator, CAST(NULL AS INTEGER) AS grade,
           CAST(NULL AS DOUBLE) AS lln, CAST(NULL AS VARCHAR) AS lln_source,
           CASE WHEN coalesce(c.verification_status, '') IN ('refuted', 'entered-in-error')
                THEN 'verificationStatus ' || c.verification_status ELSE c.display END AS note
    FROM bc_cond c
    LEFT JOIN bmc_date d ON d.text = c.date_text
),
hist AS (
    SELECT patient_key, 'marrow_evidence', kind, proves, resource_key, _rid, date_lo,
           date_precision, code, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, basis
    FROM bmc_histology
),
nrbc AS (
    SELECT l.patient_key, 'smear_cytopenia', 'nRBC result',
           l.usable AND l.nrbc_present AND l.resource_key IN (SELECT nrbc_key FROM bmc_smear),
           l.resource_key, l._rid, l.date_lo, l.date_precision, 'http://loinc.org|' || l.code,
           l.value, l.unit, l.value_raw, l.unit_raw, l.comparator, NULL, NULL, NULL,
           CASE WHEN NOT l.usable THEN 'not used: ' || l.not_used_reason
                WHEN NOT l.nrbc_present THEN 'no nRBC (value ' || CAST(l.value_raw AS VARCHAR) || ')'
                WHEN l.resource_key NOT IN (SELECT nrbc_key FROM bmc_smear)
                     THEN 'nRBC > 0 without cytopenia in the window'
                ELSE 'nRBC > 0 with cytopenia in the window' END
    FROM bmc_lab l
    WHERE l.analyte IN ('nrbc_ratio', 'nrbc_abs')
),
cyto AS (
    SELECT s.patient_key, 'smear_cytopenia', 'cytopenia (' || s.term || ')', true,
           s.cyto_key, s.cyto_rid, s.cyto_date, NULL, NULL, s.cyto_value, s.cyto_unit,
           NULL, NULL, s.cyto_comparator, s.grade, s.lln, s.lln_source,
           string_agg('with nRBC of ' || CAST(s.nrbc_date AS VARCHAR) || ' ('
                      || CASE WHEN s.days_from_nrbc >= 0 THEN '+' ELSE '' END
                      || CAST(s.days_from_nrbc AS VARCHAR) || ' days)', '; '
                      ORDER BY s.nrbc_date, s.days_from_nrbc)
    FROM bmc_smear s
    GROUP BY s.patient_key, s.term, s.cyto_key, s.cyto_rid, s.cyto_date, s.cyto_value,
             s.cyto_unit, s.cyto_comparator, s.grade, s.lln, s.lln_source
),
alt AS (
    SELECT patient_key, 'no_alt_cause', 'alternative cause (' || valueset || ')', true,
           resource_key, _rid, date_lo, date_precision, system || '|' || code,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, display
    FROM bmc_exclusion
),
idx AS (
    SELECT x.patient_key, 'index_grades', 'count at index (' || x.lineage || ')', true,
           x.resource_key, x._rid, x.date_lo, NULL, NULL, x.value, x.unit, NULL, NULL, NULL,
           x.grade, x.lln, x.lln_source, 'nearest count to the index date'
    FROM bmc_index_lab x
),
ledger AS (
    SELECT * FROM bc
    UNION ALL SELECT * FROM hist
    UNION ALL SELECT * FROM nrbc
    UNION ALL SELECT * FROM cyto
    UNION ALL SELECT * FROM alt
    UNION ALL SELECT * FROM idx
)
SELECT p.patient_id, e.rule, e.role, e.counted, e.resource_key, e.date_lo AS date,
       e.date_precision, e.code, e.value, e.unit, e.value_raw, e.unit_raw, e.comparator,
       e.grade, e.lln, e.lln_source, e.note,
       f.path AS source_file, r.line AS source_line, r.entry AS source_entry,
       e.patient_key
FROM ledger e
JOIN bmc_patient p ON p.patient_key = e.patient_key
LEFT JOIN resource r ON r._rid = e._rid
LEFT JOIN source_file f ON f.file_id = r.file_id

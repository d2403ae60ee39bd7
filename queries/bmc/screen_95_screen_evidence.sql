-- bmc_screen_evidence: what put a patient on the screen, in the columns of bmc_evidence (rule
-- 'screen'), for every patient in bmc_screen, so `bmc evidence` shows a reviewer the findings
-- behind a tier and not only the breast-cancer row:
--   bone metastasis   bone-metastasis Conditions (value set bone_metastasis; refuted /
--                     entered-in-error shown, not counted)
--   cytopenia (term)  every count graded >= $screen_min_grade after the bone metastasis
--                     (bmc_screen_cytopenia); counted = not explained by chemotherapy, the
--                     note names the chemotherapy that explains it
--   chemotherapy      every myelosuppressive exposure of the patient (bmc_screen_chemo);
--                     counted = it explains at least one of those cytopenias (given before the
--                     count and ended at most $chemo_lookback_days days before it)
-- Parameters: $screen_min_grade, $chemo_lookback_days
WITH screened AS (
    SELECT DISTINCT patient_key FROM bmc_screen
),
bone AS (
    SELECT c.patient_key, 'screen' AS rule, 'bone metastasis' AS role,
           coalesce(c.verification_status, '') NOT IN ('refuted', 'entered-in-error') AS counted,
           c.resource_key, c._rid, d.date_lo, d.precision AS date_precision,
           string_agg(DISTINCT k.system || '|' || k.code, ' ' ORDER BY k.system || '|' || k.code)
               AS code,
           CAST(NULL AS DOUBLE) AS value, CAST(NULL AS VARCHAR) AS unit,
           CAST(NULL AS DOUBLE) AS value_raw, CAST(NULL AS VARCHAR) AS unit_raw,
           CAST(NULL AS VARCHAR) AS comparator, CAST(NULL AS INTEGER) AS grade,
           CAST(NULL AS DOUBLE) AS lln, CAST(NULL AS VARCHAR) AS lln_source,
           CASE WHEN coalesce(c.verification_status, '') IN ('refuted', 'entered-in-error')
                THEN 'verificationStatus ' || c.verification_status
                ELSE min(k.display) END AS note
    FROM bmc_coded k
    JOIN condition c ON c._rid = k._rid
    JOIN screened s ON s.patient_key = c.patient_key
    LEFT JOIN bmc_date d ON d.text = coalesce(c.onset_date_time, c.recorded_date)
    WHERE k.source = 'condition' AND k.valueset = 'bone_metastasis'
    GROUP BY c.patient_key, c.resource_key, c._rid, d.date_lo, d.precision, c.verification_status
),
cyto AS (
    SELECT c.patient_key, 'screen', 'cytopenia (' || c.term || ')', NOT c.explained,
           c.resource_key, c._rid, c.date_lo, NULL, NULL, c.value, c.unit, NULL, NULL, NULL,
           c.grade, c.lln, c.lln_source,
           CASE WHEN c.explained
                THEN 'explained by chemotherapy: ' || c.chemo_drug || ' '
                     || CAST(c.days_after AS VARCHAR) || ' days before (' || c.chemo_source
                     || ', matched by ' || c.chemo_matched_by || ')'
                ELSE 'no chemotherapy in the ' || CAST($chemo_lookback_days AS VARCHAR)
                     || ' days before' END
    FROM bmc_screen_cytopenia c
    JOIN screened s ON s.patient_key = c.patient_key
),
explains AS (
    SELECT chemo_key, count(*) AS n_counts, min(date_lo) AS first_count
    FROM bmc_screen_cytopenia
    WHERE explained
    GROUP BY chemo_key
),
chemo AS (
    SELECT x.patient_key, 'screen', 'chemotherapy (' || x.kind || ')', e.chemo_key IS NOT NULL,
           x.resource_key, x._rid, x.date_lo, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL,
           x.drug || ' (' || x.source_type || ', matched by ' || x.matched_by || '); '
           || CASE WHEN e.chemo_key IS NOT NULL
                   THEN 'explains ' || CAST(e.n_counts AS VARCHAR) || ' cytopenia(s) from '
                        || CAST(e.first_count AS VARCHAR)
                   ELSE 'explains no cytopenia of grade >= '
                        || CAST($screen_min_grade AS VARCHAR) END
    FROM (SELECT DISTINCT patient_key, resource_key, _rid, kind, drug, date_lo, source_type,
                          matched_by
          FROM bmc_screen_chemo) x  -- one row per coding of the medication: one per resource here
    JOIN screened s ON s.patient_key = x.patient_key
    LEFT JOIN explains e ON e.chemo_key = x.resource_key
),
ledger AS (
    SELECT * FROM bone
    UNION ALL SELECT * FROM cyto
    UNION ALL SELECT * FROM chemo
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

-- bmc_screen: patients who may have unrecognised BMC, ranked, each with its reasons; and the
-- patients a rule took out, shown rather than hidden.
--   tier '1'         meets the cohort definition but has no coded marrow diagnosis and no
--                    marrow pathology report (a smear-route case nobody named)
--   tier '2'         breast cancer with bone metastases, a cytopenia graded
--                    >= $screen_min_grade not explained by chemotherapy (bmc_screen_cytopenia),
--                    no nRBC result on file, no marrow evidence, not in the cohort: the paper's
--                    "bone metastases and otherwise unexplained cytopenia" -- get a smear
--   tier 'excluded'  would be tier 1 but an alternative cause is on record, or would be tier 2
--                    but every such cytopenia followed chemotherapy
-- rank orders tier 1, tier 2, excluded; within a tier the worst grade first, then the most
-- recent finding.
-- Parameters: $screen_min_grade, $chemo_lookback_days
WITH r AS (
    SELECT * FROM bmc_patient_rule
),
pair AS (
    -- the smear pairs of a patient, worst cytopenia first
    SELECT s.patient_key, s.met_date, s.nrbc_date, s.nrbc_value, s.nrbc_unit, s.term, s.grade,
           s.cyto_value, s.cyto_unit, s.lln, s.lln_source, s.cyto_date,
           row_number() OVER (PARTITION BY s.patient_key
                              ORDER BY s.met_date, s.grade DESC, s.cyto_date, s.lineage,
                                       s.cyto_key, s.nrbc_date) AS rn,
           max(s.grade) OVER (PARTITION BY s.patient_key) AS worst
    FROM bmc_smear s
),
smear_text AS (
    SELECT patient_key, worst, met_date,
           'nRBC ' || CAST(nrbc_value AS VARCHAR) || ' ' || coalesce(nrbc_unit, '') || ' on '
           || CAST(nrbc_date AS VARCHAR) || ' with ' || term || ' grade ' || CAST(grade AS VARCHAR)
           || ' (' || CAST(round(cyto_value, 2) AS VARCHAR) || ' ' || cyto_unit || ', LLN '
           || CAST(round(lln, 2) AS VARCHAR) || ' from ' || lln_source || ') on '
           || CAST(cyto_date AS VARCHAR) AS text
    FROM pair
    WHERE rn = 1
),
myelophthisis AS (
    SELECT DISTINCT patient_key FROM bmc_coded
    WHERE source = 'condition' AND valueset = 'myelophthisis'
),
tier1 AS (
    SELECT r.patient_key, '1' AS tier, 1 AS tier_order, st.worst AS score, st.met_date AS finding_date,
           'meets the smear rule: ' || st.text
           || '; no coded marrow diagnosis and no marrow pathology report'
           || CASE WHEN m.patient_key IS NOT NULL
                   THEN '; coded myelophthisis (D61.82) without a marrow diagnosis' ELSE '' END
           AS reasons
    FROM r
    JOIN smear_text st ON st.patient_key = r.patient_key
    LEFT JOIN myelophthisis m ON m.patient_key = r.patient_key
    WHERE r.in_cohort AND NOT r.coded_marrow_dx AND NOT r.marrow_report
),
excluded_smear AS (
    SELECT r.patient_key, 'excluded' AS tier, 3 AS tier_order, st.worst AS score,
           st.met_date AS finding_date,
           'meets the smear rule (' || st.text || ') but an alternative cause is on record: '
           || r.alt_causes AS reasons
    FROM r
    JOIN smear_text st ON st.patient_key = r.patient_key
    WHERE r.breast_cancer AND NOT r.histology AND r.alt_cause
      AND NOT r.coded_marrow_dx AND NOT r.marrow_report
),
candidates AS (
    SELECT c.*
    FROM bmc_screen_cytopenia c
    JOIN r ON r.patient_key = c.patient_key
    WHERE NOT r.in_cohort AND NOT r.nrbc_result AND NOT r.coded_marrow_dx AND NOT r.marrow_report
),
cand_ranked AS (
    SELECT c.*,
           row_number() OVER (PARTITION BY c.patient_key, c.explained
                              ORDER BY c.grade DESC, c.date_lo DESC, c.resource_key,
                                       c.lineage) AS rn,
           max(CASE WHEN NOT c.explained THEN 1 ELSE 0 END) OVER (PARTITION BY c.patient_key)
               AS any_unexplained
    FROM candidates c
),
tier2 AS (
    SELECT patient_key, '2' AS tier, 2 AS tier_order, grade AS score, date_lo AS finding_date,
           'breast cancer with bone metastases (' || bone_codes || ', since '
           || CAST(bone_date AS VARCHAR) || '); ' || term || ' grade ' || CAST(grade AS VARCHAR)
           || ' (' || CAST(round(value, 2) AS VARCHAR) || ' ' || unit || ') on '
           || CAST(date_lo AS VARCHAR) || ' without chemotherapy in the '
           || CAST($chemo_lookback_days AS VARCHAR) || ' days before'
           || '; no nRBC result on file: a blood smear is indicated' AS reasons
    FROM cand_ranked
    WHERE NOT explained AND rn = 1
),
excluded_chemo AS (
    SELECT patient_key, 'excluded' AS tier, 3 AS tier_order, grade AS score, date_lo AS finding_date,
           'breast cancer with bone metastases and ' || term || ' grade ' || CAST(grade AS VARCHAR)
           || ' on ' || CAST(date_lo AS VARCHAR) || ', but every cytopenia of grade >= '
           || CAST($screen_min_grade AS VARCHAR) || ' followed chemotherapy (here ' || chemo_drug
           || ' ' || CAST(days_after AS VARCHAR) || ' days before)' AS reasons
    FROM cand_ranked
    WHERE explained AND rn = 1 AND any_unexplained = 0
),
hits AS (
    SELECT * FROM tier1
    UNION ALL SELECT * FROM tier2
    UNION ALL SELECT * FROM excluded_smear
    UNION ALL SELECT * FROM excluded_chemo
)
SELECT row_number() OVER (ORDER BY h.tier_order, h.score DESC, h.finding_date DESC,
                                   p.patient_id) AS rank,
       p.patient_id, h.tier, h.reasons, h.score AS worst_grade, h.finding_date,
       h.patient_key
FROM hits h
JOIN bmc_patient p ON p.patient_key = h.patient_key
ORDER BY rank

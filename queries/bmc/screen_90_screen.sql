-- bmc_screen: patients who may have unrecognised BMC, ranked, each with its reasons; and the
-- patients a rule took out, shown rather than hidden.
--   tier '1'         meets the cohort definition but has no coded marrow diagnosis and no
--                    marrow pathology report (a smear-route case nobody named)
--   tier '2'         breast cancer with bone metastases, a cytopenia graded
--                    >= $screen_min_grade not explained by chemotherapy (bmc_screen_cytopenia),
--                    no nRBC result on file, no marrow evidence, not in the cohort: the paper's
--                    "bone metastases and otherwise unexplained cytopenia" -- get a smear
--   tier 'excluded'  would be tier 1 or tier 2 but an alternative cause is on record
--                    (bmc_exclusion, e.g. leukaemia, a marrow transplant), or would be tier 2
--                    but every such cytopenia followed chemotherapy (the reason names the drug,
--                    the resource type it came from and how the drug was matched)
-- Supporting codes that never prove BMC on their own are named in the reasons: myelophthisis
-- (value set myelophthisis: D61.82, ICD-9-CM 284.2, SNOMED myelophthisic anaemia) and
-- bone-or-marrow metastasis codes that cannot tell the two apart (value set
-- bone_or_marrow_metastasis: ICD-9-CM 198.5, WHO ICD-10 C79.5, ICD-10-CM header C79.5).
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
supporting AS (
    SELECT patient_key,
           string_agg(DISTINCT CASE valueset
                   WHEN 'myelophthisis' THEN 'coded myelophthisis (' || code || ')'
                   ELSE 'coded bone-or-marrow metastasis (' || code || ': marrow involvement not shown)'
               END, '; ' ORDER BY CASE valueset
                   WHEN 'myelophthisis' THEN 'coded myelophthisis (' || code || ')'
                   ELSE 'coded bone-or-marrow metastasis (' || code || ': marrow involvement not shown)'
               END) AS text
    FROM bmc_coded
    WHERE source = 'condition' AND valueset IN ('myelophthisis', 'bone_or_marrow_metastasis')
    GROUP BY patient_key
),
tier1 AS (
    SELECT r.patient_key, '1' AS tier, 1 AS tier_order, st.worst AS score, st.met_date AS finding_date,
           'meets the smear rule: ' || st.text
           || '; no coded marrow diagnosis and no marrow pathology report'
           || CASE WHEN m.patient_key IS NOT NULL
                   THEN '; supporting, not proof: ' || m.text ELSE '' END
           AS reasons
    FROM r
    JOIN smear_text st ON st.patient_key = r.patient_key
    LEFT JOIN supporting m ON m.patient_key = r.patient_key
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
      AND NOT r.alt_cause
),
alt_ranked AS (
    -- would-be tier 2 patients with an alternative cause on record: the worst cytopenia
    SELECT c.patient_key, c.term, c.grade, c.date_lo, r.alt_causes,
           row_number() OVER (PARTITION BY c.patient_key
                              ORDER BY c.grade DESC, c.date_lo DESC, c.resource_key,
                                       c.lineage) AS rn
    FROM bmc_screen_cytopenia c
    JOIN r ON r.patient_key = c.patient_key
    WHERE NOT r.in_cohort AND NOT r.nrbc_result AND NOT r.coded_marrow_dx AND NOT r.marrow_report
      AND r.alt_cause
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
    SELECT c.patient_key, '2' AS tier, 2 AS tier_order, c.grade AS score, c.date_lo AS finding_date,
           'breast cancer with bone metastases (' || c.bone_codes || ', since '
           || CAST(c.bone_date AS VARCHAR) || '); ' || c.term || ' grade ' || CAST(c.grade AS VARCHAR)
           || ' (' || CAST(round(c.value, 2) AS VARCHAR) || ' ' || c.unit || ') on '
           || CAST(c.date_lo AS VARCHAR) || ' without chemotherapy in the '
           || CAST($chemo_lookback_days AS VARCHAR) || ' days before'
           || '; no nRBC result on file: a blood smear is indicated'
           || CASE WHEN m.patient_key IS NOT NULL
                   THEN '; supporting, not proof: ' || m.text ELSE '' END AS reasons
    FROM cand_ranked c
    LEFT JOIN supporting m ON m.patient_key = c.patient_key
    WHERE NOT c.explained AND c.rn = 1
),
excluded_chemo AS (
    SELECT patient_key, 'excluded' AS tier, 3 AS tier_order, grade AS score, date_lo AS finding_date,
           'breast cancer with bone metastases and ' || term || ' grade ' || CAST(grade AS VARCHAR)
           || ' on ' || CAST(date_lo AS VARCHAR) || ', but every cytopenia of grade >= '
           || CAST($screen_min_grade AS VARCHAR) || ' followed chemotherapy (here ' || chemo_drug
           || ' ' || CAST(days_after AS VARCHAR) || ' days before, from a ' || chemo_source
           || ', matched by ' || chemo_matched_by || ')' AS reasons
    FROM cand_ranked
    WHERE explained AND rn = 1 AND any_unexplained = 0
),
excluded_alt AS (
    SELECT patient_key, 'excluded' AS tier, 3 AS tier_order, grade AS score, date_lo AS finding_date,
           'breast cancer with bone metastases and ' || term || ' grade ' || CAST(grade AS VARCHAR)
           || ' on ' || CAST(date_lo AS VARCHAR) || ', but an alternative cause is on record: '
           || alt_causes AS reasons
    FROM alt_ranked
    WHERE rn = 1
),
hits AS (
    SELECT * FROM tier1
    UNION ALL SELECT * FROM tier2
    UNION ALL SELECT * FROM excluded_smear
    UNION ALL SELECT * FROM excluded_chemo
    UNION ALL SELECT * FROM excluded_alt
)
SELECT row_number() OVER (ORDER BY h.tier_order, h.score DESC, h.finding_date DESC,
                                   p.patient_id) AS rank,
       p.patient_id, h.tier, h.reasons, h.score AS worst_grade, h.finding_date,
       h.patient_key
FROM hits h
JOIN bmc_patient p ON p.patient_key = h.patient_key
ORDER BY rank

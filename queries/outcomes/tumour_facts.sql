-- Stage group, histologic grade and ER / PR / HER2 results: one row per Observation coding
-- that is one of them (queries/outcomes/codes.csv concepts stage_code, grade_code, marker), with
-- the coded answer mapped through codes.csv (stage, grade, marker_result) and the text kept.
-- Results count when their status is in the cohort's $result_statuses.
-- Parameters: $patient_keys VARCHAR[], $result_statuses VARCHAR[]. Reads ref_outcome_code
-- (queries/outcomes/codes.csv, registered by cohort/outcomes/records.py).
WITH codes AS (SELECT * FROM ref_outcome_code)
SELECT DISTINCT
    o.patient_key,
    o.resource_key,
    fhir_date_lo(o.effective_start) AS day,
    k.value AS fact,
    v.value AS coded_value,
    o.value_text
FROM observation o
JOIN codes k ON k.concept IN ('stage_code', 'grade_code', 'marker')
            AND k.system = o.code_system AND k.code = o.code
LEFT JOIN codes v ON v.concept = CASE k.concept WHEN 'stage_code' THEN 'stage'
                                                WHEN 'grade_code' THEN 'grade'
                                                ELSE 'marker_result' END
                 AND v.system = o.value_code_system AND v.code = o.value_code
WHERE list_contains($patient_keys, o.patient_key)
  AND o.value_source = 'value'
  AND list_contains($result_statuses, coalesce(o.status, 'unknown'))
ORDER BY o.patient_key, day

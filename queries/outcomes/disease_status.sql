-- Cancer disease status (mCODE CancerDiseaseStatus, LOINC 97509-4) mapped to PR / SD / PD / NE
-- / CR through queries/outcomes/codes.csv (concept 'response'); the text is kept.
-- Results count when their status is in the cohort's $result_statuses.
-- Parameters: $patient_keys VARCHAR[], $result_statuses VARCHAR[]. Reads ref_outcome_code
-- (queries/outcomes/codes.csv, registered by cohort/outcomes/records.py).
WITH codes AS (SELECT * FROM ref_outcome_code)
SELECT DISTINCT
    o.patient_key,
    o.resource_key,
    fhir_date_lo(o.effective_start) AS day,
    v.value AS response,
    o.value_text
FROM observation o
JOIN codes k ON k.concept = 'response_code' AND k.system = o.code_system AND k.code = o.code
LEFT JOIN codes v ON v.concept = 'response' AND v.system = o.value_code_system
                 AND v.code = o.value_code
WHERE list_contains($patient_keys, o.patient_key)
  AND o.value_source = 'value'
  AND list_contains($result_statuses, coalesce(o.status, 'unknown'))
ORDER BY o.patient_key, day

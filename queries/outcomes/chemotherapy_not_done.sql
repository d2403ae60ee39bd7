-- Chemotherapy procedures recorded as not done (offered but declined or cancelled): SNOMED
-- 367336001 (queries/outcomes/codes.csv concept 'chemo_procedure') with status not-done.
-- Parameters: $patient_keys VARCHAR[], $codes (CSV path).
WITH codes AS (SELECT * FROM read_csv($codes, header = true, all_varchar = true))
SELECT DISTINCT
    p.patient_key,
    p.resource_key,
    try_cast(left(coalesce(p.performed_start, p.performed_end), 10) AS DATE) AS day
FROM procedure p
JOIN codes k ON k.concept = 'chemo_procedure' AND k.system = p.system AND k.code = p.code
WHERE list_contains($patient_keys, p.patient_key) AND p.status = 'not-done'
ORDER BY p.patient_key

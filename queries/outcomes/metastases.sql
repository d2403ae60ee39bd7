-- Secondary cancer Conditions by site (queries/outcomes/codes.csv concept 'site': bone, marrow,
-- liver, brain, skin, lymph node) with their onset date: one row per Condition and site.
-- Parameters: $patient_keys VARCHAR[], $codes (CSV path).
WITH codes AS (SELECT * FROM read_csv($codes, header = true, all_varchar = true))
SELECT DISTINCT
    c.patient_key,
    c.resource_key,
    k.value AS site,
    try_cast(left(c.onset_date_time, 10) AS DATE) AS onset_date
FROM condition c
JOIN codes k ON k.concept = 'site' AND k.system = c.system AND k.code = c.code
WHERE list_contains($patient_keys, c.patient_key)
  AND c.verification_status IS DISTINCT FROM 'refuted'
  AND c.verification_status IS DISTINCT FROM 'entered-in-error'
ORDER BY c.patient_key, onset_date

-- Chemotherapy procedures recorded as not done (offered but declined or cancelled): value set
-- chemotherapy_procedure (SNOMED 367336001) as the cohort matched it (bmc_coded), status
-- not-done.
-- Parameters: $patient_keys VARCHAR[].
SELECT DISTINCT
    p.patient_key,
    p.resource_key,
    fhir_date_lo(coalesce(p.performed_start, p.performed_end)) AS day
FROM bmc_coded k
JOIN procedure p ON p._rid = k._rid
WHERE k.source = 'procedure' AND k.valueset = 'chemotherapy_procedure'
  AND list_contains($patient_keys, p.patient_key) AND p.status = 'not-done'
ORDER BY p.patient_key

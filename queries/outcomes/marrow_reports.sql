-- Bone-marrow pathology reports that prove BMC, as the cohort judged them (bmc_histology kind
-- 'marrow report' that proves: a marrow_report DiagnosticReport with a status in the cohort's
-- result_statuses whose conclusionCode, system and code, is in marrow_report_positive), dated
-- by effective[x] (else issued): the histology route of the paper.
-- Parameters: $patient_keys VARCHAR[].
SELECT DISTINCT
    patient_key,
    resource_key,
    date_lo AS day
FROM bmc_histology
WHERE kind = 'marrow report' AND proves AND list_contains($patient_keys, patient_key)
ORDER BY patient_key, day

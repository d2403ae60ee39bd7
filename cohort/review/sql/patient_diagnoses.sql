-- One patient's coded diagnoses: every coding of every Condition, with the value sets of the
-- definition it belongs to (bmc_coded) so a reviewer sees what the rules read.
-- Parameters: $patient_key
SELECT c.onset_date_time AS onset, c.system, c.code, coalesce(c.display, c.code_text) AS display,
       c.clinical_status, c.verification_status,
       string_agg(DISTINCT k.valueset, ', ' ORDER BY k.valueset) AS value_sets, c.resource_key
FROM condition c
LEFT JOIN bmc_coded k
       ON k.resource_key = c.resource_key AND k.system = c.system AND k.code = c.code
WHERE c.patient_key = $patient_key
GROUP BY ALL
ORDER BY onset NULLS LAST, c.resource_key, c.system, c.code

-- Secondary cancer Conditions by site, one row per Condition and site, with its onset date:
-- the value sets '<site>_metastasis' of queries/reference/valuesets.csv as the cohort matched
-- them (bmc_coded): bone, marrow, liver, brain, skin, lymph node (site = the value set's name
-- without '_metastasis', '_' read as a space). Refuted / entered-in-error ones do not count.
-- Parameters: $patient_keys VARCHAR[].
SELECT DISTINCT
    c.patient_key,
    c.resource_key,
    replace(replace(k.valueset, '_metastasis', ''), '_', ' ') AS site,
    fhir_date_lo(c.onset_date_time) AS onset_date
FROM bmc_coded k
JOIN condition c ON c._rid = k._rid
WHERE k.source = 'condition' AND k.valueset LIKE '%\_metastasis' ESCAPE '\'
  AND list_contains($patient_keys, c.patient_key)
  AND coalesce(c.verification_status, '') NOT IN ('refuted', 'entered-in-error')
ORDER BY c.patient_key, onset_date

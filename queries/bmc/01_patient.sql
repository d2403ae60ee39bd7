-- bmc_patient: the population. One row per current Patient: its key, its id (the cohort's
-- patient_id) and its sex as the range tables name it (female | male | unknown; FHIR
-- 'other' and missing gender are 'unknown', graded with the sex-neutral defaults).
-- Parameters: none.
SELECT resource_key AS patient_key,
       id AS patient_id,
       CASE gender WHEN 'female' THEN 'female' WHEN 'male' THEN 'male' ELSE 'unknown' END AS sex
FROM patient

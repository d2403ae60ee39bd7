-- Breast-cancer Conditions (value set breast_cancer of queries/reference/valuesets.csv as the
-- cohort matched it, bmc_coded; refuted / entered-in-error ones do not count, as in
-- bmc_breast_cancer) with their onset date and histology: one row per Condition coding that
-- is in the value set. Histology comes from the mCODE histology-morphology extension or from
-- a histology-specific condition code (queries/outcomes/codes.csv concept 'histology').
-- Parameters: $patient_keys VARCHAR[], $all_patients BOOLEAN (true: every patient, the keys
-- ignored; a flag rather than NULL keys, which Spark cannot type). Reads ref_outcome_code
-- (queries/outcomes/codes.csv, registered by cohort/outcomes/records.py).
WITH codes AS (SELECT * FROM ref_outcome_code)
SELECT
    c.patient_key,
    c.resource_key,
    fhir_date_lo(c.onset_date_time) AS onset_date,
    fhir_date_lo(c.recorded_date) AS recorded_date,
    morph.value AS histology_from_morphology,
    coded.value AS histology_from_code
FROM bmc_coded k
JOIN condition c ON c._rid = k._rid AND c.system = k.system AND c.code = k.code
LEFT JOIN codes morph ON morph.concept = 'histology' AND morph.system = c.histology_system
                     AND morph.code = c.histology_code
LEFT JOIN codes coded ON coded.concept = 'histology' AND coded.system = c.system AND coded.code = c.code
WHERE k.source = 'condition' AND k.valueset = 'breast_cancer'
  AND ($all_patients OR list_contains($patient_keys, c.patient_key))
  AND coalesce(c.verification_status, '') NOT IN ('refuted', 'entered-in-error')
ORDER BY c.patient_key, onset_date

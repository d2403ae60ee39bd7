-- bmc_breast_cancer: patients with breast cancer (value set breast_cancer: ICD-10-CM /
-- WHO ICD-10 C50.*, SNOMED codes of CODES.md §1.1), one row per patient with the earliest
-- onset (else recordedDate) of a breast-cancer Condition and how many there are.
-- Conditions whose verificationStatus is refuted or entered-in-error do not count; any
-- clinicalStatus does (a resolved or remitted breast cancer is still the patient's cancer).
-- Parameters: none.
WITH bc AS (
    SELECT DISTINCT c._rid, c.resource_key, c.patient_key, c.verification_status,
           coalesce(c.onset_date_time, c.recorded_date) AS date_text
    FROM bmc_coded k
    JOIN condition c ON c._rid = k._rid
    WHERE k.source = 'condition' AND k.valueset = 'breast_cancer'
      AND c.patient_key IS NOT NULL
      AND coalesce(c.verification_status, '') NOT IN ('refuted', 'entered-in-error')
)
SELECT bc.patient_key,
       min(d.date_lo) AS bc_date,
       count(DISTINCT bc.resource_key) AS n_conditions
FROM bc
LEFT JOIN bmc_date d ON d.text = bc.date_text
GROUP BY bc.patient_key

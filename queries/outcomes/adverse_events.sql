-- Complications recorded as Conditions: value sets febrile_neutropenia and bleeding of
-- queries/reference/valuesets.csv as the cohort matched them (bmc_coded), one row per
-- Condition and kind ('febrile neutropenia', 'bleeding'), with onset and abatement.
-- The CTCAE grade is Condition.severity: a coding of condition.severity_codings
-- ('system|code') that is an NCIt grade code (queries/outcomes/codes.csv concept 'ae_grade',
-- CODES.md §5.4); the highest when there are several, NULL when none is.
-- Parameters: $patient_keys VARCHAR[]. Reads ref_outcome_code (queries/outcomes/codes.csv,
-- registered by cohort/outcomes/records.py).
WITH codes AS (SELECT * FROM ref_outcome_code),
grades AS (
    SELECT s.resource_key, max(CAST(k.value AS INTEGER)) AS grade
    FROM (SELECT resource_key, unnest(severity_codings) AS coding FROM condition
          WHERE list_contains($patient_keys, patient_key)) s
    JOIN codes k ON k.concept = 'ae_grade' AND k.system || '|' || k.code = s.coding
    GROUP BY s.resource_key
)
SELECT DISTINCT
    c.patient_key,
    c.resource_key,
    replace(k.valueset, '_', ' ') AS kind,
    fhir_date_lo(c.onset_date_time) AS onset_date,
    fhir_date_lo(c.abatement_date_time) AS abatement_date,
    g.grade
FROM bmc_coded k
JOIN condition c ON c._rid = k._rid
LEFT JOIN grades g ON g.resource_key = c.resource_key
WHERE k.source = 'condition' AND k.valueset IN ('febrile_neutropenia', 'bleeding')
  AND list_contains($patient_keys, c.patient_key)
  AND coalesce(c.verification_status, '') NOT IN ('refuted', 'entered-in-error')
ORDER BY c.patient_key, onset_date

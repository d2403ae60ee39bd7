-- Complications recorded as Conditions: febrile neutropenia and bleeding (queries/outcomes/
-- codes.csv concept 'adverse'), one row per Condition and kind, with onset and abatement.
-- The CTCAE grade is Condition.severity: a coding of condition.severity_codings
-- ('system|code') that is an NCIt grade code (codes.csv concept 'ae_grade', CODES.md §5.4);
-- the highest when there are several, NULL when none is.
-- Parameters: $patient_keys VARCHAR[], $codes (CSV path).
WITH codes AS (SELECT * FROM read_csv($codes, header = true, all_varchar = true)),
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
    k.value AS kind,
    try_cast(left(c.onset_date_time, 10) AS DATE) AS onset_date,
    try_cast(left(c.abatement_date_time, 10) AS DATE) AS abatement_date,
    g.grade
FROM condition c
JOIN codes k ON k.concept = 'adverse' AND k.system = c.system AND k.code = c.code
LEFT JOIN grades g ON g.resource_key = c.resource_key
WHERE list_contains($patient_keys, c.patient_key)
  AND c.verification_status IS DISTINCT FROM 'refuted'
  AND c.verification_status IS DISTINCT FROM 'entered-in-error'
ORDER BY c.patient_key, onset_date

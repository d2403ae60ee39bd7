-- Complications recorded as Conditions: febrile neutropenia and bleeding (queries/outcomes/
-- codes.csv concept 'adverse'), one row per Condition and kind, with onset and abatement.
-- The CTCAE grade is Condition.severity (NCIt grade codes, CODES.md §5.4); the declared
-- condition table has no severity column yet, so the grade is NULL here and
-- cohort.outcomes.records.severity_from_sources fills it from the source files.
-- Parameters: $patient_keys VARCHAR[], $codes (CSV path).
WITH codes AS (SELECT * FROM read_csv($codes, header = true, all_varchar = true))
SELECT DISTINCT
    c.patient_key,
    c.resource_key,
    k.value AS kind,
    try_cast(left(c.onset_date_time, 10) AS DATE) AS onset_date,
    try_cast(left(c.abatement_date_time, 10) AS DATE) AS abatement_date,
    CAST(NULL AS INTEGER) AS grade
FROM condition c
JOIN codes k ON k.concept = 'adverse' AND k.system = c.system AND k.code = c.code
WHERE list_contains($patient_keys, c.patient_key)
  AND c.verification_status IS DISTINCT FROM 'refuted'
  AND c.verification_status IS DISTINCT FROM 'entered-in-error'
ORDER BY c.patient_key, onset_date

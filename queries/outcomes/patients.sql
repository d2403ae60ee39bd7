-- Patients of interest: sex, birth date, death date and the last dated record.
-- One row per patient key. The last record (the censoring date for survivors, CODES.md §9) is
-- the latest local calendar date (fhir_date_lo: a timestamp's date as written; a partial date's first day) of any encounter,
-- observation, medication administration, procedure or diagnostic report of the patient.
-- Observations and reports count when their status is in the cohort's $result_statuses.
-- Parameters: $patient_keys VARCHAR[] -- 'Patient/<id>' keys to return; $result_statuses VARCHAR[].
WITH wanted AS (SELECT DISTINCT unnest($patient_keys) AS patient_key),
dated AS (
    SELECT patient_key, period_start AS t FROM encounter
    UNION ALL SELECT patient_key, period_end FROM encounter
    UNION ALL SELECT patient_key, effective_start FROM observation
        WHERE list_contains($result_statuses, coalesce(status, 'unknown'))
    UNION ALL SELECT patient_key, effective_start FROM medication_administration
        WHERE status IS DISTINCT FROM 'entered-in-error' AND status IS DISTINCT FROM 'not-done'
    UNION ALL SELECT patient_key, performed_start FROM procedure
        WHERE status IS DISTINCT FROM 'entered-in-error' AND status IS DISTINCT FROM 'not-done'
    UNION ALL SELECT patient_key, effective_start FROM diagnostic_report
        WHERE list_contains($result_statuses, coalesce(status, 'unknown'))
),
last_record AS (
    SELECT d.patient_key, max(fhir_date_lo(d.t)) AS last_record_date
    FROM dated d JOIN wanted w USING (patient_key)
    GROUP BY d.patient_key
)
SELECT
    w.patient_key,
    p.id AS patient_id,
    p.gender,
    try_cast(p.birth_date AS DATE) AS birth_date,
    fhir_date_lo(p.deceased_date_time) AS death_date,
    coalesce(p.deceased_boolean, p.deceased_date_time IS NOT NULL) AS deceased,
    l.last_record_date
FROM wanted w
JOIN patient p ON p.resource_key = w.patient_key
LEFT JOIN last_record l ON l.patient_key = w.patient_key
ORDER BY w.patient_key

-- Anticancer drug administrations: one row per MedicationAdministration and ingredient
-- (queries/outcomes/codes.csv concept 'drug'), from medicationCodeableConcept codings or the
-- referenced Medication's codings. SNOMED 772118008 (pegylated liposomal doxorubicin) overrides
-- the RxNorm ingredient 3639 it shares with doxorubicin (CODES.md §8.1).
-- Only status completed / in-progress counts as exposure (CODES.md §8.2).
-- Parameters: $patient_keys VARCHAR[]. Reads ref_outcome_code (queries/outcomes/codes.csv,
-- registered by cohort/outcomes/records.py).
WITH codes AS (SELECT * FROM ref_outcome_code WHERE concept = 'drug'),
coded AS (
    SELECT a.patient_key, a.resource_key, a.effective_start, a.effective_end, a.dose_value,
           coalesce(a.dose_unit_code, a.dose_unit) AS dose_unit, k.value AS ingredient
    FROM medication_administration a
    JOIN codes k ON k.system = a.medication_system AND k.code = a.medication_code
    WHERE list_contains($patient_keys, a.patient_key) AND a.status IN ('completed', 'in-progress')
    UNION
    SELECT a.patient_key, a.resource_key, a.effective_start, a.effective_end, a.dose_value,
           coalesce(a.dose_unit_code, a.dose_unit), k.value
    FROM medication_administration a
    JOIN medication m ON m.resource_key = a.medication_key
    JOIN codes k ON k.system = m.system AND k.code = m.code
    WHERE list_contains($patient_keys, a.patient_key) AND a.status IN ('completed', 'in-progress')
)
SELECT DISTINCT
    c.patient_key,
    c.resource_key,
    c.effective_start AS given_at,
    fhir_date_lo(c.effective_start) AS day,
    c.ingredient,
    c.dose_value,
    c.dose_unit
FROM coded c
WHERE NOT (c.ingredient = 'doxorubicin'
           AND EXISTS (SELECT 1 FROM coded l WHERE l.resource_key = c.resource_key
                                             AND l.ingredient = 'liposomal doxorubicin'))
ORDER BY c.patient_key, given_at, c.ingredient

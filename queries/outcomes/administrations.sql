-- Anticancer drug administrations: one row per MedicationAdministration and ingredient
-- (queries/outcomes/codes.csv concept 'drug'), from medicationCodeableConcept codings or the
-- referenced Medication's codings. SNOMED 772118008 (pegylated liposomal doxorubicin) overrides
-- the RxNorm ingredient 3639 it shares with doxorubicin (CODES.md §8.1).
-- Only status completed / in-progress counts as exposure (CODES.md §8.2).
-- bsa_m2: the patient's body surface area that the dose was calculated on, the latest
-- Observation of concept 'body_surface_area' (LOINC 8277-6) dated on or before the
-- administration day, in the concept's unit (UCUM m2), with a status in $result_statuses;
-- NULL when none is recorded (then a dose per m2 cannot be read).
-- Parameters: $patient_keys VARCHAR[], $result_statuses VARCHAR[]. Reads ref_outcome_code
-- (queries/outcomes/codes.csv, registered by cohort/outcomes/records.py).
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
),
given AS (
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
),
bsa AS (
    SELECT o.patient_key, fhir_date_lo(o.effective_start) AS day, o.value_quantity AS bsa_m2
    FROM observation o
    JOIN ref_outcome_code k ON k.concept = 'body_surface_area' AND k.system = o.code_system
                           AND k.code = o.code AND k.value = o.value_unit_code
    WHERE list_contains($patient_keys, o.patient_key)
      AND o.value_source = 'value' AND o.value_quantity > 0
      AND list_contains($result_statuses, coalesce(o.status, 'unknown'))
),
latest_bsa AS (
    SELECT g.resource_key, g.ingredient, b.bsa_m2,
           row_number() OVER (PARTITION BY g.resource_key, g.ingredient
                              ORDER BY b.day DESC, b.bsa_m2 DESC) AS rn
    FROM given g
    JOIN bsa b ON b.patient_key = g.patient_key AND b.day <= g.day
)
SELECT g.patient_key, g.resource_key, g.given_at, g.day, g.ingredient, g.dose_value, g.dose_unit,
       b.bsa_m2
FROM given g
LEFT JOIN latest_bsa b ON b.resource_key = g.resource_key AND b.ingredient = g.ingredient
                      AND b.rn = 1
ORDER BY g.patient_key, g.given_at, g.ingredient

-- Blood counts in canonical units with the lower limit of normal that applies to the patient.
-- One row per result (an Observation's own value or a panel component) for the analytes of
-- queries/reference/lab_codes.csv (hgb, plt, wbc, anc, nrbc_ratio, nrbc_abs), converted with
-- queries/reference/units.csv. The LLN is the result's own referenceRange.low (the range whose
-- appliesTo matches the patient's sex, else a range without appliesTo), converted like the
-- value; without one, the default of queries/reference/default_ranges.csv (CODES.md §4.3).
-- Cancelled and entered-in-error results are left out; results in an unknown unit are kept
-- with value NULL so they can be counted, never guessed.
-- Parameters: $patient_keys VARCHAR[], $lab_codes, $units, $default_ranges (CSV paths).
WITH lab_codes AS (SELECT * FROM read_csv($lab_codes, header = true, all_varchar = true)),
units AS (SELECT analyte, unit, canonical_unit, CAST(factor AS DOUBLE) AS factor
          FROM read_csv($units, header = true, all_varchar = true)),
defaults AS (SELECT analyte, sex, try_cast(low AS DOUBLE) AS low
             FROM read_csv($default_ranges, header = true, all_varchar = true)),
sex AS (SELECT resource_key AS patient_key,
               CASE gender WHEN 'female' THEN 'female' WHEN 'male' THEN 'male' ELSE 'unknown' END AS sex,
               CASE gender WHEN 'female' THEN '248152002' WHEN 'male' THEN '248153007' END AS sex_code
        FROM patient),
results AS (
    SELECT DISTINCT o.patient_key, o.resource_key, o.value_source, o.component_index,
           o.effective_start, l.analyte, o.value_quantity, o.value_comparator,
           coalesce(o.value_unit_code, o.value_unit) AS unit_code, o.value_unit
    FROM observation o
    JOIN lab_codes l ON l.system = o.code_system AND l.code = o.code
    WHERE list_contains($patient_keys, o.patient_key)
      AND o.status IS DISTINCT FROM 'entered-in-error'
      AND o.status IS DISTINCT FROM 'cancelled'
      AND o.value_quantity IS NOT NULL
),
ranges AS (
    SELECT r.resource_key, r.value_source, r.component_index, r.low_value, r.low_unit,
           r.applies_to_codes
    FROM observation_reference_range r
    WHERE list_contains($patient_keys, r.patient_key) AND r.low_value IS NOT NULL
),
with_range AS (
    SELECT res.*, s.sex,
           (SELECT rg.low_value FROM ranges rg
             WHERE rg.resource_key = res.resource_key AND rg.value_source = res.value_source
               AND rg.component_index IS NOT DISTINCT FROM res.component_index
               AND (len(rg.applies_to_codes) = 0 OR list_contains(rg.applies_to_codes, s.sex_code))
             ORDER BY len(rg.applies_to_codes) DESC LIMIT 1) AS own_low
    FROM results res JOIN sex s USING (patient_key)
)
SELECT
    w.patient_key,
    w.resource_key,
    w.effective_start AS taken_at,
    try_cast(left(w.effective_start, 10) AS DATE) AS day,
    w.analyte,
    w.value_quantity * u.factor AS value,
    w.value_comparator AS comparator,
    u.canonical_unit AS unit,
    coalesce(w.own_low * u.factor,
             (SELECT d.low FROM defaults d WHERE d.analyte = w.analyte AND d.sex IN (w.sex, 'any')
              ORDER BY (d.sex = 'any') LIMIT 1)) AS lln,
    w.own_low IS NOT NULL AS lln_from_result
FROM with_range w
LEFT JOIN units u ON u.analyte = w.analyte AND (u.unit = w.unit_code OR u.unit = w.value_unit)
QUALIFY row_number() OVER (PARTITION BY w.resource_key, w.value_source, w.component_index, w.analyte
                           ORDER BY (u.unit = w.unit_code) DESC) = 1
ORDER BY w.patient_key, taken_at, w.analyte

-- Breast-cancer Conditions (value set breast_cancer of queries/reference/valuesets.csv) with
-- their onset date and histology: one row per Condition coding that is in the value set.
-- Histology comes from the mCODE histology-morphology extension or from a histology-specific
-- condition code (queries/outcomes/codes.csv concept 'histology').
-- Parameters: $patient_keys VARCHAR[] (NULL = every patient), $valuesets, $codes (CSV paths).
WITH vs AS (
    SELECT * FROM read_csv($valuesets, header = true, all_varchar = true)
    WHERE valueset = 'breast_cancer'
),
codes AS (SELECT * FROM read_csv($codes, header = true, all_varchar = true))
SELECT
    c.patient_key,
    c.resource_key,
    try_cast(left(c.onset_date_time, 10) AS DATE) AS onset_date,
    try_cast(left(c.recorded_date, 10) AS DATE) AS recorded_date,
    morph.value AS histology_from_morphology,
    coded.value AS histology_from_code
FROM condition c
JOIN vs ON vs.system = c.system
       AND (c.code = vs.code
            OR (vs.match = 'prefix' AND replace(c.code, '.', '') LIKE replace(vs.code, '.', '') || '%'))
LEFT JOIN codes morph ON morph.concept = 'histology' AND morph.system = c.histology_system
                     AND morph.code = c.histology_code
LEFT JOIN codes coded ON coded.concept = 'histology' AND coded.system = c.system AND coded.code = c.code
WHERE ($patient_keys IS NULL OR list_contains($patient_keys, c.patient_key))
  AND c.verification_status IS DISTINCT FROM 'refuted'
  AND c.verification_status IS DISTINCT FROM 'entered-in-error'
ORDER BY c.patient_key, onset_date

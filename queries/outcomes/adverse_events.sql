-- Complications recorded as Conditions, one row per Condition and kind, with onset and
-- abatement: value sets febrile_neutropenia and bleeding of queries/reference/valuesets.csv
-- as the cohort matched them (bmc_coded; kinds 'febrile neutropenia', 'bleeding'), and the
-- non-haematological toxicities of queries/outcomes/codes.csv concept 'toxicity' (kind = its
-- value, 'non-haematological toxicity'; e.g. oral mucositis delaying a cycle).
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
),
kinds AS (
    SELECT c._rid, replace(k.valueset, '_', ' ') AS kind
    FROM bmc_coded k
    JOIN condition c ON c._rid = k._rid
    WHERE k.source = 'condition' AND k.valueset IN ('febrile_neutropenia', 'bleeding')
    UNION
    SELECT c._rid, t.value AS kind
    FROM condition c
    JOIN codes t ON t.concept = 'toxicity' AND t.system = c.system AND t.code = c.code
)
SELECT DISTINCT
    c.patient_key,
    c.resource_key,
    k.kind,
    fhir_date_lo(c.onset_date_time) AS onset_date,
    fhir_date_lo(c.abatement_date_time) AS abatement_date,
    g.grade
FROM kinds k
JOIN condition c ON c._rid = k._rid
LEFT JOIN grades g ON g.resource_key = c.resource_key
WHERE list_contains($patient_keys, c.patient_key)
  AND coalesce(c.verification_status, '') NOT IN ('refuted', 'entered-in-error')
ORDER BY c.patient_key, onset_date

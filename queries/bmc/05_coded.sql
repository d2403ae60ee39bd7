-- bmc_coded: every coding of a Condition, DiagnosticReport.code (source 'diagnostic_report')
-- or conclusionCode (source 'diagnostic_report_conclusion'), Procedure or
-- MedicationAdministration medication (its own codings, a contained Medication's, or the
-- referenced Medication's code and ingredients) that falls in a value set of
-- ref_valueset, joined on (system, code). ICD-10-CM / WHO ICD-10 codes are compared without
-- dots and upper-cased on both sides (systems listed in ref_code_system); 'prefix' rows match
-- every code that starts with them (C50 -> C50.912). One row per resource, value set and
-- matching coding.
-- Parameters: none.
WITH vs AS (
    SELECT v.valueset, v.system, v.code, v.match, v.display,
           CASE WHEN cs.strip_dots THEN upper(replace(v.code, '.', '')) ELSE v.code END AS code_key
    FROM ref_valueset v
    LEFT JOIN ref_code_system cs ON cs.system = v.system
),
codings AS (
    SELECT DISTINCT 'condition' AS source, _rid, resource_key, patient_key, system, code, display
    FROM condition WHERE code IS NOT NULL
    UNION ALL
    SELECT DISTINCT 'diagnostic_report', _rid, resource_key, patient_key, system, code, display
    FROM diagnostic_report WHERE code IS NOT NULL
    UNION ALL
    SELECT DISTINCT 'diagnostic_report_conclusion', _rid, resource_key, patient_key,
           split_part(coding, '|', 1), substr(coding, strpos(coding, '|') + 1), NULL
    FROM (SELECT _rid, resource_key, patient_key, unnest(conclusion_codings) AS coding
          FROM diagnostic_report) c
    UNION ALL
    SELECT DISTINCT 'procedure', _rid, resource_key, patient_key, system, code, display
    FROM procedure WHERE code IS NOT NULL
    UNION ALL
    SELECT DISTINCT 'medication_administration', _rid, resource_key, patient_key,
           medication_system, medication_code, medication_display
    FROM medication_administration WHERE medication_code IS NOT NULL
    UNION ALL
    SELECT DISTINCT 'medication_administration', a._rid, a.resource_key, a.patient_key,
           m.system, m.code, m.display
    FROM medication_administration a
    JOIN medication m ON m.resource_key = a.medication_key
    WHERE m.code IS NOT NULL
),
keyed AS (
    SELECT c.*,
           CASE WHEN cs.strip_dots THEN upper(replace(c.code, '.', '')) ELSE c.code END AS code_key
    FROM codings c
    LEFT JOIN ref_code_system cs ON cs.system = c.system
)
SELECT DISTINCT k.source, k._rid, k.resource_key, k.patient_key, vs.valueset,
       k.system, k.code, coalesce(k.display, vs.display) AS display
FROM keyed k
JOIN vs ON vs.system = k.system
       AND ((vs.match = 'exact' AND k.code_key = vs.code_key)
         OR (vs.match = 'prefix' AND starts_with(k.code_key, vs.code_key)))

-- bmc_coded: every coding of a Condition, DiagnosticReport.code (source 'diagnostic_report')
-- or conclusionCode (source 'diagnostic_report_conclusion'), Procedure, MedicationAdministration
-- or MedicationRequest medication (its own codings, a contained Medication's, or the
-- referenced Medication's code and ingredients) that falls in a value set of
-- ref_valueset, joined on (system, code). ICD-10-CM / WHO ICD-10 / ICD-9-CM / ICD-O-3 codes are
-- compared without dots and upper-cased on both sides (systems listed in ref_code_system);
-- 'prefix' rows match every code that starts with them (C50 -> C50.912). One row per
-- resource, value set and matching coding; matched_by = 'code'.
-- Medications whose codings match no code of a value set (clinical-drug RxNorm codes: SCD/SBD,
-- which only an RxNorm release rolls up to their ingredient) are matched by name: a
-- ref_drug_name ingredient name found in the lower-cased coding display (matched_by
-- 'ingredient name in display') or in the medication text (matched_by 'ingredient name in
-- text'); system/code are then the medication's own, display names the ingredient.
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
    UNION ALL
    SELECT DISTINCT 'medication_request', _rid, resource_key, patient_key,
           medication_system, medication_code, medication_display
    FROM medication_request WHERE medication_code IS NOT NULL
    UNION ALL
    SELECT DISTINCT 'medication_request', r._rid, r.resource_key, r.patient_key,
           m.system, m.code, m.display
    FROM medication_request r
    JOIN medication m ON m.resource_key = r.medication_key
    WHERE m.code IS NOT NULL
    UNION ALL
    SELECT DISTINCT 'medication_request', _rid, resource_key, patient_key,
           split_part(coding, '|', 1), substr(coding, strpos(coding, '|') + 1), NULL
    FROM (SELECT _rid, resource_key, patient_key, unnest(contained_medication_codings) AS coding
          FROM medication_request) c
),
keyed AS (
    SELECT c.*,
           CASE WHEN cs.strip_dots THEN upper(replace(c.code, '.', '')) ELSE c.code END AS code_key
    FROM codings c
    LEFT JOIN ref_code_system cs ON cs.system = c.system
),
by_code AS (
    SELECT DISTINCT k.source, k._rid, k.resource_key, k.patient_key, vs.valueset,
           k.system, k.code, coalesce(k.display, vs.display) AS display, 'code' AS matched_by
    FROM keyed k
    JOIN vs ON vs.system = k.system
           AND ((vs.match = 'exact' AND k.code_key = vs.code_key)
             OR (vs.match = 'prefix' AND starts_with(k.code_key, vs.code_key)))
),
med_texts AS (
    -- every display and text a medication resource carries, for the name fallback
    SELECT source, _rid, resource_key, patient_key, system, code,
           lower(display) AS words, 'ingredient name in display' AS matched_by
    FROM keyed
    WHERE source IN ('medication_administration', 'medication_request') AND display IS NOT NULL
    UNION ALL
    SELECT 'medication_administration', _rid, resource_key, patient_key, medication_system,
           medication_code, lower(medication_text), 'ingredient name in text'
    FROM medication_administration WHERE medication_text IS NOT NULL
    UNION ALL
    SELECT 'medication_administration', a._rid, a.resource_key, a.patient_key, a.medication_system,
           a.medication_code, lower(m.code_text), 'ingredient name in text'
    FROM medication_administration a
    JOIN medication m ON m.resource_key = a.medication_key
    WHERE m.code_text IS NOT NULL
    UNION ALL
    SELECT 'medication_request', _rid, resource_key, patient_key, medication_system,
           medication_code, lower(coalesce(medication_text, contained_medication_text)),
           'ingredient name in text'
    FROM medication_request
    WHERE coalesce(medication_text, contained_medication_text) IS NOT NULL
    UNION ALL
    SELECT 'medication_request', r._rid, r.resource_key, r.patient_key, r.medication_system,
           r.medication_code, lower(m.code_text), 'ingredient name in text'
    FROM medication_request r
    JOIN medication m ON m.resource_key = r.medication_key
    WHERE m.code_text IS NOT NULL
),
by_name AS (
    SELECT DISTINCT t.source, t._rid, t.resource_key, t.patient_key, n.valueset,
           t.system, t.code, n.name AS display, t.matched_by
    FROM med_texts t
    JOIN ref_drug_name n ON strpos(t.words, n.name) > 0
),
both_ways AS (
    SELECT *,
           max(CASE WHEN matched_by = 'code' THEN 1 ELSE 0 END)
               OVER (PARTITION BY _rid, valueset) AS has_code
    FROM (SELECT * FROM by_code UNION ALL SELECT * FROM by_name) u
)
-- a name match only where no code of the resource matched that value set
SELECT source, _rid, resource_key, patient_key, valueset, system, code, display, matched_by
FROM both_ways
WHERE matched_by = 'code' OR has_code = 0

-- bmc_screen_chemo: myelosuppressive chemotherapy given or ordered, one row per resource:
--   * MedicationAdministration (kind 'administration', status completed or in-progress,
--     CODES.md §8.2), dated by effective[x] (start..end);
--   * MedicationRequest (kind 'request': an order, status active, completed or stopped --
--     Synthea closes every finished order as 'stopped'; intent order / original-order /
--     reflex-order / filler-order / instance-order, not a proposal or plan), dated by
--     authoredOn (an order is taken as given on the day it was written);
--   * Procedure (kind 'procedure', status completed or in-progress) in value set
--     chemotherapy_procedure (SNOMED 367336001, 703423002, 394894008; CPT 96413), dated by
--     performed[x] (start..end).
-- A medication counts when it is in value set chemotherapy (RxNorm ingredients and products,
-- ATC L01A-L01D, L01XA platinum, L01EF CDK4/6, SNOMED substances of CODES.md §8.1;
-- trastuzumab is left out: it does not suppress the marrow) by code, or by the ingredient
-- name in its display or text (bmc_coded.matched_by says which: 'code', 'ingredient name in
-- display', 'ingredient name in text'). source_type names the FHIR resource type.
-- Parameters: none.
WITH med AS (
    SELECT k._rid, k.source,
           min(k.display) AS drug,
           min(CASE k.matched_by WHEN 'code' THEN 1 WHEN 'ingredient name in display' THEN 2
                                 ELSE 3 END) AS how
    FROM bmc_coded k
    WHERE k.source IN ('medication_administration', 'medication_request')
      AND k.valueset = 'chemotherapy'
    GROUP BY k._rid, k.source
),
admin AS (
    SELECT a._rid, a.resource_key, a.patient_key, m.drug, m.how,
           a.effective_start AS start_text, coalesce(a.effective_end, a.effective_start) AS end_text
    FROM med m
    JOIN medication_administration a ON a._rid = m._rid
    WHERE m.source = 'medication_administration'
      AND a.status IN ('completed', 'in-progress') AND a.patient_key IS NOT NULL
),
request AS (
    SELECT DISTINCT r._rid, r.resource_key, r.patient_key, m.drug, m.how,
           r.authored_on AS start_text, r.authored_on AS end_text
    FROM med m
    JOIN medication_request r ON r._rid = m._rid
    WHERE m.source = 'medication_request'
      AND r.status IN ('active', 'completed', 'stopped')
      AND r.intent IN ('order', 'original-order', 'reflex-order', 'filler-order', 'instance-order')
      AND r.patient_key IS NOT NULL
),
proc AS (
    SELECT p._rid, p.resource_key, p.patient_key, min(k.display) AS drug, 1 AS how,
           p.performed_start AS start_text, coalesce(p.performed_end, p.performed_start) AS end_text
    FROM bmc_coded k
    JOIN procedure p ON p._rid = k._rid
    WHERE k.source = 'procedure' AND k.valueset = 'chemotherapy_procedure'
      AND p.status IN ('completed', 'in-progress') AND p.patient_key IS NOT NULL
    GROUP BY p._rid, p.resource_key, p.patient_key, p.performed_start, p.performed_end
),
given AS (
    SELECT *, 'administration' AS kind, 'MedicationAdministration' AS source_type FROM admin
    UNION ALL
    SELECT *, 'request' AS kind, 'MedicationRequest' AS source_type FROM request
    UNION ALL
    SELECT *, 'procedure' AS kind, 'Procedure' AS source_type FROM proc
)
SELECT g.patient_key, g.resource_key, g._rid, g.kind, g.drug,
       d1.date_lo, coalesce(d2.date_hi, d1.date_hi) AS date_hi, g.source_type,
       CASE g.how WHEN 1 THEN 'code' WHEN 2 THEN 'ingredient name in display'
                  ELSE 'ingredient name in text' END AS matched_by
FROM given g
JOIN bmc_date d1 ON d1.text = g.start_text
LEFT JOIN bmc_date d2 ON d2.text = g.end_text

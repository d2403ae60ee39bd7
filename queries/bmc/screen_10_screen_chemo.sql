-- bmc_screen_chemo: myelosuppressive chemotherapy given, one row per administration or
-- chemotherapy procedure: MedicationAdministrations (status completed or in-progress,
-- CODES.md §8.2) whose medication is in value set chemotherapy (RxNorm ingredients and
-- products, ATC L01A-L01D, SNOMED substances of CODES.md §8.1; trastuzumab is left out: it
-- does not suppress the marrow), and Procedures in chemotherapy_procedure (SNOMED
-- 367336001). Dated by effective[x] / performed[x] (start..end).
-- Parameters: none.
WITH admin AS (
    SELECT a._rid, a.resource_key, a.patient_key, min(k.display) AS drug,
           a.effective_start AS start_text, coalesce(a.effective_end, a.effective_start) AS end_text
    FROM bmc_coded k
    JOIN medication_administration a ON a._rid = k._rid
    WHERE k.source = 'medication_administration' AND k.valueset = 'chemotherapy'
      AND a.status IN ('completed', 'in-progress') AND a.patient_key IS NOT NULL
    GROUP BY a._rid, a.resource_key, a.patient_key, a.effective_start, a.effective_end
),
proc AS (
    SELECT p._rid, p.resource_key, p.patient_key, min(k.display) AS drug,
           p.performed_start AS start_text, coalesce(p.performed_end, p.performed_start) AS end_text
    FROM bmc_coded k
    JOIN procedure p ON p._rid = k._rid
    WHERE k.source = 'procedure' AND k.valueset = 'chemotherapy_procedure'
      AND p.status IN ('completed', 'in-progress') AND p.patient_key IS NOT NULL
    GROUP BY p._rid, p.resource_key, p.patient_key, p.performed_start, p.performed_end
),
given AS (
    SELECT *, 'administration' AS kind FROM admin
    UNION ALL
    SELECT *, 'procedure' AS kind FROM proc
)
SELECT g.patient_key, g.resource_key, g._rid, g.kind, g.drug,
       d1.date_lo, coalesce(d2.date_hi, d1.date_hi) AS date_hi
FROM given g
JOIN bmc_date d1 ON d1.text = g.start_text
LEFT JOIN bmc_date d2 ON d2.text = g.end_text

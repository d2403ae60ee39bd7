-- bmc_exclusion: alternative causes of a leuko-erythroblastic picture or of cytopenia
-- (CODES.md §7; issue 11 §3b), one row per patient and resource: a Condition in one of the
-- value sets $alt_cause_valuesets (by default haemolytic anaemia, MDS, MPN / myelofibrosis,
-- haematological malignancy, marrow transplant, marrow failure) whose verificationStatus is
-- not refuted / entered-in-error, or a Procedure in one of them (a marrow transplant) whose
-- status is not entered-in-error / not-done, recorded at any time -- a record rarely says
-- when such a disease began, and a patient who has one needs a marrow biopsy, not a smear, to
-- prove BMC. Empty when $exclude_alt_causes is false. Only the smear route is excluded (see
-- 65_patient_rule.sql); the screen's tier 1 and tier 2 show these patients as 'excluded'.
-- Parameters: $alt_cause_valuesets, $exclude_alt_causes
SELECT DISTINCT c.patient_key, c.resource_key, c._rid, k.valueset, k.system, k.code, k.display,
       d.date_lo, d.precision AS date_precision
FROM bmc_coded k
JOIN condition c ON c._rid = k._rid
LEFT JOIN bmc_date d ON d.text = coalesce(c.onset_date_time, c.recorded_date)
WHERE $exclude_alt_causes
  AND k.source = 'condition'
  AND list_contains($alt_cause_valuesets, k.valueset)
  AND c.patient_key IS NOT NULL
  AND coalesce(c.verification_status, '') NOT IN ('refuted', 'entered-in-error')
UNION
SELECT DISTINCT p.patient_key, p.resource_key, p._rid, k.valueset, k.system, k.code, k.display,
       d.date_lo, d.precision AS date_precision
FROM bmc_coded k
JOIN procedure p ON p._rid = k._rid
LEFT JOIN bmc_date d ON d.text = p.performed_start
WHERE $exclude_alt_causes
  AND k.source = 'procedure'
  AND list_contains($alt_cause_valuesets, k.valueset)
  AND p.patient_key IS NOT NULL
  AND coalesce(p.status, '') NOT IN ('entered-in-error', 'not-done')

-- bmc_exclusion: alternative causes of a leuko-erythroblastic picture (CODES.md §7), one
-- row per patient and Condition: a Condition in one of the value sets $alt_cause_valuesets
-- (haemolytic anaemia, MDS, MPN / myelofibrosis by default) whose verificationStatus is not
-- refuted / entered-in-error, recorded at any time -- a record rarely says when such a
-- disease began, and a patient who has one needs a marrow biopsy, not a smear, to prove BMC.
-- Empty when $exclude_alt_causes is false. Only the smear route is excluded (see
-- 65_patient_rule.sql).
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

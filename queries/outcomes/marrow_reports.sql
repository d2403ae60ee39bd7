-- Bone-marrow pathology reports (value set marrow_report) whose coded conclusion shows
-- carcinoma (value set marrow_report_positive; conclusionCode codes are matched without their
-- system, which the declared table does not keep): the histology route of the paper.
-- Parameters: $patient_keys VARCHAR[], $valuesets (CSV path).
WITH vs AS (SELECT * FROM read_csv($valuesets, header = true, all_varchar = true)),
positive AS (SELECT list(code) AS codes FROM vs WHERE valueset = 'marrow_report_positive')
SELECT DISTINCT
    r.patient_key,
    r.resource_key,
    try_cast(left(r.effective_start, 10) AS DATE) AS day
FROM diagnostic_report r
JOIN vs ON vs.valueset = 'marrow_report' AND vs.system = r.system AND vs.code = r.code
CROSS JOIN positive
WHERE list_contains($patient_keys, r.patient_key)
  AND r.status IN ('preliminary', 'final', 'amended', 'corrected', 'appended')
  AND list_has_any(r.conclusion_codes, positive.codes)
ORDER BY r.patient_key, day

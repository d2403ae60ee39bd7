-- bmc_scope: the patients whose blood counts the definition and the screen can ever use,
-- one row each: anyone with an nRBC result (LOINC of ref_lab_code analytes nrbc_ratio /
-- nrbc_abs, any status or value), a bone or marrow metastasis Condition, or a marrow report.
-- Counts of everybody else cannot change a rule (the smear route needs an nRBC result;
-- index grades need marrow evidence; screen tier 2 needs bone metastases), so bmc_lab and
-- bmc_lab_grade hold only these patients' counts -- about a quarter of an institution's.
-- Parameters: none.
SELECT DISTINCT o.patient_key
FROM observation o
JOIN ref_lab_code l ON l.system = o.code_system AND l.code = o.code
WHERE l.analyte IN ('nrbc_ratio', 'nrbc_abs') AND o.patient_key IS NOT NULL
UNION
SELECT patient_key
FROM bmc_coded
WHERE valueset IN ('bone_metastasis', 'marrow_metastasis', 'marrow_report')
  AND source IN ('condition', 'diagnostic_report') AND patient_key IS NOT NULL

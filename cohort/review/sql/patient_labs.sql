-- One patient's usable blood counts for the lab timeline: canonical value, unit and LLN.
-- Parameters: $patient_key $analytes
SELECT analyte, date_lo AS date, value, unit, comparator, lln, lln_source, resource_key
FROM bmc_lab
WHERE patient_key = $patient_key AND usable AND value IS NOT NULL
  AND list_contains($analytes, analyte)
ORDER BY analyte, date_lo, resource_key

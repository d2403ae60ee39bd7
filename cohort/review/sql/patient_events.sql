-- One patient's events for the timeline: chemotherapy given (bmc_screen_chemo) and marrow
-- reports and marrow conditions (bmc_histology, with whether each proves BMC).
-- Parameters: $patient_key
SELECT 'chemotherapy' AS kind, date_lo AS date, drug AS label, NULL::BOOLEAN AS proves,
       resource_key
FROM bmc_screen_chemo WHERE patient_key = $patient_key
UNION ALL
SELECT kind, date_lo, coalesce(basis, kind), proves, resource_key
FROM bmc_histology WHERE patient_key = $patient_key
ORDER BY date, kind, resource_key

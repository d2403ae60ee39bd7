-- bmc_lab: step 3 of the lab chain. Every value of bmc_lab_value with its LLN (bmc_lab_lln)
-- and whether it may be used at all (usable; else not_used_reason says why):
--   * its status is in $result_statuses (entered-in-error / cancelled never count);
--   * it is not a preliminary result superseded by a final one of the same time;
--   * it has a date;
--   * nRBC rows only need a value (any nRBC > 0 is abnormal whatever the unit), every other
--     analyte needs unit_status 'ok'.
-- Parameters: $result_statuses
WITH labs AS (
SELECT v._rid, v.resource_key, v.patient_key, v.value_source, v.component_no, v.analyte,
       v.code, v.status, v.effective_start AS effective_text,
       v.date_lo, v.date_hi, v.date_precision,
       v.value_raw, v.comparator, v.unit_raw, v.value, v.unit, v.unit_status,
       n.lln, n.lln_source, v.nrbc_present,
       CASE WHEN NOT list_contains($result_statuses, coalesce(v.status, 'unknown'))
                 THEN 'status ' || coalesce(v.status, 'missing')
            WHEN v.is_superseded
                 THEN 'preliminary, superseded by a final result of the same time'
            WHEN v.date_lo IS NULL THEN 'no date'
            WHEN v.is_nrbc AND v.value_raw IS NULL THEN 'no value'
            WHEN NOT v.is_nrbc AND v.unit_status <> 'ok'
                 THEN v.unit_status || CASE WHEN v.unit_raw IS NOT NULL
                                            THEN ' (' || v.unit_raw || ')' ELSE '' END
       END AS not_used_reason
FROM bmc_lab_value v
LEFT JOIN bmc_lab_lln n ON n._rid = v._rid AND n.value_source = v.value_source
     AND n.component_no = v.component_no AND n.analyte = v.analyte
)
SELECT *, not_used_reason IS NULL AS usable
FROM labs

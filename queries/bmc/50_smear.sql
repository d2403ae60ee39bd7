-- bmc_smear: the smear route, one row per pair of an nRBC-positive result (nRBC > 0 per 100
-- leukocytes, LOINC 58413-6 / 19048-8, or absolute 771-6; usable in bmc_lab) and a
-- cytopenia of the same patient: a usable value of a lineage in $cytopenia_lineages graded
-- >= $cytopenia_min_grade (bmc_lab_grade), dated within $smear_window_days days before or
-- after the nRBC result (the two date intervals come that close; both ends inclusive, so
-- +14 days is inside a 14-day window and +15 is not). The pair is dated (met_date) by the
-- nRBC result when $smear_index_date = 'nrbc' -- the smear is the diagnostic test, the
-- counts around it are its context -- or by the later of the two when 'both-met'.
-- Parameters: $cytopenia_lineages, $cytopenia_min_grade, $smear_window_days, $smear_index_date
WITH nrbc AS (
    SELECT _rid, resource_key, patient_key, analyte, code, date_lo, date_hi, date_precision,
           value, value_raw, unit, unit_raw, comparator
    FROM bmc_lab
    WHERE usable AND nrbc_present
),
cyto AS (
    SELECT _rid, resource_key, patient_key, analyte, lineage, code, date_lo, date_hi,
           value, unit, comparator, lln, lln_source, grade, term
    FROM bmc_lab_grade
    WHERE list_contains($cytopenia_lineages, lineage) AND grade >= $cytopenia_min_grade
)
SELECT n.patient_key,
       n.resource_key AS nrbc_key, n._rid AS nrbc_rid, n.analyte AS nrbc_analyte,
       n.value_raw AS nrbc_value, n.unit_raw AS nrbc_unit, n.comparator AS nrbc_comparator,
       n.date_lo AS nrbc_date, n.date_precision AS nrbc_date_precision,
       c.resource_key AS cyto_key, c._rid AS cyto_rid, c.lineage, c.term, c.grade,
       c.value AS cyto_value, c.unit AS cyto_unit, c.comparator AS cyto_comparator,
       c.lln, c.lln_source, c.date_lo AS cyto_date,
       date_diff('day', n.date_lo, c.date_lo) AS days_from_nrbc,
       CASE WHEN $smear_index_date = 'both-met' AND c.date_lo > n.date_lo THEN c.date_lo
            ELSE n.date_lo END AS met_date
FROM nrbc n
JOIN cyto c ON c.patient_key = n.patient_key
WHERE date_diff('day', n.date_hi, c.date_lo) <= $smear_window_days
  AND date_diff('day', c.date_hi, n.date_lo) <= $smear_window_days

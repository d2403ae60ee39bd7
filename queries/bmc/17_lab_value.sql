-- bmc_lab_value: step 1 of the lab chain (17 value, 18 lln, 20 lab). Every blood-count value
-- the cohort grades or reads (analytes of ref_lab_code: haemoglobin, platelets, leukocytes,
-- neutrophils, nRBC) of the patients in bmc_scope, one row per Observation value or CBC-panel
-- component, in the analyte's canonical unit, checked -- before any parameter applies, so a
-- changed --param never rebuilds it.
--   * value: valueQuantity (or valueInteger) x the ref_unit factor for the unit, looked up by
--     the UCUM code first, then the unit text (both through bmc_unit_key). A unit that is
--     missing or not in ref_unit is reported (unit_status), never guessed; a converted value
--     outside ref_analyte's plausible range is 'implausible'.
--   * is_nrbc: the nRBC analytes (the only place their names are written in the lab chain);
--     nrbc_present: nRBC > 0, reading comparators by their bound ('<1' could be 0: no;
--     '>0' yes).
--   * is_superseded: a preliminary result of an analyte that a final, amended or corrected
--     result of the same patient and time replaces (a result re-sent under a new id).
--   * a value coded twice for one analyte (rare) is kept once, with the lowest code.
-- Dates come from effective[x] (start..end of a Period) or, without one, from issued.
-- Parameters: none.
WITH joined AS (
    SELECT o._rid, o.value_source, coalesce(o.component_index, -1) AS component_no, l.analyte,
           o.resource_key, o.patient_key, o.status, o.code, o.effective_start, o.effective_end,
           o.issued, coalesce(o.value_quantity, CAST(o.value_integer AS DOUBLE)) AS value_raw,
           o.value_comparator AS comparator, o.value_unit_code AS unit_code,
           o.value_unit AS unit_text
    FROM observation o
    JOIN bmc_scope sc ON sc.patient_key = o.patient_key
    JOIN ref_lab_code l ON l.system = o.code_system AND l.code = o.code
),
dup AS (
    SELECT _rid, value_source, component_no, analyte
    FROM joined
    GROUP BY _rid, value_source, component_no, analyte
    HAVING count(*) > 1
),
matched AS (
    SELECT j.*
    FROM joined j
    LEFT JOIN dup d ON d._rid = j._rid AND d.value_source = j.value_source
         AND d.component_no = j.component_no AND d.analyte = j.analyte
    WHERE d._rid IS NULL
    UNION ALL
    SELECT j._rid, j.value_source, j.component_no, j.analyte, any_value(j.resource_key),
           any_value(j.patient_key), any_value(j.status), min(j.code),
           any_value(j.effective_start), any_value(j.effective_end), any_value(j.issued),
           any_value(j.value_raw), any_value(j.comparator), any_value(j.unit_code),
           any_value(j.unit_text)
    FROM joined j
    JOIN dup d ON d._rid = j._rid AND d.value_source = j.value_source
         AND d.component_no = j.component_no AND d.analyte = j.analyte
    GROUP BY j._rid, j.value_source, j.component_no, j.analyte
),
units AS (
    SELECT u.analyte, u.factor, k.unit_key
    FROM ref_unit u
    JOIN bmc_unit_key k ON k.raw = u.unit
),
converted AS (
    SELECT m.*,
           coalesce(m.unit_code, m.unit_text) AS unit_raw,
           coalesce(uc.factor, ut.factor) AS factor,
           coalesce(d1.date_lo, d3.date_lo) AS date_lo,
           coalesce(d2.date_hi, d1.date_hi, d3.date_hi) AS date_hi,
           coalesce(d1.precision, d3.precision) AS date_precision,
           coalesce(p.sex, 'unknown') AS sex
    FROM matched m
    LEFT JOIN bmc_unit_key kc ON kc.raw = m.unit_code
    LEFT JOIN units uc ON uc.analyte = m.analyte AND uc.unit_key = kc.unit_key
    LEFT JOIN bmc_unit_key kt ON kt.raw = m.unit_text
    LEFT JOIN units ut ON ut.analyte = m.analyte AND ut.unit_key = kt.unit_key
    LEFT JOIN bmc_date d1 ON d1.text = m.effective_start
    LEFT JOIN bmc_date d2 ON d2.text = m.effective_end
    LEFT JOIN bmc_date d3 ON d3.text = m.issued AND m.effective_start IS NULL
    LEFT JOIN bmc_patient p ON p.patient_key = m.patient_key
),
superseded AS (
    -- only the rare keys that have a preliminary result are looked at
    SELECT DISTINCT p._rid, p.value_source, p.component_no, p.analyte
    FROM converted p
    JOIN converted f ON f.patient_key = p.patient_key AND f.analyte = p.analyte
         AND f.effective_start = p.effective_start
    WHERE p.status = 'preliminary' AND f.status IN ('final', 'amended', 'corrected')
),
nrbc AS (
    SELECT c.*, c.analyte IN ('nrbc_ratio', 'nrbc_abs') AS is_nrbc
    FROM converted c
)
SELECT c.*,
       c.value_raw * c.factor AS value,
       a.canonical_unit AS unit,
       CASE WHEN c.value_raw IS NULL THEN 'no value'
            WHEN c.factor IS NULL AND c.unit_raw IS NULL THEN 'unit missing'
            WHEN c.factor IS NULL THEN 'unit not convertible'
            WHEN c.value_raw * c.factor < a.plausible_low
              OR c.value_raw * c.factor > a.plausible_high THEN 'implausible'
            ELSE 'ok' END AS unit_status,
       s._rid IS NOT NULL AS is_superseded,
       CASE WHEN c.is_nrbc THEN
            CASE WHEN c.value_raw IS NULL THEN false
                 WHEN c.comparator IN ('<', '<=') THEN false
                 WHEN c.comparator = '>' THEN c.value_raw >= 0
                 ELSE c.value_raw > 0 END
       END AS nrbc_present
FROM nrbc c
JOIN ref_analyte a ON a.analyte = c.analyte
LEFT JOIN superseded s ON s._rid = c._rid AND s.value_source = c.value_source
     AND s.component_no = c.component_no AND s.analyte = c.analyte

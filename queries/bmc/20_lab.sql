-- bmc_lab: every blood-count value the cohort grades or reads (analytes of ref_lab_code:
-- haemoglobin, platelets, leukocytes, neutrophils, nRBC), one row per Observation value or
-- CBC-panel component, in the analyte's canonical unit, with the lower limit of normal
-- (LLN) that grades it and whether it may be used at all.
--   * value: valueQuantity (or valueInteger) x the ref_unit factor for the unit, looked up by
--     the UCUM code first, then the unit text (spaces removed, micro sign = u, case-folded).
--     A unit that is missing or not in ref_unit is reported (unit_status), never guessed;
--     a converted value outside ref_analyte's plausible range is 'implausible'.
--   * lln: the result's own referenceRange.low (type normal or untyped), the range whose
--     appliesTo names the patient's sex first, else one without a sex; converted with the
--     range's own unit, or the value's unit when the range has none (the view carries the
--     range's unit text, not its UCUM code); a converted LLN outside the analyte's plausible
--     range is a unit mix-up and is not used. Without a usable range: ref_default_range for
--     the patient's sex (CODES.md §4.3).
--   * usable: status in $result_statuses; a preliminary result is dropped when a final,
--     amended or corrected result of the same analyte was taken at the same time (a result
--     re-sent under a new id); entered-in-error / cancelled never count. nRBC rows only need
--     a value (any nRBC > 0 is abnormal whatever the unit), every other analyte needs unit_status 'ok'.
--   * nrbc_present: nRBC > 0, reading comparators by their bound ('<1' could be 0: no;
--     '>0' yes).
-- Dates come from effective[x] (start..end of a Period) or, without one, from issued.
-- Parameters: $result_statuses
WITH matched AS (
    SELECT o._rid, o.resource_key, o.patient_key, o.status, o.value_source,
           coalesce(o.component_index, -1) AS component_no, l.analyte,
           min(o.code) AS code,
           min(o.effective_start) AS effective_start, min(o.effective_end) AS effective_end,
           min(o.issued) AS issued,
           min(coalesce(o.value_quantity, CAST(o.value_integer AS DOUBLE))) AS value_raw,
           min(o.value_comparator) AS comparator,
           min(o.value_unit_code) AS unit_code, min(o.value_unit) AS unit_text
    FROM observation o
    JOIN ref_lab_code l ON l.system = o.code_system AND l.code = o.code
    WHERE o.patient_key IS NOT NULL
    GROUP BY o._rid, o.resource_key, o.patient_key, o.status, o.value_source,
             coalesce(o.component_index, -1), l.analyte
),
units AS (
    SELECT analyte, factor, canonical_unit,
           lower(replace(replace(replace(unit, ' ', ''), 'µ', 'u'), 'μ', 'u')) AS unit_key
    FROM ref_unit
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
    LEFT JOIN units uc ON uc.analyte = m.analyte
         AND uc.unit_key = lower(replace(replace(replace(m.unit_code, ' ', ''), 'µ', 'u'), 'μ', 'u'))
    LEFT JOIN units ut ON ut.analyte = m.analyte
         AND ut.unit_key = lower(replace(replace(replace(m.unit_text, ' ', ''), 'µ', 'u'), 'μ', 'u'))
    LEFT JOIN bmc_date d1 ON d1.text = m.effective_start
    LEFT JOIN bmc_date d2 ON d2.text = m.effective_end
    LEFT JOIN bmc_date d3 ON d3.text = m.issued AND m.effective_start IS NULL
    LEFT JOIN bmc_patient p ON p.patient_key = m.patient_key
),
range_sex AS (
    -- the sex a range applies to, from appliesTo codes (value sets applies_to_female/_male)
    SELECT r._rid, r.value_source, coalesce(r.component_index, -1) AS component_no, r.range_index,
           min(CASE v.valueset WHEN 'applies_to_female' THEN 'female'
                               WHEN 'applies_to_male' THEN 'male' END) AS sex_lo,
           max(CASE v.valueset WHEN 'applies_to_female' THEN 'female'
                               WHEN 'applies_to_male' THEN 'male' END) AS sex_hi
    FROM (SELECT _rid, value_source, component_index, range_index,
                 unnest(applies_to_codes) AS applies_code
          FROM observation_reference_range) r
    JOIN ref_valueset v ON v.code = r.applies_code
         AND v.valueset IN ('applies_to_female', 'applies_to_male')
    GROUP BY r._rid, r.value_source, coalesce(r.component_index, -1), r.range_index
),
ranges AS (
    SELECT r._rid, r.value_source, coalesce(r.component_index, -1) AS component_no,
           r.range_index, r.low_value, r.low_unit,
           CASE WHEN s.sex_lo = s.sex_hi THEN s.sex_lo END AS applies_sex
    FROM observation_reference_range r
    LEFT JOIN range_sex s ON s._rid = r._rid AND s.value_source = r.value_source
         AND s.component_no = coalesce(r.component_index, -1) AND s.range_index = r.range_index
    WHERE r.low_value IS NOT NULL
      AND (len(r.type_codes) = 0 OR list_contains(r.type_codes, 'normal'))
),
range_pick AS (
    SELECT c._rid, c.value_source, c.component_no, c.analyte,
           rg.low_value * coalesce(ur.factor, CASE WHEN rg.low_unit IS NULL THEN c.factor END) AS lln,
           CASE WHEN rg.applies_sex IS NOT NULL THEN 'result (sex-matched range)'
                ELSE 'result' END AS lln_source,
           row_number() OVER (PARTITION BY c._rid, c.value_source, c.component_no, c.analyte
                              ORDER BY CASE WHEN rg.applies_sex IS NOT NULL THEN 0 ELSE 1 END,
                                       rg.range_index) AS rn
    FROM converted c
    JOIN ranges rg ON rg._rid = c._rid AND rg.value_source = c.value_source
         AND rg.component_no = c.component_no
    LEFT JOIN units ur ON ur.analyte = c.analyte
         AND ur.unit_key = lower(replace(replace(replace(rg.low_unit, ' ', ''), 'µ', 'u'), 'μ', 'u'))
    JOIN ref_analyte a ON a.analyte = c.analyte
    WHERE (rg.applies_sex IS NULL OR rg.applies_sex = c.sex)
      AND rg.low_value * coalesce(ur.factor, CASE WHEN rg.low_unit IS NULL THEN c.factor END)
          BETWEEN a.plausible_low AND a.plausible_high
),
default_pick AS (
    SELECT c._rid, c.value_source, c.component_no, c.analyte, d.low AS lln,
           row_number() OVER (PARTITION BY c._rid, c.value_source, c.component_no, c.analyte
                              ORDER BY CASE WHEN d.sex = 'any' THEN 1 ELSE 0 END) AS rn
    FROM converted c
    JOIN ref_default_range d ON d.analyte = c.analyte AND d.sex IN (c.sex, 'any')
),
checked AS (
    SELECT c.*,
           c.value_raw * c.factor AS value,
           a.canonical_unit AS unit,
           CASE WHEN c.value_raw IS NULL THEN 'no value'
                WHEN c.factor IS NULL AND c.unit_raw IS NULL THEN 'unit missing'
                WHEN c.factor IS NULL THEN 'unit not convertible'
                WHEN c.value_raw * c.factor < a.plausible_low
                  OR c.value_raw * c.factor > a.plausible_high THEN 'implausible'
                ELSE 'ok' END AS unit_status,
           max(CASE WHEN c.status IN ('final', 'amended', 'corrected') THEN 1 ELSE 0 END)
               OVER (PARTITION BY c.patient_key, c.analyte, c.effective_start) AS has_final,
           CASE WHEN c.analyte IN ('nrbc_ratio', 'nrbc_abs') THEN
                CASE WHEN c.value_raw IS NULL THEN false
                     WHEN c.comparator IN ('<', '<=') THEN false
                     WHEN c.comparator = '>' THEN c.value_raw >= 0
                     ELSE c.value_raw > 0 END
           END AS nrbc_present
    FROM converted c
    JOIN ref_analyte a ON a.analyte = c.analyte
),
labs AS (
SELECT k._rid, k.resource_key, k.patient_key, k.value_source, k.component_no, k.analyte,
       k.code, k.status, k.effective_start AS effective_text,
       k.date_lo, k.date_hi, k.date_precision,
       k.value_raw, k.comparator, k.unit_raw, k.value, k.unit, k.unit_status,
       coalesce(rp.lln, dp.lln) AS lln,
       CASE WHEN rp.lln IS NOT NULL THEN rp.lln_source
            WHEN dp.lln IS NOT NULL THEN 'default for ' || k.sex || ' (CODES.md §4.3)' END AS lln_source,
       k.nrbc_present,
       CASE WHEN NOT list_contains($result_statuses, coalesce(k.status, 'unknown'))
                 THEN 'status ' || coalesce(k.status, 'missing')
            WHEN k.status = 'preliminary' AND k.has_final = 1
                 THEN 'preliminary, superseded by a final result of the same time'
            WHEN k.date_lo IS NULL THEN 'no date'
            WHEN k.analyte IN ('nrbc_ratio', 'nrbc_abs') AND k.value_raw IS NULL THEN 'no value'
            WHEN k.analyte NOT IN ('nrbc_ratio', 'nrbc_abs') AND k.unit_status <> 'ok'
                 THEN k.unit_status || CASE WHEN k.unit_raw IS NOT NULL
                                            THEN ' (' || k.unit_raw || ')' ELSE '' END
       END AS not_used_reason
FROM checked k
LEFT JOIN range_pick rp ON rp._rid = k._rid AND rp.value_source = k.value_source
     AND rp.component_no = k.component_no AND rp.analyte = k.analyte AND rp.rn = 1
LEFT JOIN default_pick dp ON dp._rid = k._rid AND dp.value_source = k.value_source
     AND dp.component_no = k.component_no AND dp.analyte = k.analyte AND dp.rn = 1
)
SELECT *, not_used_reason IS NULL AS usable
FROM labs

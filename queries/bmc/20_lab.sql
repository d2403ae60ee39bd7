-- bmc_lab: every blood-count value the cohort grades or reads (analytes of ref_lab_code:
-- haemoglobin, platelets, leukocytes, neutrophils, nRBC) of the patients in bmc_scope, one
-- row per Observation value or CBC-panel component, in the analyte's canonical unit, with the lower limit of normal
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
    -- values coded twice for one analyte (rare): kept once, with the lowest code
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
scoped_ranges AS (
    SELECT r.*
    FROM observation_reference_range r
    JOIN (SELECT DISTINCT _rid FROM joined) j ON j._rid = r._rid
),
range_sex AS (
    -- the sex a range applies to, from appliesTo codings (value sets applies_to_female/_male)
    SELECT r._rid, r.value_source, coalesce(r.component_index, -1) AS component_no, r.range_index,
           min(CASE v.valueset WHEN 'applies_to_female' THEN 'female'
                               WHEN 'applies_to_male' THEN 'male' END) AS sex_lo,
           max(CASE v.valueset WHEN 'applies_to_female' THEN 'female'
                               WHEN 'applies_to_male' THEN 'male' END) AS sex_hi
    FROM (SELECT _rid, value_source, component_index, range_index,
                 unnest(applies_to_codings) AS coding
          FROM scoped_ranges) r
    JOIN ref_valueset v ON v.system = split_part(r.coding, '|', 1)
         AND v.code = substr(r.coding, strpos(r.coding, '|') + 1)
         AND v.valueset IN ('applies_to_female', 'applies_to_male')
    GROUP BY r._rid, r.value_source, coalesce(r.component_index, -1), r.range_index
),
range_normal AS (
    -- ranges typed as the normal range (value set range_type_normal)
    SELECT DISTINCT r._rid, r.value_source, coalesce(r.component_index, -1) AS component_no,
           r.range_index
    FROM (SELECT _rid, value_source, component_index, range_index,
                 unnest(type_codings) AS coding
          FROM scoped_ranges) r
    JOIN ref_valueset v ON v.system = split_part(r.coding, '|', 1)
         AND v.code = substr(r.coding, strpos(r.coding, '|') + 1)
         AND v.valueset = 'range_type_normal'
),
ranges AS (
    -- untyped ranges and normal ranges (not treatment, therapeutic, ... ranges)
    SELECT r._rid, r.value_source, coalesce(r.component_index, -1) AS component_no,
           r.range_index, r.low_value,
           coalesce(r.low_code, r.low_unit) AS low_unit,  -- the UCUM code, else the display text
           CASE WHEN s.sex_lo = s.sex_hi THEN s.sex_lo END AS applies_sex
    FROM scoped_ranges r
    LEFT JOIN range_sex s ON s._rid = r._rid AND s.value_source = r.value_source
         AND s.component_no = coalesce(r.component_index, -1) AND s.range_index = r.range_index
    LEFT JOIN range_normal n ON n._rid = r._rid AND n.value_source = r.value_source
         AND n.component_no = coalesce(r.component_index, -1) AND n.range_index = r.range_index
    WHERE r.low_value IS NOT NULL
      AND (len(r.type_codings) = 0 OR n._rid IS NOT NULL)
),
range_pick AS (
    -- the sex-matched range first, then the first range without a sex
    SELECT c._rid, c.value_source, c.component_no, c.analyte,
           arg_min(rg.low_value * coalesce(ur.factor, CASE WHEN rg.low_unit IS NULL THEN c.factor END),
                   CASE WHEN rg.applies_sex IS NOT NULL THEN 0 ELSE 100000 END + rg.range_index) AS lln,
           arg_min(CASE WHEN rg.applies_sex IS NOT NULL THEN 'result (sex-matched range)'
                        ELSE 'result' END,
                   CASE WHEN rg.applies_sex IS NOT NULL THEN 0 ELSE 100000 END + rg.range_index)
               AS lln_source
    FROM converted c
    JOIN ranges rg ON rg._rid = c._rid AND rg.value_source = c.value_source
         AND rg.component_no = c.component_no
    LEFT JOIN units ur ON ur.analyte = c.analyte
         AND ur.unit_key = lower(replace(replace(replace(rg.low_unit, ' ', ''), 'µ', 'u'), 'μ', 'u'))
    JOIN ref_analyte a ON a.analyte = c.analyte
    WHERE (rg.applies_sex IS NULL OR rg.applies_sex = c.sex)
      AND rg.low_value * coalesce(ur.factor, CASE WHEN rg.low_unit IS NULL THEN c.factor END)
          BETWEEN a.plausible_low AND a.plausible_high
    GROUP BY c._rid, c.value_source, c.component_no, c.analyte
),
superseded AS (
    -- preliminary results that a final/amended/corrected one of the same analyte and time
    -- replaces (only the rare keys that have a preliminary result are looked at)
    SELECT DISTINCT p._rid, p.value_source, p.component_no, p.analyte
    FROM converted p
    JOIN converted f ON f.patient_key = p.patient_key AND f.analyte = p.analyte
         AND f.effective_start = p.effective_start
    WHERE p.status = 'preliminary' AND f.status IN ('final', 'amended', 'corrected')
),
default_pick AS (
    -- ref_default_range holds, per analyte, either one 'any' row or one row per sex
    -- (female, male, unknown); checked when the CSV is loaded
    SELECT c._rid, c.value_source, c.component_no, c.analyte, d.low AS lln
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
           s._rid IS NOT NULL AS is_superseded,
           CASE WHEN c.analyte IN ('nrbc_ratio', 'nrbc_abs') THEN
                CASE WHEN c.value_raw IS NULL THEN false
                     WHEN c.comparator IN ('<', '<=') THEN false
                     WHEN c.comparator = '>' THEN c.value_raw >= 0
                     ELSE c.value_raw > 0 END
           END AS nrbc_present
    FROM converted c
    JOIN ref_analyte a ON a.analyte = c.analyte
    LEFT JOIN superseded s ON s._rid = c._rid AND s.value_source = c.value_source
         AND s.component_no = c.component_no AND s.analyte = c.analyte
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
            WHEN k.is_superseded
                 THEN 'preliminary, superseded by a final result of the same time'
            WHEN k.date_lo IS NULL THEN 'no date'
            WHEN k.analyte IN ('nrbc_ratio', 'nrbc_abs') AND k.value_raw IS NULL THEN 'no value'
            WHEN k.analyte NOT IN ('nrbc_ratio', 'nrbc_abs') AND k.unit_status <> 'ok'
                 THEN k.unit_status || CASE WHEN k.unit_raw IS NOT NULL
                                            THEN ' (' || k.unit_raw || ')' ELSE '' END
       END AS not_used_reason
FROM checked k
LEFT JOIN range_pick rp ON rp._rid = k._rid AND rp.value_source = k.value_source
     AND rp.component_no = k.component_no AND rp.analyte = k.analyte
LEFT JOIN default_pick dp ON dp._rid = k._rid AND dp.value_source = k.value_source
     AND dp.component_no = k.component_no AND dp.analyte = k.analyte
)
SELECT *, not_used_reason IS NULL AS usable
FROM labs

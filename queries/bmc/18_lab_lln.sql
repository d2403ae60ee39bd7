-- bmc_lab_lln: step 2 of the lab chain. The lower limit of normal (LLN) that grades each value
-- of bmc_lab_value, and where it came from (lln_source, in words):
--   * 'result (sex-matched range)' / 'result': the result's own referenceRange.low (type
--     normal or untyped), the range whose appliesTo names the patient's sex first, else the
--     first one without a sex; converted with the range's own unit, or the value's unit when
--     the range has none (the view carries the range's unit text, not its UCUM code). A
--     converted LLN outside the analyte's plausible range is a unit mix-up and is not used.
--   * 'default for <sex> (no usable reference range on the result)': without a usable range,
--     ref_default_range for the patient's sex (queries/reference/default_ranges.csv says
--     where each default comes from).
-- Parameters: none.
WITH units AS (
    SELECT u.analyte, u.factor, k.unit_key
    FROM ref_unit u
    JOIN bmc_unit_key k ON k.raw = u.unit
),
scoped_ranges AS (
    SELECT r.*
    FROM observation_reference_range r
    JOIN (SELECT DISTINCT _rid FROM bmc_lab_value) j ON j._rid = r._rid
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
    FROM bmc_lab_value c
    JOIN ranges rg ON rg._rid = c._rid AND rg.value_source = c.value_source
         AND rg.component_no = c.component_no
    LEFT JOIN bmc_unit_key kr ON kr.raw = rg.low_unit
    LEFT JOIN units ur ON ur.analyte = c.analyte AND ur.unit_key = kr.unit_key
    JOIN ref_analyte a ON a.analyte = c.analyte
    WHERE (rg.applies_sex IS NULL OR rg.applies_sex = c.sex)
      AND rg.low_value * coalesce(ur.factor, CASE WHEN rg.low_unit IS NULL THEN c.factor END)
          BETWEEN a.plausible_low AND a.plausible_high
    GROUP BY c._rid, c.value_source, c.component_no, c.analyte
),
default_pick AS (
    -- ref_default_range holds, per analyte, either one 'any' row or one row per sex
    -- (female, male, unknown); checked when the CSV is loaded
    SELECT c._rid, c.value_source, c.component_no, c.analyte, d.low AS lln,
           'default for ' || c.sex || ' (no usable reference range on the result)' AS lln_source
    FROM bmc_lab_value c
    JOIN ref_default_range d ON d.analyte = c.analyte AND d.sex IN (c.sex, 'any')
)
-- the result's own range where there is one, else the default (one row per value)
SELECT c._rid, c.value_source, c.component_no, c.analyte,
       coalesce(rp.lln, dp.lln) AS lln,
       CASE WHEN rp.lln IS NOT NULL THEN rp.lln_source
            WHEN dp.lln IS NOT NULL THEN dp.lln_source END AS lln_source
FROM bmc_lab_value c
LEFT JOIN range_pick rp ON rp._rid = c._rid AND rp.value_source = c.value_source
     AND rp.component_no = c.component_no AND rp.analyte = c.analyte
LEFT JOIN default_pick dp ON dp._rid = c._rid AND dp.value_source = c.value_source
     AND dp.component_no = c.component_no AND dp.analyte = c.analyte

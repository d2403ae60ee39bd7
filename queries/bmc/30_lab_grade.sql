-- bmc_lab_grade: the CTCAE grade of every usable haemoglobin, platelet, leukocyte and
-- neutrophil value of bmc_lab (ref_ctcae: Anemia, Platelet count decreased, White blood cell
-- decreased, Neutrophil count decreased). A grade's band is low <= value < high, where the
-- grade-1 band ends at the result's LLN; grade 0 = no band contains the value (>= LLN).
-- Grades 2-4 are absolute, so a value under 10 g/dL is anaemia grade >= 2 whatever the LLN
-- (CODES.md §5.1). A value with a comparator is graded by its bound: '<25' platelets is a
-- value just below 25 (grade 4), '<150' with LLN 150 is grade 1; '<=', '>=' and '>' are
-- graded at the bound itself ('>' and '>=' only occur above the analyser's range).
-- Bands are CTCAE v5.0's, except anaemia grade 4: v5.0 never assigns it from a value; the
-- file's hgb grade-4 row (Hgb < 6.5 g/dL) is CTC v2.0/v3.0's (CODES.md §5.3) and is used
-- when $anemia_grade4. A band without a lower limit ends where the next grade in use begins
-- (v5.0 anaemia grade 3 is < 8.0 g/dL, or 6.5-8.0 beside the CTC grade 4).
-- Units (matched by their key, bmc_unit_key): a value reported in a unit that has bands of its own in ref_ctcae is graded on
-- those bands, in that unit, with the LLN converted into it: haemoglobin in mmol/L on CTCAE's
-- mmol/L bands (G1 < LLN - 6.2, G2 < 6.2 - 4.9, G3 < 4.9 mmol/L), because converting with
-- 1.6114 g/dL per mmol/L would put 6.2 mmol/L (9.99 g/dL) in grade 2 and 4.9 (7.90) in grade 3
-- where CTCAE says 1 and 2. Every other value is graded in the canonical unit (graded_unit).
-- Parameters: $anemia_grade4
-- The bands in use of one analyte and unit are disjoint (tests/cohort/test_reference_data.py),
-- so at most one matches a value and no aggregation is needed.
WITH in_use AS (
    SELECT c.*, k.unit_key
    FROM ref_ctcae c
    JOIN bmc_unit_key k ON k.raw = c.unit
    WHERE $anemia_grade4 OR NOT (analyte = 'hgb' AND grade = 4)
),
bands AS (
    SELECT b.analyte, b.unit_key, b.grade, coalesce(b.low, n.high) AS low, b.high, b.high_is_lln
    FROM in_use b
    LEFT JOIN in_use n ON n.analyte = b.analyte AND n.unit_key = b.unit_key
         AND n.grade = b.grade + 1
),
units AS (
    SELECT u.analyte, u.factor, k.unit_key
    FROM ref_unit u
    JOIN bmc_unit_key k ON k.raw = u.unit
),
canonical AS (
    SELECT a.analyte, a.canonical_unit, a.lineage, k.unit_key
    FROM ref_analyte a
    JOIN bmc_unit_key k ON k.raw = a.canonical_unit
),
own AS (
    -- the non-canonical units with bands of their own
    SELECT DISTINCT i.analyte, i.unit_key
    FROM in_use i
    JOIN canonical a ON a.analyte = i.analyte
    WHERE i.unit_key <> a.unit_key
),
scaled AS (
    SELECT l.*,
           CASE WHEN o.analyte IS NOT NULL THEN o.unit_key
                ELSE a.unit_key
           END AS grade_key,
           CASE WHEN o.analyte IS NOT NULL THEN l.value_raw ELSE l.value END AS gvalue,
           CASE WHEN o.analyte IS NOT NULL THEN l.lln / u.factor ELSE l.lln END AS glln,
           CASE WHEN o.analyte IS NOT NULL THEN l.unit_raw ELSE a.canonical_unit END AS graded_unit,
           a.lineage
    FROM bmc_lab l
    JOIN canonical a ON a.analyte = l.analyte
    LEFT JOIN bmc_unit_key k ON k.raw = l.unit_raw
    LEFT JOIN units u ON u.analyte = l.analyte AND u.unit_key = k.unit_key
    LEFT JOIN own o ON o.analyte = l.analyte AND o.unit_key = u.unit_key
    WHERE l.usable
)
SELECT l._rid, l.resource_key, l.patient_key, l.value_source, l.component_no, l.analyte,
       l.code, l.status, l.effective_text, l.date_lo, l.date_hi, l.date_precision,
       l.value_raw, l.comparator, l.unit_raw, l.value, l.unit, l.lln, l.lln_source,
       l.lineage,
       coalesce(c.grade, 0) AS grade,
       t.term,
       l.graded_unit
FROM scaled l
JOIN (SELECT DISTINCT analyte, term FROM ref_ctcae) t ON t.analyte = l.analyte
LEFT JOIN bands c ON c.analyte = l.analyte AND c.unit_key = l.grade_key
     AND CASE WHEN l.comparator = '<'
              THEN (c.low IS NULL OR l.gvalue > c.low)
                   AND l.gvalue <= CASE WHEN c.high_is_lln THEN l.glln ELSE c.high END
              ELSE (c.low IS NULL OR l.gvalue >= c.low)
                   AND l.gvalue < CASE WHEN c.high_is_lln THEN l.glln ELSE c.high END
         END

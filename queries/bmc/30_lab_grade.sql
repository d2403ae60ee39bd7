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
-- Parameters: $anemia_grade4
-- The bands in use of one analyte are disjoint (tests/cohort/test_reference_data.py), so at
-- most one matches a value and no aggregation is needed.
WITH in_use AS (
    SELECT *
    FROM ref_ctcae
    WHERE $anemia_grade4 OR NOT (analyte = 'hgb' AND grade = 4)
),
bands AS (
    SELECT b.analyte, b.grade, coalesce(b.low, n.high) AS low, b.high, b.high_is_lln
    FROM in_use b
    LEFT JOIN in_use n ON n.analyte = b.analyte AND n.grade = b.grade + 1
)
SELECT l._rid, l.resource_key, l.patient_key, l.value_source, l.component_no, l.analyte,
       l.code, l.status, l.effective_text, l.date_lo, l.date_hi, l.date_precision,
       l.value_raw, l.comparator, l.unit_raw, l.value, l.unit, l.lln, l.lln_source,
       a.lineage,
       coalesce(c.grade, 0) AS grade,
       t.term
FROM bmc_lab l
JOIN ref_analyte a ON a.analyte = l.analyte
JOIN (SELECT DISTINCT analyte, term FROM ref_ctcae) t ON t.analyte = l.analyte
LEFT JOIN bands c ON c.analyte = l.analyte
     AND CASE WHEN l.comparator = '<'
              THEN (c.low IS NULL OR l.value > c.low)
                   AND l.value <= CASE WHEN c.high_is_lln THEN l.lln ELSE c.high END
              ELSE (c.low IS NULL OR l.value >= c.low)
                   AND l.value < CASE WHEN c.high_is_lln THEN l.lln ELSE c.high END
         END
WHERE l.usable

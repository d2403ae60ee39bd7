-- bmc_lab_grade: the CTCAE v5.0 grade of every usable haemoglobin, platelet, leukocyte and
-- neutrophil value of bmc_lab (ref_ctcae: Anemia, Platelet count decreased, White blood cell
-- decreased, Neutrophil count decreased). A grade's band is low <= value < high, where the
-- grade-1 band ends at the result's LLN; grade 0 = no band contains the value (>= LLN).
-- Grades 2-4 are absolute, so a value under 10 g/dL is anaemia grade >= 2 whatever the LLN
-- (CODES.md §5.1). A value with a comparator is graded by its bound: '<25' platelets is a
-- value just below 25 (grade 4), '<150' with LLN 150 is grade 1; '<=', '>=' and '>' are
-- graded at the bound itself ('>' and '>=' only occur above the analyser's range).
-- Anaemia grade 4 needs clinical context and is never assigned from a value (v5.0).
-- Parameters: none.
-- The bands of one analyte are disjoint (tests/cohort/test_reference_data.py), so at most one
-- matches a value and no aggregation is needed.
SELECT l._rid, l.resource_key, l.patient_key, l.value_source, l.component_no, l.analyte,
       l.code, l.status, l.effective_text, l.date_lo, l.date_hi, l.date_precision,
       l.value_raw, l.comparator, l.unit_raw, l.value, l.unit, l.lln, l.lln_source,
       a.lineage,
       coalesce(c.grade, 0) AS grade,
       t.term
FROM bmc_lab l
JOIN ref_analyte a ON a.analyte = l.analyte
JOIN (SELECT DISTINCT analyte, term FROM ref_ctcae) t ON t.analyte = l.analyte
LEFT JOIN ref_ctcae c ON c.analyte = l.analyte
     AND CASE WHEN l.comparator = '<'
              THEN (c.low IS NULL OR l.value > c.low)
                   AND l.value <= CASE WHEN c.high_is_lln THEN l.lln ELSE c.high END
              ELSE (c.low IS NULL OR l.value >= c.low)
                   AND l.value < CASE WHEN c.high_is_lln THEN l.lln ELSE c.high END
         END
WHERE l.usable

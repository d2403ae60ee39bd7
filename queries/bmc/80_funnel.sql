-- bmc_funnel: the attrition of the definition, per person. Rule rows (kind 'rule') in the
-- order the rules are applied: patients left after the rule, patients it removed at that
-- step, patients lost *only* by it (they pass every other rule), and how many of those
-- carry a coded marrow diagnosis anyway (a coded diagnosis the rule does not confirm -- in
-- the paper's series, patient 2: smear without cytopenia). Route rows (kind 'route') give the
-- overlap of the two routes inside the cohort.
-- Parameters: $smear_window_days, $cytopenia_min_grade, $exclude_alt_causes
WITH r AS (
    SELECT * FROM bmc_patient_rule
),
counts AS (
    SELECT count(*) AS n0,
           count(CASE WHEN rule_breast_cancer THEN 1 END) AS n1,
           count(CASE WHEN rule_breast_cancer AND rule_marrow_evidence THEN 1 END) AS n2,
           count(CASE WHEN rule_breast_cancer AND rule_marrow_evidence AND rule_smear_cytopenia
                    THEN 1 END) AS n3,
           count(CASE WHEN in_cohort THEN 1 END) AS n4,
           count(CASE WHEN NOT rule_breast_cancer AND rule_marrow_evidence AND rule_smear_cytopenia
                         AND rule_no_alt_cause THEN 1 END) AS only1,
           count(CASE WHEN rule_breast_cancer AND NOT rule_marrow_evidence AND rule_smear_cytopenia
                         AND rule_no_alt_cause THEN 1 END) AS only2,
           count(CASE WHEN rule_breast_cancer AND rule_marrow_evidence AND NOT rule_smear_cytopenia
                         AND rule_no_alt_cause THEN 1 END) AS only3,
           count(CASE WHEN rule_breast_cancer AND rule_marrow_evidence AND rule_smear_cytopenia
                         AND NOT rule_no_alt_cause THEN 1 END) AS only4,
           count(CASE WHEN NOT rule_breast_cancer AND rule_marrow_evidence AND rule_smear_cytopenia
                         AND rule_no_alt_cause AND coded_marrow_dx THEN 1 END) AS coded1,
           count(CASE WHEN rule_breast_cancer AND NOT rule_marrow_evidence AND rule_smear_cytopenia
                         AND rule_no_alt_cause AND coded_marrow_dx THEN 1 END) AS coded2,
           count(CASE WHEN rule_breast_cancer AND rule_marrow_evidence AND NOT rule_smear_cytopenia
                         AND rule_no_alt_cause AND coded_marrow_dx THEN 1 END) AS coded3,
           count(CASE WHEN rule_breast_cancer AND rule_marrow_evidence AND rule_smear_cytopenia
                         AND NOT rule_no_alt_cause AND coded_marrow_dx THEN 1 END) AS coded4
    FROM r
),
routes AS (
    SELECT count(CASE WHEN route = 'histology' THEN 1 END) AS histology_only,
           count(CASE WHEN route = 'smear' THEN 1 END) AS smear_only,
           count(CASE WHEN route = 'both' THEN 1 END) AS both_routes
    FROM bmc_cohort
)
SELECT 'rule' AS kind, 0 AS step, 'population' AS rule,
       'patients in the database' AS description,
       n0 AS patients, CAST(NULL AS BIGINT) AS excluded,
       CAST(NULL AS BIGINT) AS lost_only_by_rule, CAST(NULL AS BIGINT) AS lost_only_with_coded_dx
FROM counts
UNION ALL
SELECT 'rule', 1, 'breast_cancer',
       'breast cancer Condition (C50.*, SNOMED breast cancer codes), not refuted',
       n1, n0 - n1, only1, coded1 FROM counts
UNION ALL
SELECT 'rule', 2, 'marrow_evidence',
       'marrow metastasis proven (coded Condition or positive marrow report) or an nRBC-positive result',
       n2, n1 - n2, only2, coded2 FROM counts
UNION ALL
SELECT 'rule', 3, 'smear_cytopenia',
       'without histology: nRBC > 0 with cytopenia of CTCAE grade >= '
           || CAST($cytopenia_min_grade AS VARCHAR) || ' within '
           || CAST($smear_window_days AS VARCHAR) || ' days',
       n3, n2 - n3, only3, coded3 FROM counts
UNION ALL
SELECT 'rule', 4, 'no_alt_cause',
       CASE WHEN $exclude_alt_causes
            THEN 'without histology: no haemolytic anaemia, MDS or MPN/myelofibrosis on record'
            ELSE 'alternative causes not excluded (exclude_alt_causes=false)' END,
       n4, n3 - n4, only4, coded4 FROM counts
UNION ALL
SELECT 'route', 5, 'histology only', 'in the cohort by histology/cytology alone',
       histology_only, NULL, NULL, NULL FROM routes
UNION ALL
SELECT 'route', 6, 'smear only', 'in the cohort by the smear rule alone',
       smear_only, NULL, NULL, NULL FROM routes
UNION ALL
SELECT 'route', 7, 'both', 'in the cohort by both routes',
       both_routes, NULL, NULL, NULL FROM routes

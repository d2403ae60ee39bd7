-- bmc_patient_rule: per person, every fact the definition uses and the outcome of each rule.
-- The definition  breast cancer AND (histology OR (smear AND NOT alternative cause))  is
-- written as four rules that each can be checked on their own, so that the funnel can say
-- which patients are lost *only* by one rule:
--   rule_breast_cancer    a breast-cancer Condition (bmc_breast_cancer)
--   rule_marrow_evidence  histology/cytology proof (bmc_histology) or an nRBC-positive result
--   rule_smear_cytopenia  histology proof, or every nRBC-positive smear considered has a
--                         cytopenia in the window: no nRBC at all passes (nothing to check),
--                         nRBC without cytopenia fails (Table II patient 2)
--   rule_no_alt_cause     histology proof, or no alternative cause (bmc_exclusion)
-- in_cohort is their conjunction, which equals the definition above.
-- Parameters: none.
WITH hist AS (
    SELECT patient_key,
           bool_or(proves) AS histology,
           min(CASE WHEN proves THEN date_lo END) AS histology_date,
           bool_or(kind = 'marrow condition') AS coded_marrow_dx,
           bool_or(kind = 'marrow report') AS marrow_report
    FROM bmc_histology
    GROUP BY patient_key
),
nrbc AS (
    SELECT patient_key,
           bool_or(nrbc_present) AS nrbc_positive,
           true AS nrbc_result
    FROM bmc_lab
    WHERE usable AND analyte IN ('nrbc_ratio', 'nrbc_abs')
    GROUP BY patient_key
),
smear AS (
    SELECT patient_key, min(met_date) AS smear_date
    FROM bmc_smear
    GROUP BY patient_key
),
alt AS (
    SELECT patient_key,
           string_agg(DISTINCT code || ' (' || valueset || ')', '; ' ORDER BY code || ' (' || valueset || ')') AS alt_causes
    FROM bmc_exclusion
    GROUP BY patient_key
),
facts AS (
    SELECT p.patient_key, p.patient_id, p.sex,
           bc.patient_key IS NOT NULL AS breast_cancer, bc.bc_date,
           coalesce(h.histology, false) AS histology, h.histology_date,
           coalesce(h.coded_marrow_dx, false) AS coded_marrow_dx,
           coalesce(h.marrow_report, false) AS marrow_report,
           coalesce(n.nrbc_positive, false) AS nrbc_positive,
           coalesce(n.nrbc_result, false) AS nrbc_result,
           s.patient_key IS NOT NULL AS smear, s.smear_date,
           a.patient_key IS NOT NULL AS alt_cause, a.alt_causes
    FROM bmc_patient p
    LEFT JOIN bmc_breast_cancer bc ON bc.patient_key = p.patient_key
    LEFT JOIN hist h ON h.patient_key = p.patient_key
    LEFT JOIN nrbc n ON n.patient_key = p.patient_key
    LEFT JOIN smear s ON s.patient_key = p.patient_key
    LEFT JOIN alt a ON a.patient_key = p.patient_key
),
rules AS (
    SELECT f.*,
           f.breast_cancer AS rule_breast_cancer,
           f.histology OR f.nrbc_positive AS rule_marrow_evidence,
           f.histology OR NOT f.nrbc_positive OR f.smear AS rule_smear_cytopenia,
           f.histology OR NOT f.alt_cause AS rule_no_alt_cause
    FROM facts f
)
SELECT r.*,
       r.rule_breast_cancer AND r.rule_marrow_evidence AND r.rule_smear_cytopenia
           AND r.rule_no_alt_cause AS in_cohort,
       concat_ws(', ',
           CASE WHEN NOT r.rule_breast_cancer THEN 'breast_cancer' END,
           CASE WHEN NOT r.rule_marrow_evidence THEN 'marrow_evidence' END,
           CASE WHEN NOT r.rule_smear_cytopenia THEN 'smear_cytopenia' END,
           CASE WHEN NOT r.rule_no_alt_cause THEN 'no_alt_cause' END) AS failed_rules
FROM rules r

-- bmc_histology: marrow evidence of the histology/cytology route, one row per resource.
--   * 'marrow condition': a Condition in value set marrow_metastasis (C79.52, SNOMED
--     94217008) whose verificationStatus is not refuted / entered-in-error, dated by onset
--     (else recordedDate). Whether it proves BMC follows $coded_condition: 'proof' always;
--     'never' never; 'unless-lab-evidence' unless every Condition.evidence.detail it cites
--     is a blood-count Observation of bmc_lab (a smear-based diagnosis, which has to meet
--     the smear rule instead). A Condition citing no evidence is taken at its word.
--   * 'marrow report': a DiagnosticReport coded marrow_report (LOINC 33721-2 / 48807-2) with
--     a status in $result_statuses, dated by effective[x] (else issued); it proves BMC when a
--     conclusionCode coding (system and code, bmc_coded) is in marrow_report_positive
--     (metastatic carcinoma).
-- Parameters: $coded_condition, $result_statuses
WITH cond AS (
    SELECT c._rid, c.resource_key, c.patient_key,
           string_agg(DISTINCT k.system || '|' || k.code, ' ' ORDER BY k.system || '|' || k.code) AS code,
           min(coalesce(c.onset_date_time, c.recorded_date)) AS date_text
    FROM bmc_coded k
    JOIN condition c ON c._rid = k._rid
    WHERE k.source = 'condition' AND k.valueset = 'marrow_metastasis'
      AND c.patient_key IS NOT NULL
      AND coalesce(c.verification_status, '') NOT IN ('refuted', 'entered-in-error')
    GROUP BY c._rid, c.resource_key, c.patient_key
),
basis AS (
    SELECT e.resource_key,
           count(*) AS n_evidence,
           sum(CASE WHEN l.resource_key IS NOT NULL THEN 1 ELSE 0 END) AS n_lab,
           string_agg(DISTINCT split_part(e.evidence_key, '/', 1), ', '
                      ORDER BY split_part(e.evidence_key, '/', 1)) AS evidence_types
    FROM (SELECT DISTINCT resource_key, unnest(evidence_detail_keys) AS evidence_key
          FROM condition) e
    LEFT JOIN (SELECT DISTINCT resource_key FROM bmc_lab) l ON l.resource_key = e.evidence_key
    GROUP BY e.resource_key
),
cond_rows AS (
    SELECT c.patient_key, 'marrow condition' AS kind, c.resource_key, c._rid, c.code,
           d.date_lo, d.date_hi, d.precision AS date_precision,
           CASE $coded_condition
                WHEN 'proof' THEN true
                WHEN 'never' THEN false
                ELSE NOT coalesce(b.n_evidence > 0 AND b.n_lab = b.n_evidence, false)
           END AS proves,
           CASE WHEN b.n_evidence IS NULL THEN 'coded diagnosis, no evidence cited'
                WHEN b.n_lab = b.n_evidence THEN 'coded diagnosis based on a blood count (smear)'
                ELSE 'coded diagnosis citing ' || b.evidence_types END AS basis
    FROM cond c
    LEFT JOIN basis b ON b.resource_key = c.resource_key
    LEFT JOIN bmc_date d ON d.text = c.date_text
),
report AS (
    SELECT r._rid, r.resource_key, r.patient_key,
           string_agg(DISTINCT k.system || '|' || k.code, ' ' ORDER BY k.system || '|' || k.code) AS code,
           r.effective_start, r.issued
    FROM bmc_coded k
    JOIN diagnostic_report r ON r._rid = k._rid
    WHERE k.source = 'diagnostic_report' AND k.valueset = 'marrow_report'
      AND r.patient_key IS NOT NULL
      AND list_contains($result_statuses, coalesce(r.status, 'unknown'))
    GROUP BY r._rid, r.resource_key, r.patient_key, r.effective_start, r.issued
),
positive AS (
    SELECT DISTINCT resource_key
    FROM bmc_coded
    WHERE source = 'diagnostic_report_conclusion' AND valueset = 'marrow_report_positive'
),
report_rows AS (
    SELECT r.patient_key, 'marrow report' AS kind, r.resource_key, r._rid, r.code,
           coalesce(d1.date_lo, d2.date_lo) AS date_lo,
           coalesce(d1.date_hi, d2.date_hi) AS date_hi,
           coalesce(d1.precision, d2.precision) AS date_precision,
           p.resource_key IS NOT NULL AS proves,
           CASE WHEN p.resource_key IS NOT NULL THEN 'conclusion: metastatic carcinoma'
                ELSE 'no conclusion code of metastatic carcinoma' END AS basis
    FROM report r
    LEFT JOIN positive p ON p.resource_key = r.resource_key
    LEFT JOIN bmc_date d1 ON d1.text = r.effective_start
    LEFT JOIN bmc_date d2 ON d2.text = r.issued AND r.effective_start IS NULL
)
SELECT * FROM cond_rows
UNION ALL
SELECT * FROM report_rows

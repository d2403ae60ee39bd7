-- bmc_screen_cytopenia: candidate cytopenias for screen tier 2, one row per usable count of
-- a lineage in $cytopenia_lineages graded >= $screen_min_grade in a breast-cancer patient,
-- dated on or after the patient's first bone metastasis (value set bone_metastasis, not
-- refuted / entered-in-error). A count is explained by chemotherapy when a
-- bmc_screen_chemo exposure started before the count's day and ended at most
-- $chemo_lookback_days days before it (the most recent such exposure is named, with the
-- resource type it came from and how the drug was matched).
-- Parameters: $cytopenia_lineages, $screen_min_grade, $chemo_lookback_days
WITH bone AS (
    SELECT c.patient_key, min(d.date_lo) AS bone_date,
           string_agg(DISTINCT k.code, ', ' ORDER BY k.code) AS bone_codes
    FROM bmc_coded k
    JOIN condition c ON c._rid = k._rid
    LEFT JOIN bmc_date d ON d.text = coalesce(c.onset_date_time, c.recorded_date)
    WHERE k.source = 'condition' AND k.valueset = 'bone_metastasis'
      AND coalesce(c.verification_status, '') NOT IN ('refuted', 'entered-in-error')
    GROUP BY c.patient_key
),
cyto AS (
    SELECT g.patient_key, g.resource_key, g._rid, g.lineage, g.term, g.grade, g.value, g.unit,
           g.lln, g.lln_source, g.date_lo, g.date_hi, b.bone_date, b.bone_codes
    FROM bmc_lab_grade g
    JOIN bmc_breast_cancer bc ON bc.patient_key = g.patient_key
    JOIN bone b ON b.patient_key = g.patient_key
    WHERE list_contains($cytopenia_lineages, g.lineage) AND g.grade >= $screen_min_grade
      AND (b.bone_date IS NULL OR g.date_hi >= b.bone_date)
),
chemo AS (
    SELECT c.resource_key AS cyto_key, c.lineage, x.resource_key AS chemo_key, x.drug, x.date_lo AS chemo_date,
           x.source_type, x.matched_by,
           date_diff('day', x.date_lo, c.date_lo) AS days_after,
           row_number() OVER (PARTITION BY c.resource_key, c.lineage
                              ORDER BY x.date_hi DESC, x.resource_key, x.drug) AS rn
    FROM cyto c
    JOIN bmc_screen_chemo x ON x.patient_key = c.patient_key
    WHERE x.date_lo < c.date_lo
      AND date_diff('day', x.date_hi, c.date_lo) <= $chemo_lookback_days
)
SELECT c.*, ch.chemo_key IS NOT NULL AS explained, ch.chemo_key, ch.drug AS chemo_drug,
       ch.chemo_date, ch.days_after, ch.source_type AS chemo_source, ch.matched_by AS chemo_matched_by
FROM cyto c
LEFT JOIN chemo ch ON ch.cyto_key = c.resource_key AND ch.lineage = c.lineage AND ch.rn = 1

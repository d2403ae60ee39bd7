-- The code inventory (`bmc codes`): every (source, system, code, display) in the Condition,
-- Observation (value and component codes), Procedure, DiagnosticReport (code and
-- conclusionCode), MedicationAdministration, MedicationRequest and Medication tables, with
-- how many records and patients carry it, and what the cohort definition makes of it:
--   * mapped_valuesets: the value sets its code is in (ref_valueset: exact or prefix, dotted
--     ICD systems compared without dots, as 05_coded.sql does), and those codes_coded gives it
--     (the rows of queries/bmc/05_coded.sql over the whole database: what the definition
--     matched, drug-name fallbacks included);
--   * mapped_analytes: the lab analytes ref_lab_code gives an Observation code;
--   * units: the units of its numeric values with counts ('g/dL (12); g/L (1)'; a value
--     without a unit is '(no unit)'); unconvertible_units: for a mapped lab code, the units
--     ref_unit cannot convert for its analyte (analytes with a lineage: nRBC is read in any
--     unit), as 20_lab.sql looks them up (UCUM code first, then the unit text; spaces
--     removed, micro sign = u, case-folded);
--   * unit_fits: analytes whose ref_unit spellings include one of its units;
--   * sourced_displays: the displays the reference files give this exact code (value sets'
--     exact rows, lab codes), to compare with the display in the data;
--   * known_system: its system is one the reference files use (a standard terminology whose
--     displays name the concept; any other system is a local code).
-- Codings without a code but with a text (text-only drugs, labs) are listed with system and
-- code NULL. Candidates and display conflicts are decided in cohort/codes.py from these rows
-- and queries/codes/concept_words.csv.
-- Parameters: none.
WITH coded AS (
    SELECT 'condition' AS source, system, code, display, code_text AS text, resource_key,
           patient_key, NULL::VARCHAR AS unit_code, NULL::VARCHAR AS unit_text,
           NULL::DOUBLE AS value
    FROM condition
    UNION ALL
    SELECT 'observation', code_system, code, code_display, code_text, resource_key,
           patient_key, value_unit_code, value_unit,
           coalesce(value_quantity, CAST(value_integer AS DOUBLE))
    FROM (SELECT DISTINCT resource_key, patient_key, value_source, component_index,
                 code_system, code, code_display, code_text, value_unit_code, value_unit,
                 value_quantity, value_integer
          FROM observation) o
    UNION ALL
    SELECT 'procedure', system, code, display, code_text, resource_key, patient_key,
           NULL, NULL, NULL
    FROM procedure
    UNION ALL
    SELECT 'diagnostic_report', system, code, display, code_text, resource_key, patient_key,
           NULL, NULL, NULL
    FROM diagnostic_report
    UNION ALL
    SELECT 'diagnostic_report_conclusion', split_part(coding, '|', 1),
           substr(coding, strpos(coding, '|') + 1), NULL, NULL, resource_key, patient_key,
           NULL, NULL, NULL
    FROM (SELECT resource_key, patient_key, unnest(conclusion_codings) AS coding
          FROM diagnostic_report) c
    UNION ALL
    SELECT 'medication_administration', medication_system, medication_code,
           medication_display, medication_text, resource_key, patient_key, NULL, NULL, NULL
    FROM medication_administration
    UNION ALL
    SELECT 'medication_request', medication_system, medication_code, medication_display,
           medication_text, resource_key, patient_key, NULL, NULL, NULL
    FROM medication_request
    UNION ALL
    SELECT 'medication', system, code, display, code_text, resource_key, NULL, NULL, NULL,
           NULL
    FROM medication
),
listed AS (
    SELECT * FROM coded WHERE code IS NOT NULL OR text IS NOT NULL
),
grouped AS (
    SELECT source, system, code, display, mode(text) AS text,
           count(DISTINCT resource_key) AS n_records, count(DISTINCT patient_key) AS n_patients
    FROM listed
    GROUP BY source, system, code, display
),
keyed AS (
    SELECT g.*,
           CASE WHEN cs.strip_dots THEN upper(replace(g.code, '.', '')) ELSE g.code END AS code_key
    FROM grouped g
    LEFT JOIN ref_code_system cs ON cs.system = g.system
),
unit_keyed AS (
    SELECT analyte, lower(replace(replace(replace(unit, ' ', ''), 'µ', 'u'), 'μ', 'u')) AS unit_key
    FROM ref_unit
),
unit_rows AS (
    SELECT source, system, code, display, unit_code, unit_text,
           coalesce(unit_code, unit_text, '(no unit)') AS unit,
           lower(replace(replace(replace(unit_code, ' ', ''), 'µ', 'u'), 'μ', 'u')) AS code_key,
           lower(replace(replace(replace(unit_text, ' ', ''), 'µ', 'u'), 'μ', 'u')) AS text_key,
           count(*) AS n
    FROM listed
    WHERE source = 'observation' AND value IS NOT NULL
    GROUP BY ALL
),
unit_counts AS (
    SELECT source, system, code, display, unit, sum(n) AS n
    FROM unit_rows
    GROUP BY ALL
),
fits AS (
    SELECT source, system, code, display, list(DISTINCT u.analyte ORDER BY u.analyte) AS unit_fits
    FROM unit_rows r
    JOIN unit_keyed u ON u.unit_key = r.code_key OR u.unit_key = r.text_key
    GROUP BY ALL
),
units AS (
    SELECT c.source, c.system, c.code, c.display,
           string_agg(c.unit || ' (' || c.n || ')', '; ' ORDER BY c.n DESC, c.unit) AS units,
           any_value(f.unit_fits) AS unit_fits
    FROM unit_counts c
    LEFT JOIN fits f ON f.source = c.source AND f.system IS NOT DISTINCT FROM c.system
         AND f.code IS NOT DISTINCT FROM c.code AND f.display IS NOT DISTINCT FROM c.display
    GROUP BY c.source, c.system, c.code, c.display
),
analytes AS (
    SELECT DISTINCT l.system, l.code, l.analyte, a.lineage
    FROM ref_lab_code l
    JOIN ref_analyte a ON a.analyte = l.analyte
),
unconvertible AS (
    SELECT r.source, r.system, r.code, r.display,
           list(DISTINCT r.unit ORDER BY r.unit) AS unconvertible_units
    FROM unit_rows r
    JOIN analytes a ON a.system = r.system AND a.code = r.code AND a.lineage IS NOT NULL
    WHERE NOT EXISTS (SELECT 1 FROM unit_keyed u
                      WHERE u.analyte = a.analyte
                        AND (u.unit_key = r.code_key OR u.unit_key = r.text_key))
    GROUP BY ALL
),
vs AS (
    SELECT v.valueset, v.system, v.match,
           CASE WHEN cs.strip_dots THEN upper(replace(v.code, '.', '')) ELSE v.code END AS code_key
    FROM ref_valueset v
    LEFT JOIN ref_code_system cs ON cs.system = v.system
),
valuesets AS (
    SELECT system, code, list(DISTINCT valueset ORDER BY valueset) AS mapped_valuesets
    FROM (SELECT system, code, valueset FROM codes_coded
          UNION ALL
          SELECT k.system, k.code, vs.valueset
          FROM (SELECT DISTINCT system, code, code_key FROM keyed) k
          JOIN vs ON vs.system = k.system
                 AND ((vs.match = 'exact' AND k.code_key = vs.code_key)
                   OR (vs.match = 'prefix' AND starts_with(k.code_key, vs.code_key)))) m
    GROUP BY system, code
),
lab_maps AS (
    SELECT system, code, list(DISTINCT analyte ORDER BY analyte) AS mapped_analytes
    FROM analytes
    GROUP BY system, code
),
code_keys AS (
    SELECT v.system, v.display,
           CASE WHEN cs.strip_dots THEN upper(replace(v.code, '.', '')) ELSE v.code END AS code_key
    FROM ref_valueset v
    LEFT JOIN ref_code_system cs ON cs.system = v.system
    WHERE v.match = 'exact'
    UNION ALL
    SELECT system, display, code FROM ref_lab_code
),
known_systems AS (
    SELECT system FROM ref_valueset UNION SELECT system FROM ref_lab_code
    UNION SELECT system FROM ref_code_system
),
sourced AS (
    SELECT k.source, k.system, k.code, k.display,
           list(DISTINCT c.display ORDER BY c.display) AS sourced_displays
    FROM keyed k
    JOIN code_keys c ON c.system = k.system AND c.code_key = k.code_key
    WHERE c.display IS NOT NULL
    GROUP BY ALL
)
SELECT k.source, k.system, k.code, k.display, k.text, k.n_records, k.n_patients, u.units,
       coalesce(v.mapped_valuesets, []) AS mapped_valuesets,
       CASE WHEN k.source = 'observation' THEN coalesce(l.mapped_analytes, []) ELSE [] END
           AS mapped_analytes,
       coalesce(x.unconvertible_units, []) AS unconvertible_units,
       coalesce(u.unit_fits, []) AS unit_fits,
       coalesce(s.sourced_displays, []) AS sourced_displays,
       coalesce(k.system IN (SELECT system FROM known_systems), false) AS known_system
FROM keyed k
LEFT JOIN units u ON u.source = k.source AND u.system IS NOT DISTINCT FROM k.system
     AND u.code IS NOT DISTINCT FROM k.code AND u.display IS NOT DISTINCT FROM k.display
LEFT JOIN unconvertible x ON x.source = k.source AND x.system IS NOT DISTINCT FROM k.system
     AND x.code IS NOT DISTINCT FROM k.code AND x.display IS NOT DISTINCT FROM k.display
LEFT JOIN valuesets v ON v.system = k.system AND v.code = k.code
LEFT JOIN lab_maps l ON l.system = k.system AND l.code = k.code
LEFT JOIN sourced s ON s.source = k.source AND s.system IS NOT DISTINCT FROM k.system
     AND s.code IS NOT DISTINCT FROM k.code AND s.display IS NOT DISTINCT FROM k.display
ORDER BY k.source, k.system, k.code, k.display

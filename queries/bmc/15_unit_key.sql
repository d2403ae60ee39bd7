-- bmc_unit_key: every unit text the lab stages compare -- ref_unit's, ref_ctcae's and
-- ref_analyte's canonical units, the units of the Observations' values and of their reference
-- ranges -- with the key it is matched by: spaces removed, the micro signs (U+00B5, U+03BC)
-- written u, case-folded, so 'µmol/L', 'umol / l' and 'UMOL/L' are one unit. This is the only
-- place the cleaning is written (cohort/reference.py's unit_key is its Python twin for the
-- CSVs); the lab stages join raw unit texts to this table.
-- Parameters: none.
SELECT raw, lower(replace(replace(replace(raw, ' ', ''), 'µ', 'u'), 'μ', 'u')) AS unit_key
FROM (
    SELECT unit AS raw FROM ref_unit
    UNION SELECT unit FROM ref_ctcae
    UNION SELECT canonical_unit FROM ref_analyte
    UNION SELECT value_unit_code FROM observation
    UNION SELECT value_unit FROM observation
    UNION SELECT low_code FROM observation_reference_range
    UNION SELECT low_unit FROM observation_reference_range
) u
WHERE raw IS NOT NULL

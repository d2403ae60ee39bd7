-- bmc_date: every date/dateTime string the cohort reads, parsed once, as the interval of
-- days it denotes. FHIR dates may be partial: '2019' is 2019-01-01..2019-12-31, '2019-03' is
-- 2019-03-01..2019-03-31; a dateTime is the calendar day *as written* (its first 10
-- characters), i.e. the local date of the clinician, never shifted to UTC
-- ('2001-01-28T00:35:00+01:00' is 2001-01-28). Window rules compare these intervals at their
-- closest points (a partial date matches a window if any day it denotes does); ordering and
-- index dates use date_lo, and precision says how much of it to believe.
-- Strings that are not FHIR dates get NULL dates (and so match no rule). Observation dates
-- are taken for the patients of bmc_scope only (the only counts bmc_lab reads).
-- Parameters: none.
WITH raw AS (
    SELECT onset_date_time AS text FROM condition
    UNION SELECT recorded_date FROM condition
    UNION SELECT abatement_date_time FROM condition
    UNION SELECT o.effective_start FROM observation o JOIN bmc_scope s ON s.patient_key = o.patient_key
    UNION SELECT o.effective_end FROM observation o JOIN bmc_scope s ON s.patient_key = o.patient_key
    UNION SELECT o.issued FROM observation o JOIN bmc_scope s ON s.patient_key = o.patient_key
    UNION SELECT effective_start FROM diagnostic_report
    UNION SELECT effective_end FROM diagnostic_report
    UNION SELECT issued FROM diagnostic_report
    UNION SELECT effective_start FROM medication_administration
    UNION SELECT effective_end FROM medication_administration
    UNION SELECT authored_on FROM medication_request
    UNION SELECT performed_start FROM procedure
    UNION SELECT performed_end FROM procedure
),
parsed AS (
    SELECT text,
           CASE WHEN length(text) = 4 THEN TRY_CAST(text || '-01-01' AS DATE)
                WHEN length(text) = 7 THEN TRY_CAST(text || '-01' AS DATE)
                WHEN length(text) >= 10 THEN TRY_CAST(substr(text, 1, 10) AS DATE)
           END AS date_lo,
           CASE WHEN length(text) = 4 THEN TRY_CAST(text || '-12-31' AS DATE)
                WHEN length(text) = 7 THEN last_day(TRY_CAST(text || '-01' AS DATE))
                WHEN length(text) >= 10 THEN TRY_CAST(substr(text, 1, 10) AS DATE)
           END AS date_hi,
           CASE WHEN length(text) = 4 THEN 'year'
                WHEN length(text) = 7 THEN 'month'
                WHEN length(text) = 10 THEN 'day'
                WHEN length(text) > 10 THEN 'time'
           END AS precision
    FROM raw
    WHERE text IS NOT NULL
)
SELECT text, date_lo, date_hi, precision
FROM parsed
WHERE date_lo IS NOT NULL AND date_hi IS NOT NULL

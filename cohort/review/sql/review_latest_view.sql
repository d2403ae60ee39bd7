-- View review_latest: the decision that counts for each reviewed patient (the latest made).
-- Kept in the database for SQL users; `bmc check --truth review` reads it.
-- Parameters: none
CREATE OR REPLACE VIEW review_latest AS
SELECT patient_id, verdict, note, reviewer, reviewed_at, definition_build, review_id, seq
FROM review
QUALIFY row_number() OVER (PARTITION BY patient_id ORDER BY seq DESC) = 1

-- Every adjudication of one patient, newest first.
-- Parameters: $patient_id
SELECT review_id, verdict, note, reviewer, reviewed_at, definition_build
FROM review
WHERE patient_id = $patient_id
ORDER BY seq DESC

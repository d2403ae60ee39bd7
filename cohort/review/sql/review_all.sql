-- Every adjudication in the order they were made (the FHIR export writes one resource each).
-- Parameters: none
SELECT seq, review_id, patient_id, verdict, note, reviewer, reviewed_at, definition_build,
       parameters
FROM review
ORDER BY seq

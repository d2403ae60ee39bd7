-- Append one adjudication.
-- seq is the next number: the server is the only writer while it runs.
-- Parameters: $review_id $patient_id $verdict $note $reviewer $reviewed_at $definition_build $parameters
INSERT INTO review (seq, review_id, patient_id, verdict, note, reviewer, reviewed_at,
                    definition_build, parameters)
SELECT coalesce(max(seq), 0) + 1, $review_id, $patient_id, $verdict, $note, $reviewer, $reviewed_at,
       $definition_build, $parameters
FROM review

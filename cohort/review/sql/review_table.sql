-- The adjudications a reviewer made in `bmc review`: append-only, one row per decision.
-- The latest row per patient counts (review_latest.sql). Not built from the FHIR sources, so
-- `bmc load` and cohort rebuilds (which replace only the declared and bmc_* tables) keep it.
-- Parameters: none
CREATE TABLE IF NOT EXISTS review (
    seq              BIGINT NOT NULL PRIMARY KEY,   -- 1, 2, ... in the order decisions were made
    review_id        VARCHAR NOT NULL UNIQUE,       -- uuid of this decision (the FHIR id)
    patient_id       VARCHAR NOT NULL,              -- Patient id as loaded (no 'Patient/')
    verdict          VARCHAR NOT NULL CHECK (verdict IN ('confirmed', 'not_bmc', 'unsure')),
    note             VARCHAR,
    reviewer         VARCHAR NOT NULL,
    reviewed_at      TIMESTAMPTZ NOT NULL,
    definition_build VARCHAR,                       -- bmc_build.fingerprint at the time
    parameters       VARCHAR                        -- the definition's parameters (JSON)
)

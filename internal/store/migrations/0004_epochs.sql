-- Epoch weight records of model competitions: written once per (competition, epoch).
CREATE TABLE epoch_weights (
    competition_id TEXT NOT NULL REFERENCES competitions (id),
    epoch          BIGINT NOT NULL,
    closed_at      BIGINT NOT NULL,
    record         TEXT NOT NULL,
    PRIMARY KEY (competition_id, epoch)
);

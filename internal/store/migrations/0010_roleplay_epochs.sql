-- Fresh roleplay items: one row per (competition, epoch), planned from a
-- secret seed whose SHA-256 is public from the start and which is itself
-- shown once the epoch has ended (see internal/seal).
CREATE TABLE roleplay_epochs (
    competition_id TEXT NOT NULL REFERENCES competitions (id),
    epoch          BIGINT NOT NULL,
    seed           BIGINT NOT NULL,
    seed_sha256    TEXT NOT NULL,
    items          TEXT NOT NULL,
    items_digest   TEXT NOT NULL,
    starts_at      BIGINT NOT NULL,
    ends_at        BIGINT NOT NULL,
    PRIMARY KEY (competition_id, epoch)
);

-- One evaluation of a submission's model on one epoch's fresh items; a
-- model is evaluated again every epoch, and earlier epochs' rows stay.
CREATE TABLE roleplay_epoch_evals (
    competition_id TEXT NOT NULL,
    epoch          BIGINT NOT NULL,
    submission_id  TEXT NOT NULL REFERENCES submissions (id),
    score          DOUBLE PRECISION NOT NULL,
    results        TEXT NOT NULL,
    evaluated_at   BIGINT NOT NULL,
    PRIMARY KEY (competition_id, epoch, submission_id),
    FOREIGN KEY (competition_id, epoch) REFERENCES roleplay_epochs (competition_id, epoch)
);

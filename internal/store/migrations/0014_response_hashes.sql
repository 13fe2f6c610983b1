-- Response hashes (issue 20): a scored submission's raw answers as (item,
-- hash) pairs in one row, written in the transaction that scores it.
-- Marking copies on a leaderboard compares answers for equality only, so it
-- reads one row per submission here instead of every item result.
CREATE TABLE response_hashes (
    submission_id TEXT PRIMARY KEY REFERENCES submissions (id),
    hashes        BYTEA NOT NULL
);

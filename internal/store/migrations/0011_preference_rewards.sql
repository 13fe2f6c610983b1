-- Preference rewards (issue 14): the reward a preference competition
-- carries, escrowed at creation, and the once-only record of its epoch's
-- close, which pays the escrow out to the miners.
CREATE TABLE preference_rewards (
    competition_id TEXT PRIMARY KEY REFERENCES competitions (id),
    funder         TEXT NOT NULL,
    asset          TEXT NOT NULL,
    amount         BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    closed_at      BIGINT,
    record         TEXT
);
CREATE INDEX preference_rewards_open ON preference_rewards (closed_at);

-- Human-preference labeling (issue 7): the canonical tasks of preference
-- competitions, each miner's obfuscated copy, de-obfuscated ratings, the
-- contributor keys miners hand to the people who label, and the validator
-- secret that keys the copies' shuffles.
CREATE TABLE preference_tasks (
    competition_id TEXT NOT NULL REFERENCES competitions (id),
    task_id        TEXT NOT NULL,
    idx            INTEGER NOT NULL,
    deadline       BIGINT NOT NULL,
    task           TEXT NOT NULL,
    PRIMARY KEY (competition_id, task_id)
);
CREATE INDEX preference_tasks_by_deadline ON preference_tasks (deadline);

CREATE TABLE preference_copies (
    competition_id TEXT NOT NULL,
    task_id        TEXT NOT NULL,
    miner          TEXT NOT NULL,
    copy           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (competition_id, task_id, miner),
    FOREIGN KEY (competition_id, task_id) REFERENCES preference_tasks (competition_id, task_id)
);
CREATE INDEX preference_copies_by_miner ON preference_copies (miner);

CREATE TABLE preference_ratings (
    competition_id TEXT NOT NULL,
    task_id        TEXT NOT NULL,
    miner          TEXT NOT NULL,
    contributor    TEXT NOT NULL,
    vals           TEXT NOT NULL,
    submitted_at   BIGINT NOT NULL,
    PRIMARY KEY (competition_id, task_id, miner),
    FOREIGN KEY (competition_id, task_id) REFERENCES preference_tasks (competition_id, task_id)
);

CREATE TABLE contributor_keys (
    id         TEXT PRIMARY KEY,
    miner      TEXT NOT NULL,
    label      TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX contributor_keys_by_miner ON contributor_keys (miner, created_at);

CREATE TABLE preference_secrets (
    name   TEXT PRIMARY KEY,
    secret TEXT NOT NULL
);

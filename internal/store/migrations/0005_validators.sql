-- Validators and consensus (hub-wide): miner registrations (one UID each),
-- operator-set validator stakes, the signed weight vectors validators post
-- per epoch, and closed consensus epochs (written once each).
CREATE TABLE miner_uids (
    uid           BIGINT PRIMARY KEY,
    key_id        TEXT NOT NULL UNIQUE,
    registered_at BIGINT NOT NULL,
    pruning_score DOUBLE PRECISION NOT NULL
);

CREATE TABLE validator_stakes (
    key_id     TEXT PRIMARY KEY,
    stake      BIGINT NOT NULL,
    set_by     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE validator_weights (
    id             TEXT PRIMARY KEY,
    epoch          BIGINT NOT NULL,
    validator      TEXT NOT NULL,
    competition_id TEXT NOT NULL,
    weights        TEXT NOT NULL,
    posted_at      BIGINT NOT NULL
);
CREATE INDEX validator_weights_by_epoch ON validator_weights (epoch, validator, posted_at);

CREATE TABLE consensus_epochs (
    epoch     BIGINT PRIMARY KEY,
    closed_at BIGINT NOT NULL,
    record    TEXT NOT NULL
);

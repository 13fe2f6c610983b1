-- Funded benchmark pools: a competition with money, a schedule and a budget.
CREATE TABLE pools (
    competition_id   TEXT PRIMARY KEY REFERENCES competitions (id),
    funder           TEXT NOT NULL,
    asset            TEXT NOT NULL,
    amount           BIGINT NOT NULL,
    rule             TEXT NOT NULL,
    start_at         BIGINT NOT NULL,
    end_at           BIGINT NOT NULL,
    budget_per_hour  INTEGER NOT NULL,
    refresh_us       BIGINT NOT NULL,
    private_fraction DOUBLE PRECISION NOT NULL,
    seed             BIGINT NOT NULL,
    state            TEXT NOT NULL,
    settlement       TEXT
);

CREATE TABLE pool_snapshots (
    competition_id TEXT NOT NULL REFERENCES pools (competition_id),
    taken_at       BIGINT NOT NULL,
    board          TEXT NOT NULL,
    PRIMARY KEY (competition_id, taken_at)
);

-- Leaderboard versions (issue 20): a competition's counter, bumped in the
-- transaction that scores one of its submissions. Readers cache a
-- leaderboard under (competition, version); every process reads the
-- counter from here, so a cache in another process sees the bump.
CREATE TABLE leaderboard_versions (
    competition_id TEXT PRIMARY KEY REFERENCES competitions (id),
    version        BIGINT NOT NULL
);

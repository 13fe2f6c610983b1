-- Git bundles uploaded with patch competitions (issue 12), stored by the
-- sha256 of their bytes so every worker can fetch the same repository.
CREATE TABLE repo_bundles (
    digest     TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    data       BYTEA NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

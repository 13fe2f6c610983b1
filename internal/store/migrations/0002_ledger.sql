-- The ledger: double-entry transfers. Balances are sums of entries, never stored.
CREATE TABLE ledger_transfers (
    id              TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    asset           TEXT NOT NULL,
    memo            TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE ledger_entries (
    transfer_id TEXT NOT NULL REFERENCES ledger_transfers (id),
    account     TEXT NOT NULL,
    asset       TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    PRIMARY KEY (transfer_id, account)
);
CREATE INDEX ledger_entries_by_account ON ledger_entries (account, asset);

-- One row per account ever used: the row that concurrent debits lock.
CREATE TABLE ledger_accounts (
    name       TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- Issue 18.2: the per-account login limit, shared by every broker instance
-- on this database (src/ratelimit/account.rs). Rows are deleted once they
-- have expired (`expires_at`, `tat_ms` in the past).

-- Backoff per (account, source network).
CREATE TABLE login_backoff (
    account BLOB NOT NULL,          -- SHA-256 of the normalised e-mail address
    network TEXT NOT NULL,          -- an IPv4 address or an IPv6 /64
    failures INTEGER NOT NULL,      -- login starts since the last success from here
    next_at INTEGER NOT NULL,       -- no start from here before this (Unix s)
    trusted_until INTEGER NOT NULL, -- a login succeeded from here: exempt from the ceiling until then
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (account, network)
) WITHOUT ROWID;
CREATE INDEX login_backoff_expires ON login_backoff (expires_at);

-- The ceiling per account over all networks (a GCRA token bucket).
CREATE TABLE login_ceiling (
    account BLOB PRIMARY KEY,       -- SHA-256 of the normalised e-mail address
    tat_ms INTEGER NOT NULL         -- theoretical arrival time (Unix ms)
) WITHOUT ROWID;
CREATE INDEX login_ceiling_tat ON login_ceiling (tat_ms);

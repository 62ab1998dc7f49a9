-- Organisation policy, deprovisioning, recovery and the audit log (issue 4).
-- SQLite flavour. Times are Unix seconds. Every table here is insert-only
-- except users.disabled_at and the status of a recovery request.

-- Deprovisioning: a disabled user cannot log in, has no sessions, and is
-- shown as revoked ("left") in the directory.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

-- The organisation policy, one row per version. policy_json is the exact
-- byte string the org key signed (docs/BROKER.md, "Policy").
CREATE TABLE policies (
    version      INTEGER PRIMARY KEY,
    policy_json  TEXT NOT NULL,
    issued_at    INTEGER NOT NULL,
    signature    BLOB NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE TRIGGER policies_immutable BEFORE UPDATE ON policies
BEGIN
    SELECT RAISE(ABORT, 'policy versions are immutable');
END;

-- Escrow copies sealed to the organisation recovery key, next to the
-- password-sealed escrow; versioned and insert-only like it.
CREATE TABLE recovery_escrow (
    user_id     TEXT NOT NULL REFERENCES users (user_id),
    version     INTEGER NOT NULL,
    blob        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, version)
);
CREATE TRIGGER recovery_escrow_immutable BEFORE UPDATE ON recovery_escrow
BEGIN
    SELECT RAISE(ABORT, 'recovery escrow versions are immutable');
END;

-- The organisation recovery public key, certified by the org key.
CREATE TABLE recovery_keys (
    version     INTEGER PRIMARY KEY,
    public_key  TEXT NOT NULL,
    threshold   INTEGER NOT NULL,
    shares      INTEGER NOT NULL,
    issued_at   INTEGER NOT NULL,
    signature   BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Recovery administrators: an Ed25519 approval key and the SHA-256 of an
-- admin API token.
CREATE TABLE admins (
    name        TEXT PRIMARY KEY,
    admin_key   TEXT NOT NULL UNIQUE,
    token_hash  BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE recovery_requests (
    request_id      TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (user_id),
    token_hash      BLOB NOT NULL UNIQUE,
    request_key     TEXT NOT NULL,
    request_key_fp  TEXT NOT NULL,
    requested_at    INTEGER NOT NULL,
    -- pending -> completed (package uploaded) -> closed (new password set)
    status          TEXT NOT NULL,
    package         BLOB,
    completed_by    TEXT,
    completed_at    INTEGER,
    closed_at       INTEGER
);
CREATE INDEX recovery_requests_user ON recovery_requests (user_id);

CREATE TABLE recovery_approvals (
    request_id   TEXT NOT NULL REFERENCES recovery_requests (request_id),
    admin_key    TEXT NOT NULL,
    approval     TEXT NOT NULL,
    approved_at  INTEGER NOT NULL,
    PRIMARY KEY (request_id, admin_key)
);

-- The hash-chained audit log (docs/RECOVERY.md §6). id is the insertion
-- order; seq is the chain's own counter. Rows are never updated or deleted.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    seq        INTEGER NOT NULL,
    time       INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    details    TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

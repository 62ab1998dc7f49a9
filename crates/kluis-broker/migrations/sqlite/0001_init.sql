-- Kluis broker schema, SQLite flavour. Times are Unix seconds.
CREATE TABLE users (
    user_id          TEXT PRIMARY KEY,
    email            TEXT NOT NULL UNIQUE,
    display_name     TEXT NOT NULL,
    display_name_lc  TEXT NOT NULL,
    -- OPAQUE registration record (RFC 9807): no password-equivalent without the OPRF seed.
    opaque_record    BLOB NOT NULL,
    ksf_m_cost_kib   INTEGER NOT NULL,
    ksf_t_cost       INTEGER NOT NULL,
    ksf_p_cost       INTEGER NOT NULL,
    public_key       TEXT NOT NULL,
    cert_issued_at   INTEGER,
    cert_signature   BLOB,
    created_at       INTEGER NOT NULL
);
CREATE INDEX users_display_name_lc ON users (display_name_lc);

CREATE TABLE sessions (
    session_id  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (user_id),
    token_hash  BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE escrow (
    user_id     TEXT NOT NULL REFERENCES users (user_id),
    version     INTEGER NOT NULL,
    blob        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, version)
);
-- Versions are append-only: never overwritten in place.
CREATE TRIGGER escrow_immutable BEFORE UPDATE ON escrow
BEGIN
    SELECT RAISE(ABORT, 'escrow versions are immutable');
END;

CREATE TABLE login_attempts (
    login_id    TEXT PRIMARY KEY,
    user_id     TEXT,
    state       BLOB NOT NULL,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE invites (
    token_hash  BLOB PRIMARY KEY,
    email       TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);

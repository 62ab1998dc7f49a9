-- Kluis broker schema, PostgreSQL flavour. Times are Unix seconds.
CREATE TABLE users (
    user_id          TEXT PRIMARY KEY,
    email            TEXT NOT NULL UNIQUE,
    display_name     TEXT NOT NULL,
    display_name_lc  TEXT NOT NULL,
    -- OPAQUE registration record (RFC 9807): no password-equivalent without the OPRF seed.
    opaque_record    BYTEA NOT NULL,
    ksf_m_cost_kib   BIGINT NOT NULL,
    ksf_t_cost       BIGINT NOT NULL,
    ksf_p_cost       BIGINT NOT NULL,
    public_key       TEXT NOT NULL,
    cert_issued_at   BIGINT,
    cert_signature   BYTEA,
    created_at       BIGINT NOT NULL
);
-- text_pattern_ops lets LIKE 'prefix%' use the index whatever the collation.
CREATE INDEX users_email_prefix ON users (email text_pattern_ops);
CREATE INDEX users_display_name_lc ON users (display_name_lc text_pattern_ops);

CREATE TABLE sessions (
    session_id  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (user_id),
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE escrow (
    user_id     TEXT NOT NULL REFERENCES users (user_id),
    version     BIGINT NOT NULL,
    blob        BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, version)
);
-- Versions are append-only: never overwritten in place.
CREATE FUNCTION kluis_escrow_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'escrow versions are immutable';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER escrow_immutable BEFORE UPDATE ON escrow
    FOR EACH ROW EXECUTE FUNCTION kluis_escrow_immutable();

CREATE TABLE login_attempts (
    login_id    TEXT PRIMARY KEY,
    user_id     TEXT,
    state       BYTEA NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE invites (
    token_hash  BYTEA PRIMARY KEY,
    email       TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

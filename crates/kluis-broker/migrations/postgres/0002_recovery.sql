-- Organisation policy, deprovisioning, recovery and the audit log (issue 4).
-- PostgreSQL flavour. Times are Unix seconds. Every table here is
-- insert-only except users.disabled_at and the status of a recovery request.

ALTER TABLE users ADD COLUMN disabled_at BIGINT;

CREATE TABLE policies (
    version      BIGINT PRIMARY KEY,
    policy_json  TEXT NOT NULL,
    issued_at    BIGINT NOT NULL,
    signature    BYTEA NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE FUNCTION kluis_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER policies_immutable BEFORE UPDATE ON policies
    FOR EACH ROW EXECUTE FUNCTION kluis_immutable();

CREATE TABLE recovery_escrow (
    user_id     TEXT NOT NULL REFERENCES users (user_id),
    version     BIGINT NOT NULL,
    blob        BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, version)
);
CREATE TRIGGER recovery_escrow_immutable BEFORE UPDATE ON recovery_escrow
    FOR EACH ROW EXECUTE FUNCTION kluis_immutable();

CREATE TABLE recovery_keys (
    version     BIGINT PRIMARY KEY,
    public_key  TEXT NOT NULL,
    threshold   BIGINT NOT NULL,
    shares      BIGINT NOT NULL,
    issued_at   BIGINT NOT NULL,
    signature   BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE admins (
    name        TEXT PRIMARY KEY,
    admin_key   TEXT NOT NULL UNIQUE,
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE recovery_requests (
    request_id      TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (user_id),
    token_hash      BYTEA NOT NULL UNIQUE,
    request_key     TEXT NOT NULL,
    request_key_fp  TEXT NOT NULL,
    requested_at    BIGINT NOT NULL,
    status          TEXT NOT NULL,
    package         BYTEA,
    completed_by    TEXT,
    completed_at    BIGINT,
    closed_at       BIGINT
);
CREATE INDEX recovery_requests_user ON recovery_requests (user_id);

CREATE TABLE recovery_approvals (
    request_id   TEXT NOT NULL REFERENCES recovery_requests (request_id),
    admin_key    TEXT NOT NULL,
    approval     TEXT NOT NULL,
    approved_at  BIGINT NOT NULL,
    PRIMARY KEY (request_id, admin_key)
);

CREATE TABLE audit_log (
    id         BIGSERIAL PRIMARY KEY,
    seq        BIGINT NOT NULL,
    time       BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    details    TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE FUNCTION kluis_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION kluis_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION kluis_append_only();

-- Decoy recovery requests (issue 18.4f). A recovery request for an address
-- with no account (or no recovery escrow) gets the same answer as a real
-- one, and its token then behaves like a real pending request's: its status
-- reads "pending" until it is cancelled. Nothing here is ever approved or
-- shown to administrators; the audit log records each decoy.
CREATE TABLE recovery_decoys (
    request_id      TEXT PRIMARY KEY,
    token_hash      BYTEA NOT NULL UNIQUE,
    email           TEXT NOT NULL,
    request_key     TEXT NOT NULL,
    request_key_fp  TEXT NOT NULL,
    requested_at    BIGINT NOT NULL,
    status          TEXT NOT NULL,
    closed_at       BIGINT
);

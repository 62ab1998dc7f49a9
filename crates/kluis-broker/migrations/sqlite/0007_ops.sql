-- Operational safety (issue 18.4). SQLite flavour.

-- The check value of the OPRF seed this database was set up with:
-- HMAC-SHA256 keyed with the seed over a fixed label (docs/BROKER.md, "The
-- OPRF seed"). One row, written by the first instance that starts on the
-- database; every later start compares its own seed with it. It is not the
-- seed and does not depend on any password: it gives no offline oracle.
CREATE TABLE oprf_seed_check (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    check_value  BLOB NOT NULL,
    created_at   INTEGER NOT NULL
);

-- Administrator API tokens expire. Tokens issued before this migration get
-- 90 days from the upgrade; `admin admins rotate` issues a new one.
ALTER TABLE admins ADD COLUMN token_expires_at INTEGER NOT NULL DEFAULT 0;
UPDATE admins SET token_expires_at = CAST(strftime('%s', 'now') AS INTEGER) + 7776000;

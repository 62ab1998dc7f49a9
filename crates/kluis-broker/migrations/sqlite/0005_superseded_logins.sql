-- Issue 18.3: a password change can be rolled back. Whenever a user's
-- OPAQUE record is replaced (password change, post-recovery reset, a
-- rollback), the record it replaces is kept with the escrow version it
-- opens (the latest one at that moment: the record is replaced before the
-- new escrow version is appended, in the same transaction). Insert-only.
CREATE TABLE superseded_logins (
    user_id         TEXT NOT NULL REFERENCES users (user_id),
    escrow_version  INTEGER NOT NULL,
    opaque_record   BLOB NOT NULL,
    ksf_m_cost_kib  INTEGER NOT NULL,
    ksf_t_cost      INTEGER NOT NULL,
    ksf_p_cost      INTEGER NOT NULL,
    PRIMARY KEY (user_id, escrow_version)
);
CREATE TRIGGER superseded_logins_immutable BEFORE UPDATE ON superseded_logins
BEGIN
    SELECT RAISE(ABORT, 'superseded logins are immutable');
END;
CREATE TRIGGER users_record_superseded AFTER UPDATE OF opaque_record ON users
WHEN OLD.opaque_record <> NEW.opaque_record
BEGIN
    INSERT OR IGNORE INTO superseded_logins
        (user_id, escrow_version, opaque_record, ksf_m_cost_kib, ksf_t_cost, ksf_p_cost)
    VALUES (OLD.user_id,
            (SELECT COALESCE(MAX(version), 0) FROM escrow WHERE user_id = OLD.user_id),
            OLD.opaque_record, OLD.ksf_m_cost_kib, OLD.ksf_t_cost, OLD.ksf_p_cost);
END;

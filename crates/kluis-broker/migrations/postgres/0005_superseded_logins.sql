-- Issue 18.3: a password change can be rolled back. Whenever a user's
-- OPAQUE record is replaced (password change, post-recovery reset, a
-- rollback), the record it replaces is kept with the escrow version it
-- opens (the latest one at that moment: the record is replaced before the
-- new escrow version is appended, in the same transaction). Insert-only.
CREATE TABLE superseded_logins (
    user_id         TEXT NOT NULL REFERENCES users (user_id),
    escrow_version  BIGINT NOT NULL,
    opaque_record   BYTEA NOT NULL,
    ksf_m_cost_kib  BIGINT NOT NULL,
    ksf_t_cost      BIGINT NOT NULL,
    ksf_p_cost      BIGINT NOT NULL,
    PRIMARY KEY (user_id, escrow_version)
);
CREATE FUNCTION kluis_superseded_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'superseded logins are immutable';
END
$$;
CREATE TRIGGER superseded_logins_immutable BEFORE UPDATE ON superseded_logins
    FOR EACH ROW EXECUTE FUNCTION kluis_superseded_immutable();
CREATE FUNCTION kluis_keep_superseded_login() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.opaque_record IS DISTINCT FROM NEW.opaque_record THEN
        INSERT INTO superseded_logins
            (user_id, escrow_version, opaque_record, ksf_m_cost_kib, ksf_t_cost, ksf_p_cost)
        VALUES (OLD.user_id,
                (SELECT COALESCE(MAX(version), 0) FROM escrow WHERE user_id = OLD.user_id),
                OLD.opaque_record, OLD.ksf_m_cost_kib, OLD.ksf_t_cost, OLD.ksf_p_cost)
        ON CONFLICT (user_id, escrow_version) DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_record_superseded
    AFTER UPDATE OF opaque_record ON users
    FOR EACH ROW EXECUTE FUNCTION kluis_keep_superseded_login();

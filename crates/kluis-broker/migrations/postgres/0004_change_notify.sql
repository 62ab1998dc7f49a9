-- Every commit that changes a user (directory entry, key, certificate,
-- disabled) or ends a session notifies `kluis_cache`, so that every broker
-- instance on this database drops its lookup cache (store/cache.rs).
-- NOTIFY is transactional: delivered at commit, never for a rollback.
-- Channels are database-wide, so the payload names the schema: instances
-- using another schema of the same database ignore it.
CREATE FUNCTION kluis_cache_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('kluis_cache', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

-- Row triggers: a statement that changes no row (the periodic purge of
-- expired sessions, most of the time) notifies nobody. Several rows in one
-- transaction make one notification (identical ones are folded).
CREATE TRIGGER users_cache_notify
    AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION kluis_cache_notify();

CREATE TRIGGER sessions_cache_notify
    AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION kluis_cache_notify();

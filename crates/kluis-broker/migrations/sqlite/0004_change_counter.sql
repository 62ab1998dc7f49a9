-- A counter that every change to a user (directory entry, key, certificate,
-- disabled) and every ended session increments, in the same transaction.
-- Each broker process polls it and drops its lookup cache when it moves
-- (store/cache.rs), so `kluis-broker admin user disable` run next to a
-- serving broker takes effect there too. Unrelated writes (login attempts,
-- audit rows, new sessions) leave it alone and keep the cache warm.
CREATE TABLE kluis_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL
);
INSERT INTO kluis_changes (id, n) VALUES (1, 0);

CREATE TRIGGER users_inserted_change AFTER INSERT ON users
BEGIN UPDATE kluis_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER users_updated_change AFTER UPDATE ON users
BEGIN UPDATE kluis_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER users_deleted_change AFTER DELETE ON users
BEGIN UPDATE kluis_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER sessions_updated_change AFTER UPDATE ON sessions
BEGIN UPDATE kluis_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER sessions_deleted_change AFTER DELETE ON sessions
BEGIN UPDATE kluis_changes SET n = n + 1 WHERE id = 1; END;

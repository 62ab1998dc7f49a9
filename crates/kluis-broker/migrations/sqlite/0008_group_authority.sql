-- Group authority and secret history (issue 18.4, docs/SHARING.md).
--
-- Administrators: only they change membership and keys. The creator of a
-- group is its first administrator; a group whose creator is no longer a
-- member makes every member an administrator (they all held that power
-- before this migration).
ALTER TABLE kluis_group_members ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0;
UPDATE kluis_group_members SET is_admin = 1
 WHERE user_id = (SELECT g.created_by FROM kluis_groups g WHERE g.name = group_name);
UPDATE kluis_group_members SET is_admin = 1
 WHERE group_name IN (SELECT group_name FROM kluis_group_members
                       GROUP BY group_name HAVING MAX(is_admin) = 0);

-- A member left and the key has not been rotated since.
ALTER TABLE kluis_groups ADD COLUMN rotation_due INTEGER NOT NULL DEFAULT 0;

-- Every version of the encrypted group secret, insert-only: a change
-- appends a version, nothing is overwritten, and members can read older
-- versions back. created_by is NULL for the version carried over from
-- before this migration.
CREATE TABLE kluis_group_secrets (
    group_name      TEXT NOT NULL REFERENCES kluis_groups (name),
    secret_version  INTEGER NOT NULL,
    key_version     INTEGER NOT NULL,
    public_key      TEXT NOT NULL,
    secret          BLOB NOT NULL,
    created_by      TEXT REFERENCES users (user_id),
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (group_name, secret_version)
);
INSERT INTO kluis_group_secrets
    (group_name, secret_version, key_version, public_key, secret, created_by, created_at)
SELECT name, 1, key_version, public_key, secret, NULL, created_at FROM kluis_groups;
ALTER TABLE kluis_groups DROP COLUMN secret;

CREATE TRIGGER kluis_group_secrets_no_update BEFORE UPDATE ON kluis_group_secrets
BEGIN
    SELECT RAISE(ABORT, 'group secret versions are append-only');
END;
CREATE TRIGGER kluis_group_secrets_no_delete BEFORE DELETE ON kluis_group_secrets
BEGIN
    SELECT RAISE(ABORT, 'group secret versions are append-only');
END;

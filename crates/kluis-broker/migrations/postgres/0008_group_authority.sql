-- Group authority and secret history (issue 18.4, docs/SHARING.md).
--
-- Administrators: only they change membership and keys. The creator of a
-- group is its first administrator; a group whose creator is no longer a
-- member makes every member an administrator (they all held that power
-- before this migration).
ALTER TABLE kluis_group_members ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE kluis_group_members m SET is_admin = TRUE
  FROM kluis_groups g WHERE g.name = m.group_name AND g.created_by = m.user_id;
UPDATE kluis_group_members SET is_admin = TRUE
 WHERE group_name IN (SELECT group_name FROM kluis_group_members
                       GROUP BY group_name HAVING NOT bool_or(is_admin));

-- A member left and the key has not been rotated since.
ALTER TABLE kluis_groups ADD COLUMN rotation_due BOOLEAN NOT NULL DEFAULT FALSE;

-- Every version of the encrypted group secret, insert-only: a change
-- appends a version, nothing is overwritten, and members can read older
-- versions back. created_by is NULL for the version carried over from
-- before this migration.
CREATE TABLE kluis_group_secrets (
    group_name      TEXT NOT NULL REFERENCES kluis_groups (name),
    secret_version  BIGINT NOT NULL,
    key_version     BIGINT NOT NULL,
    public_key      TEXT NOT NULL,
    secret          BYTEA NOT NULL,
    created_by      TEXT REFERENCES users (user_id),
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (group_name, secret_version)
);
INSERT INTO kluis_group_secrets
    (group_name, secret_version, key_version, public_key, secret, created_by, created_at)
SELECT name, 1, key_version, public_key, secret, NULL, created_at FROM kluis_groups;
ALTER TABLE kluis_groups DROP COLUMN secret;

CREATE FUNCTION kluis_group_secrets_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'group secret versions are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER kluis_group_secrets_append_only BEFORE UPDATE OR DELETE ON kluis_group_secrets
    FOR EACH ROW EXECUTE FUNCTION kluis_group_secrets_append_only();

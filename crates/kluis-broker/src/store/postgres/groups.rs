//! [`GroupStore`] on the postgres backend.

use async_trait::async_trait;
use kluis_types::{EncryptedGroupSecret, GroupCertificate, GroupName, UserId};
use sqlx::Row;

use super::super::StoreError;
use super::super::groups::{GroupRow, GroupStore, MemberChange, NewGroup, RawGroup};
use super::{PgStore, is_unique_violation};

#[async_trait]
impl GroupStore for PgStore {
    async fn create_group(&self, g: &NewGroup) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO kluis_groups (name, public_key, key_version, secret, created_by, created_at) \
             VALUES ($1, $2, 1, $3, $4, $5)",
        )
        .bind(g.name.as_str())
        .bind(g.public_key.as_str())
        .bind(g.secret.as_bytes())
        .bind(g.created_by.as_str())
        .bind(g.now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(StoreError::GroupTaken),
            Err(e) => return Err(e.into()),
        }
        sqlx::query(
            "INSERT INTO kluis_group_members (group_name, user_id, added_at) VALUES ($1, $2, $3)",
        )
        .bind(g.name.as_str())
        .bind(g.created_by.as_str())
        .bind(g.now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_groups(&self) -> Result<Vec<GroupRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, public_key, key_version, cert_issued_at, cert_signature FROM kluis_groups ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        let members = sqlx::query(
            "SELECT m.group_name, u.email FROM kluis_group_members m JOIN users u ON u.user_id = m.user_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let name: String = r.try_get("name")?;
            let mut emails = Vec::new();
            for m in &members {
                if m.try_get::<String, _>("group_name")? == name {
                    emails.push(m.try_get::<String, _>("email")?);
                }
            }
            out.push(
                RawGroup {
                    name,
                    public_key: r.try_get("public_key")?,
                    key_version: r.try_get("key_version")?,
                    cert_issued_at: r.try_get("cert_issued_at")?,
                    cert_signature: r.try_get("cert_signature")?,
                }
                .decode(emails)?,
            );
        }
        Ok(out)
    }

    async fn group_secret(
        &self,
        name: &GroupName,
        member: &UserId,
    ) -> Result<Option<(i64, EncryptedGroupSecret)>, StoreError> {
        let row = sqlx::query(
            "SELECT g.key_version, g.secret FROM kluis_groups g \
             JOIN kluis_group_members m ON m.group_name = g.name \
             WHERE g.name = $1 AND m.user_id = $2",
        )
        .bind(name.as_str())
        .bind(member.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok((
                r.try_get("key_version")?,
                EncryptedGroupSecret::new(r.try_get("secret")?),
            ))
        })
        .transpose()
    }

    async fn add_group_member(&self, c: &MemberChange<'_>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        check_change(&mut tx, c).await?;
        let added = sqlx::query(
            "INSERT INTO kluis_group_members (group_name, user_id, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(c.name.as_str())
        .bind(c.member.as_str())
        .bind(c.now)
        .execute(&mut *tx)
        .await?;
        if added.rows_affected() == 0 {
            return Err(StoreError::AlreadyGroupMember);
        }
        sqlx::query("UPDATE kluis_groups SET secret = $1 WHERE name = $2")
            .bind(c.secret.as_bytes())
            .bind(c.name.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn remove_group_member(&self, c: &MemberChange<'_>) -> Result<(), StoreError> {
        let Some(new_key) = c.new_key else {
            return Err(StoreError::VersionConflict);
        };
        let mut tx = self.pool.begin().await?;
        check_change(&mut tx, c).await?;
        let gone =
            sqlx::query("DELETE FROM kluis_group_members WHERE group_name = $1 AND user_id = $2")
                .bind(c.name.as_str())
                .bind(c.member.as_str())
                .execute(&mut *tx)
                .await?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotGroupMember);
        }
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM kluis_group_members WHERE group_name = $1")
                .bind(c.name.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if left == 0 {
            return Err(StoreError::LastGroupMember);
        }
        sqlx::query(
            "UPDATE kluis_groups SET public_key = $1, secret = $2, key_version = key_version + 1, \
             cert_issued_at = NULL, cert_signature = NULL WHERE name = $3",
        )
        .bind(new_key.as_str())
        .bind(c.secret.as_bytes())
        .bind(c.name.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_group_certificate(&self, cert: &GroupCertificate) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE kluis_groups SET cert_issued_at = $1, cert_signature = $2 WHERE name = $3 AND public_key = $4",
        )
        .bind(cert.issued_at)
        .bind(cert.signature.as_bytes())
        .bind(cert.name.as_str())
        .bind(cert.public_key.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// The actor is a member and the client worked from the current version.
async fn check_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    c: &MemberChange<'_>,
) -> Result<(), StoreError> {
    let version: Option<i64> = sqlx::query_scalar(
        "SELECT g.key_version FROM kluis_groups g JOIN kluis_group_members m ON m.group_name = g.name \
         WHERE g.name = $1 AND m.user_id = $2",
    )
    .bind(c.name.as_str())
    .bind(c.actor.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    match version {
        None => Err(StoreError::NotGroupMember),
        Some(v) if v != c.expected_version => Err(StoreError::VersionConflict),
        Some(_) => Ok(()),
    }
}

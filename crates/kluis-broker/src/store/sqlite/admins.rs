//! [`AdminStore`] on the sqlite backend.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::super::admins::AdminStore;
use super::super::{AdminRow, AuditOf, StoreError, TokenHash};
use super::{SqliteStore, append_audit_rows, is_unique_violation};

/// Decodes `name, admin_key, created_at, token_expires_at` of an `admins` row.
pub(super) fn admin_row(row: &SqliteRow) -> Result<AdminRow, StoreError> {
    Ok(AdminRow {
        name: row.try_get("name")?,
        admin_key: row.try_get("admin_key")?,
        created_at: row.try_get("created_at")?,
        token_expires_at: row.try_get("token_expires_at")?,
    })
}

/// The [`super::super::Store`] methods on administrators.
impl SqliteStore {
    pub(super) async fn insert_admin(
        &self,
        admin: &AdminRow,
        token_hash: &TokenHash,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "INSERT INTO admins (name, admin_key, token_hash, created_at, token_expires_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&admin.name)
        .bind(&admin.admin_key)
        .bind(&token_hash[..])
        .bind(admin.created_at)
        .bind(admin.token_expires_at)
        .execute(&mut *tx)
        .await;
        match done {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Duplicate("administrator"));
            }
            Err(e) => return Err(e.into()),
        }
        append_audit_rows(&mut tx, audit(&())?).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn select_admin(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AdminRow>, StoreError> {
        let row = sqlx::query(
            "SELECT name, admin_key, created_at, token_expires_at FROM admins WHERE token_hash = ?",
        )
        .bind(&hash[..])
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(admin_row).transpose()
    }

    pub(super) async fn select_admins(&self) -> Result<Vec<AdminRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, admin_key, created_at, token_expires_at FROM admins ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(admin_row).collect()
    }
}

#[async_trait]
impl AdminStore for SqliteStore {
    async fn remove_admin(&self, name: &str, audit: &AuditOf<'_, ()>) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM admins WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            return Ok(false);
        }
        append_audit_rows(&mut tx, audit(&())?).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn rotate_admin_token(
        &self,
        name: &str,
        token_hash: &TokenHash,
        expires_at: i64,
        audit: &AuditOf<'_, ()>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("UPDATE admins SET token_hash = ?, token_expires_at = ? WHERE name = ?")
                .bind(&token_hash[..])
                .bind(expires_at)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if done == 0 {
            return Ok(false);
        }
        append_audit_rows(&mut tx, audit(&())?).await?;
        tx.commit().await?;
        Ok(true)
    }
}

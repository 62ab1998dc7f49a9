//! Revoking and rotating administrator API tokens (issue 18.4): one
//! implementation, `impl_admin_store!`, expanded in `sqlite/admins.rs`
//! and `postgres/admins.rs`. Adding and looking up administrators stay on
//! [`super::Store`] (the same macro writes the methods it calls).
//!
//! Only the SHA-256 of a token is stored (`admins.token_hash`), with its
//! expiry (`admins.token_expires_at`, migration 7).

use async_trait::async_trait;

use super::{AuditOf, StoreError, TokenHash};

/// Removing administrators and replacing their tokens.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Deletes the administrator `name`, and with it their token, in one
    /// transaction with `audit`'s rows. `false` (and nothing written) when
    /// no administrator has that name.
    async fn remove_admin(&self, name: &str, audit: &AuditOf<'_, ()>) -> Result<bool, StoreError>;

    /// Replaces the token of `name` (its hash and expiry): the old token
    /// stops working in the same transaction as `audit`'s rows. `false`
    /// (and nothing written) when no administrator has that name.
    async fn rotate_admin_token(
        &self,
        name: &str,
        token_hash: &TokenHash,
        expires_at: i64,
        audit: &AuditOf<'_, ()>,
    ) -> Result<bool, StoreError>;
}

/// The one implementation of [`AdminStore`], expanded for a backend in
/// `sqlite/admins.rs` and `postgres/admins.rs`: `impl_admin_store!(Store)`. The
/// expanding module's parent provides the shared SQL helpers
/// (`store/sql_common.rs`) and its dialect (`begin_write`, …).
macro_rules! impl_admin_store {
    ($store:ty) => {
        use async_trait::async_trait;
        use sqlx::Row;

        use super::super::admins::AdminStore;
        use super::super::{AdminRow, AuditOf, StoreError, TokenHash};
        use super::{append_audit_rows, is_unique_violation};

        /// Decodes `name, admin_key, created_at, token_expires_at` of an `admins` row.
        pub(super) fn admin_row(row: &super::common::DbRow) -> Result<AdminRow, StoreError> {
            Ok(AdminRow {
                name: row.try_get("name")?,
                admin_key: row.try_get("admin_key")?,
                created_at: row.try_get("created_at")?,
                token_expires_at: row.try_get("token_expires_at")?,
            })
        }

        /// The [`super::super::Store`] methods on administrators.
        impl $store {
            pub(super) async fn insert_admin(
                &self,
                admin: &AdminRow,
                token_hash: &TokenHash,
                audit: &AuditOf<'_, ()>,
            ) -> Result<(), StoreError> {
                let mut tx = super::begin_write(&self.pool).await?;
                let done = sqlx::query(
                    "INSERT INTO admins (name, admin_key, token_hash, created_at, token_expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
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
                let row =
                    sqlx::query("SELECT name, admin_key, created_at, token_expires_at FROM admins WHERE token_hash = $1")
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
        impl AdminStore for $store {
            async fn remove_admin(&self, name: &str, audit: &AuditOf<'_, ()>) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                let gone = sqlx::query("DELETE FROM admins WHERE name = $1")
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
                    sqlx::query("UPDATE admins SET token_hash = $1, token_expires_at = $2 WHERE name = $3")
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
    };
}
pub(crate) use impl_admin_store;

//! The administrator aggregate: recovery administrators and their API
//! tokens (issue 18.4). One implementation, `impl_admin_store!`, expanded
//! in `sqlite/admins.rs` and `postgres/admins.rs`.
//!
//! Only the SHA-256 of a token is stored (`admins.token_hash`), with its
//! expiry (`admins.token_expires_at`, migration 7).

use async_trait::async_trait;

use super::{AuditOf, StoreError, TokenHash};

/// A recovery administrator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminRow {
    /// Unique name.
    pub name: String,
    /// `kluis-admin-ed25519:…`.
    pub admin_key: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When the API token stops working (Unix seconds).
    pub token_expires_at: i64,
}
/// Adding, looking up and removing administrators, and replacing their
/// tokens.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Adds a recovery administrator ([`StoreError::Duplicate`] if the name,
    /// key or token is taken).
    async fn add_admin(
        &self,
        admin: &AdminRow,
        token_hash: &TokenHash,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError>;

    /// The administrator an API token belongs to.
    async fn admin_by_token_hash(&self, hash: &TokenHash) -> Result<Option<AdminRow>, StoreError>;

    /// Every administrator, by name.
    async fn list_admins(&self) -> Result<Vec<AdminRow>, StoreError>;

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
        use super::common::{DbQuery, DbRow, fetch_all, fetch_optional, write_audited};
        use super::append_audit_rows;

        /// Decodes `name, admin_key, created_at, token_expires_at` of an `admins` row.
        pub(super) fn admin_row(row: &DbRow) -> Result<AdminRow, StoreError> {
            Ok(AdminRow {
                name: row.try_get("name")?,
                admin_key: row.try_get("admin_key")?,
                created_at: row.try_get("created_at")?,
                token_expires_at: row.try_get("token_expires_at")?,
            })
        }

        impl $store {
            /// Runs `change` (one named administrator's row) and, if it
            /// found the row, `audit`'s rows, in one transaction; whether
            /// it found the row.
            async fn change_admin(
                &self,
                change: DbQuery<'_>,
                audit: &AuditOf<'_, ()>,
            ) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                if change.execute(&mut *tx).await?.rows_affected() == 0 {
                    return Ok(false);
                }
                append_audit_rows(&mut tx, audit(&())?).await?;
                tx.commit().await?;
                Ok(true)
            }
        }

        #[async_trait]
        impl AdminStore for $store {
            async fn add_admin(
                &self,
                admin: &AdminRow,
                token_hash: &TokenHash,
                audit: &AuditOf<'_, ()>,
            ) -> Result<(), StoreError> {
                let write = sqlx::query(
                    "INSERT INTO admins (name, admin_key, token_hash, created_at, token_expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&admin.name)
                .bind(&admin.admin_key)
                .bind(&token_hash[..])
                .bind(admin.created_at)
                .bind(admin.token_expires_at);
                let taken = StoreError::Duplicate("administrator");
                write_audited(&self.pool, write, Some(taken), audit).await
            }

            async fn admin_by_token_hash(
                &self,
                hash: &TokenHash,
            ) -> Result<Option<AdminRow>, StoreError> {
                let query = sqlx::query(
                    "SELECT name, admin_key, created_at, token_expires_at FROM admins WHERE token_hash = $1",
                )
                .bind(&hash[..]);
                fetch_optional(&self.pool, query, admin_row).await
            }

            async fn list_admins(&self) -> Result<Vec<AdminRow>, StoreError> {
                let query = sqlx::query(
                    "SELECT name, admin_key, created_at, token_expires_at FROM admins ORDER BY name",
                );
                fetch_all(&self.pool, query, admin_row).await
            }

            async fn remove_admin(&self, name: &str, audit: &AuditOf<'_, ()>) -> Result<bool, StoreError> {
                self.change_admin(sqlx::query("DELETE FROM admins WHERE name = $1").bind(name), audit)
                    .await
            }

            async fn rotate_admin_token(
                &self,
                name: &str,
                token_hash: &TokenHash,
                expires_at: i64,
                audit: &AuditOf<'_, ()>,
            ) -> Result<bool, StoreError> {
                let change = sqlx::query(
                    "UPDATE admins SET token_hash = $1, token_expires_at = $2 WHERE name = $3",
                )
                .bind(&token_hash[..])
                .bind(expires_at)
                .bind(name);
                self.change_admin(change, audit).await
            }
        }
    };
}
pub(crate) use impl_admin_store;

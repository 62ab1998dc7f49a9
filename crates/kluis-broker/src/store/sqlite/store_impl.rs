//! The aggregates' traits of [`Store`](super::super::Store) on the sqlite
//! backend: the shared implementation of `store/sql_store.rs`.

use super::SqliteStore;

super::super::sql_store::impl_store!(SqliteStore, sqlx::Sqlite);

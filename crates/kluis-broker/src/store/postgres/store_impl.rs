//! The aggregates' traits of [`Store`](super::super::Store) on the postgres
//! backend: the shared implementation of `store/sql_store.rs`.

use super::PgStore;

super::super::sql_store::impl_store!(PgStore, sqlx::Postgres);

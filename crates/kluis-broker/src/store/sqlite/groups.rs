//! [`GroupStore`](super::super::GroupStore) on the sqlite backend: the
//! shared implementation of `store/groups.rs`.

use super::SqliteStore;

super::super::groups::impl_group_store!(SqliteStore, sqlx::Sqlite);

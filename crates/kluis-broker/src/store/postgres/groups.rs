//! [`GroupStore`](super::super::GroupStore) on the postgres backend: the
//! shared implementation of `store/groups.rs`.

use super::PgStore;

super::super::groups::impl_group_store!(PgStore, sqlx::Postgres);

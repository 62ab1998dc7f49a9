//! [`RollbackStore`](super::super::RollbackStore) on the sqlite backend: the shared
//! implementation of `store/rollback.rs`.

use super::SqliteStore;

super::super::rollback::impl_rollback_store!(SqliteStore);

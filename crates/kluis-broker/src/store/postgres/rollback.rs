//! [`RollbackStore`](super::super::RollbackStore) on the postgres backend: the shared
//! implementation of `store/rollback.rs`.

use super::PgStore;

super::super::rollback::impl_rollback_store!(PgStore);

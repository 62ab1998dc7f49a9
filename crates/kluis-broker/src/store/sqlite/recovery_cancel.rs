//! [`RecoveryCancelStore`](super::super::RecoveryCancelStore) on the sqlite backend: the shared
//! implementation of `store/recovery_cancel.rs`.

use super::SqliteStore;

super::super::recovery_cancel::impl_recovery_cancel_store!(SqliteStore);

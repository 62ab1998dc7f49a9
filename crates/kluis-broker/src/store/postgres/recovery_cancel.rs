//! [`RecoveryCancelStore`](super::super::RecoveryCancelStore) on the postgres backend: the shared
//! implementation of `store/recovery_cancel.rs`.

use super::PgStore;

super::super::recovery_cancel::impl_recovery_cancel_store!(PgStore);

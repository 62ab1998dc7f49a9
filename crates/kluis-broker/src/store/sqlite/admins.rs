//! [`AdminStore`](super::super::AdminStore) on the sqlite backend: the shared
//! implementation of `store/admins.rs`.

use super::SqliteStore;

super::super::admins::impl_admin_store!(SqliteStore);

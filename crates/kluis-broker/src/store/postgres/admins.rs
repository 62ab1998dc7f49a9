//! [`AdminStore`](super::super::AdminStore) on the postgres backend: the shared
//! implementation of `store/admins.rs`.

use super::PgStore;

super::super::admins::impl_admin_store!(PgStore);

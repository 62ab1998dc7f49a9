//! [`SeedStore`](super::super::SeedStore) on the postgres backend: the shared
//! implementation of `store/seed.rs`.

use super::PgStore;

super::super::seed::impl_seed_store!(PgStore);

//! [`SeedStore`](super::super::SeedStore) on the sqlite backend: the shared
//! implementation of `store/seed.rs`.

use super::SqliteStore;

super::super::seed::impl_seed_store!(SqliteStore);

//! The per-account login limit's state (issue 18.2), one implementation per
//! backend in `sqlite/throttle.rs` and `postgres/throttle.rs`: tables
//! `login_backoff` and `login_ceiling` (migration 6). The decision itself
//! is [`crate::ratelimit::account::LoginPolicy`]; the store only makes it
//! atomic across every instance on the database.

use async_trait::async_trait;

use super::StoreError;
pub use crate::ratelimit::account::ThrottleState;

/// Whose state: an account key (SHA-256 of the address) and a source
/// network.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleKey<'a> {
    /// [`crate::ratelimit::account_key`] of the address.
    pub account: &'a [u8; 32],
    /// [`crate::ratelimit::network`] of the client, as text.
    pub network: &'a str,
}

/// Decides on the loaded state; true (with the state charged) lets the
/// attempt go on.
pub type Decide<'a> = dyn Fn(&mut ThrottleState) -> bool + Send + Sync + 'a;

/// Storage of login throttling state.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Loads the state of `key` (defaults for missing rows), runs `decide`
    /// and, if it returns true, stores the charged state — all in one
    /// transaction that excludes every other attempt on the same account,
    /// from any instance. Returns what `decide` returned.
    async fn throttle_login(
        &self,
        key: ThrottleKey<'_>,
        decide: &Decide<'_>,
    ) -> Result<bool, StoreError>;
    /// Replaces the backoff row of `key` with `state` (a successful login).
    async fn reset_login_backoff(
        &self,
        key: ThrottleKey<'_>,
        state: &ThrottleState,
    ) -> Result<(), StoreError>;
    /// Deletes the rows that have expired by `now` (Unix s); returns how
    /// many.
    async fn prune_login_throttle(&self, now: i64) -> Result<u64, StoreError>;
}

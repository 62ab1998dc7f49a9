//! Invites: single-use registration tokens (only their hashes).

use async_trait::async_trait;
use kluis_types::Email;

use super::{StoreError, TokenHash};

/// Recording invites (registration consumes them, see
/// [`super::UserStore::create_user`]).
#[async_trait]
pub trait InviteStore: Send + Sync {
    /// Records a new invite.
    async fn create_invite(
        &self,
        hash: &TokenHash,
        email: Option<&Email>,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError>;
}

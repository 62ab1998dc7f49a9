//! Cancelling recovery requests, client side (issue 18.4g; the broker's
//! `api/recovery_cancel.rs`, docs/RECOVERY.md §7).

use kluis_types::{RecoveryCancelResponse, RequestId};
use reqwest::Method;

use crate::{AccountClient, AccountError, RecoveryTicket};

impl AccountClient {
    /// Withdraws a request this client made (with its request token). A
    /// request that was already used or cancelled is a 409
    /// [`AccountError::Broker`].
    pub async fn cancel_recovery(&self, ticket: &RecoveryTicket) -> Result<(), AccountError> {
        self.http
            .no_content_bearer::<()>(
                Method::POST,
                &format!("v1/recovery/requests/{}/cancel", ticket.request_id),
                ticket.token.expose(),
                None,
            )
            .await
    }

    /// As the logged-in owner: cancels every open recovery request for this
    /// account (say, one somebody else started in your name). Returns the
    /// requests cancelled; none is not an error.
    pub async fn cancel_recovery_requests(&self) -> Result<Vec<RequestId>, AccountError> {
        let session = self.require_session()?;
        let answer: RecoveryCancelResponse = self
            .http
            .json::<(), _>(
                Method::POST,
                &format!("v1/users/{}/recovery/cancel", session.user_id),
                Some(&session.token),
                None,
            )
            .await?;
        Ok(answer.cancelled)
    }
}

//! Client of the broker's recovery-administrator API (`/v1/admin/…`),
//! authenticated with an admin token. It only moves data: the admin tool
//! (`kluis admin recovery …`) signs approvals and re-seals on its own
//! machine, and verifies everything it fetches.

use kluis_types::{
    AdminInfo, AdminList, AdminRecoveryCase, AdminToken, ApprovalWire, EncryptedEscrow,
    RecoveryKeyInfo, RecoveryPackageUpload, RecoveryRequestList, RecoveryStatus, RequestId,
};
use reqwest::Method;

use crate::AccountError;
use crate::http::{BrokerHttp, check_url};

/// A recovery administrator's connection to the broker.
pub struct AdminClient {
    http: BrokerHttp,
    token: AdminToken,
}

impl AdminClient {
    /// Checks the URL (https, or http to loopback) and keeps the token.
    pub fn new(broker_url: &str, token: AdminToken) -> Result<Self, AccountError> {
        Ok(Self {
            http: BrokerHttp::new(check_url(broker_url)?)?,
            token,
        })
    }

    async fn get<R: serde::de::DeserializeOwned>(&self, path: &str) -> Result<R, AccountError> {
        self.http
            .json_bearer::<(), R>(Method::GET, path, self.token.expose(), None)
            .await
    }

    /// Who the token belongs to.
    pub async fn whoami(&self) -> Result<AdminInfo, AccountError> {
        self.get("v1/admin/whoami").await
    }

    /// All administrators.
    pub async fn admins(&self) -> Result<AdminList, AccountError> {
        self.get("v1/admin/admins").await
    }

    /// Publishes the org-signed recovery key.
    pub async fn publish_recovery_key(&self, info: &RecoveryKeyInfo) -> Result<(), AccountError> {
        self.http
            .no_content_bearer(
                Method::PUT,
                "v1/admin/recovery/key",
                self.token.expose(),
                Some(info),
            )
            .await
    }

    /// Requests not yet closed.
    pub async fn open_requests(&self) -> Result<RecoveryRequestList, AccountError> {
        self.get("v1/admin/recovery/requests").await
    }

    /// One case (records `escrow.recovery_read` on the broker).
    pub async fn case(&self, id: &RequestId) -> Result<AdminRecoveryCase, AccountError> {
        self.get(&format!("v1/admin/recovery/requests/{id}")).await
    }

    /// Submits a signed approval.
    pub async fn approve(
        &self,
        id: &RequestId,
        approval: &ApprovalWire,
    ) -> Result<RecoveryStatus, AccountError> {
        self.http
            .json_bearer(
                Method::POST,
                &format!("v1/admin/recovery/requests/{id}/approvals"),
                self.token.expose(),
                Some(approval),
            )
            .await
    }

    /// Cancels a request (pending, or completed but not yet used): it can
    /// no longer be approved or used. Audited on the broker.
    pub async fn cancel(&self, id: &RequestId) -> Result<(), AccountError> {
        self.http
            .no_content_bearer::<()>(
                Method::POST,
                &format!("v1/admin/recovery/requests/{id}/cancel"),
                self.token.expose(),
                None,
            )
            .await
    }

    /// Uploads the identity re-sealed to the request key.
    pub async fn upload_package(
        &self,
        id: &RequestId,
        package: Vec<u8>,
    ) -> Result<(), AccountError> {
        self.http
            .no_content_bearer(
                Method::POST,
                &format!("v1/admin/recovery/requests/{id}/package"),
                self.token.expose(),
                Some(&RecoveryPackageUpload {
                    package: EncryptedEscrow::new(package),
                }),
            )
            .await
    }
}

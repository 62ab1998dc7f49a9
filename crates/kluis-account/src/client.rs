//! The account client: registration, login, logout, password change,
//! whoami and verified directory lookups.

use std::path::PathBuf;

use kluis_types::{
    DirectoryResponse, DisplayName, Email, EncryptedEscrow, ErrorCode, EscrowRecord,
    EscrowRollbackRequest, EscrowVersionList, Invite, InviteToken, KsfParams, LoginFinishRequest,
    LoginFinishResponse, LoginId, LoginStartRequest, LoginStartResponse, OpaqueMessage,
    OrgPublicKey, PasswordFinishRequest, PasswordFinishResponse, PasswordStartRequest,
    PublicKeyString, ReauthProof, RecoveryKeyInfo, RecoveryResetRequest, RecoveryStartRequest,
    RecoveryStartResponse, RecoveryStatus, RecoveryToken, RegisterFinishRequest,
    RegisterFinishResponse, RegisterStartRequest, RegisterStartResponse, RequestId, SessionToken,
    SignedPolicy, WhoAmI,
};
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, Identifiers, RegistrationResponse,
};
use rand::rngs::OsRng;
use reqwest::Method;

use crate::directory::{
    DirectorySearch, PinStatus, RejectedEntry, RejectionReason, VerifiedContact, verify_entry,
};
use crate::escrow::{seal_identity, unseal_identity};
use crate::http::{BrokerHttp, check_url};
use crate::pins::{PinCheck, PinStore};
use crate::policy::{PolicyPin, PolicyPinStore};
use crate::session::StoredSession;
use crate::{AccountError, ExportKey, KsfPolicy, OrgPolicy, Password, SecretIdentity};

/// The OPAQUE cipher suite; must match the broker's.
struct Suite;

impl opaque_ke::CipherSuite for Suite {
    type OprfCs = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::TripleDh<opaque_ke::Ristretto255, sha2::Sha512>;
    type Ksf = opaque_ke::argon2::Argon2<'static>;
}

/// Where the broker is, which org key to trust, where to keep state.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Broker base URL (`https://…`; `http://` only to loopback).
    pub broker_url: String,
    /// The organisation key, pinned from the invite or configuration —
    /// never taken from the broker API.
    pub org_public_key: OrgPublicKey,
    /// Directory for `session.json` and `pins.json`.
    pub state_dir: PathBuf,
    /// Argon2id policy ([`KsfPolicy::Standard`] unless testing).
    pub ksf_policy: KsfPolicy,
}

impl ClientConfig {
    /// A production configuration.
    pub fn new(
        broker_url: impl Into<String>,
        org_public_key: OrgPublicKey,
        state_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            broker_url: broker_url.into(),
            org_public_key,
            state_dir: state_dir.into(),
            ksf_policy: KsfPolicy::Standard,
        }
    }

    /// Configuration taken from an invite (broker URL and org key).
    pub fn from_invite(invite: &Invite, state_dir: impl Into<PathBuf>) -> Self {
        Self::new(invite.broker_url.clone(), invite.org_public_key, state_dir)
    }

    /// Overrides the Argon2id policy.
    pub fn with_ksf_policy(mut self, policy: KsfPolicy) -> Self {
        self.ksf_policy = policy;
        self
    }
}

/// Arguments of [`AccountClient::register`].
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    /// Account address.
    pub email: &'a str,
    /// Name shown in the directory.
    pub display_name: &'a str,
    /// The password (never leaves this process).
    pub password: &'a Password,
    /// The public key text (`kluis…`), generated locally by the caller.
    pub public_key: &'a str,
    /// The secret identity bytes, sealed before upload.
    pub secret_identity: &'a [u8],
    /// Invite token, for invite-only brokers.
    pub invite: Option<&'a InviteToken>,
}

/// Seals this account's identity to the organisation recovery key (the
/// escrow copy kept next to the password-sealed one). This crate does not
/// link the file format, so the caller provides it (the `kluis` CLI uses
/// `kluis_recovery::seal_for_recovery`).
pub trait RecoverySealer: Sync {
    /// The escrow copy of `email`'s identity sealed to `recovery_key`.
    fn seal_for_recovery(
        &self,
        recovery_key: &PublicKeyString,
        email: &Email,
    ) -> Result<Vec<u8>, String>;
}

/// A recovery request this client made: keep it (0600) until the new
/// password is set. Holds the bearer token, so `Debug` redacts it.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct RecoveryTicket {
    /// Broker base URL.
    pub broker_url: String,
    /// The account.
    pub email: Email,
    /// The request.
    pub request_id: RequestId,
    /// Authorises the user's side of the request.
    pub token: RecoveryToken,
    /// When the broker recorded it.
    pub requested_at: i64,
}

impl std::fmt::Debug for RecoveryTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecoveryTicket({}, {})", self.email, self.request_id)
    }
}

/// A successful login (or registration, which logs in).
#[derive(Debug)]
pub struct LoginOutcome {
    /// The stored session.
    pub session: StoredSession,
    /// The account's public key as the broker has it.
    pub public_key: PublicKeyString,
    /// The unsealed secret identity, for the caller to cache locally.
    pub secret_identity: SecretIdentity,
    /// The escrow version it came from.
    pub escrow_version: i64,
    /// Whether a recovery escrow copy is on file: the organisation can
    /// recover this key (tell the user).
    pub recovery_enrolled: bool,
}

/// A completed password change.
#[derive(Debug, Clone, Copy)]
pub struct PasswordChanged {
    /// Escrow version holding the re-sealed identity.
    pub escrow_version: i64,
    /// Sessions ended on other devices.
    pub sessions_revoked: u64,
}

/// Client of one broker, with one state directory.
pub struct AccountClient {
    pub(crate) config: ClientConfig,
    pub(crate) http: BrokerHttp,
    pins: PinStore,
    policy_pin: PolicyPinStore,
}

fn map_login_failure(err: AccountError) -> AccountError {
    match err {
        AccountError::Broker {
            code: ErrorCode::LoginFailed,
            ..
        } => AccountError::LoginFailed,
        AccountError::Broker {
            code: ErrorCode::AccountDisabled,
            ..
        } => AccountError::AccountDisabled,
        other => other,
    }
}

impl AccountClient {
    /// Validates the configuration (URL scheme) and builds the client.
    pub fn new(config: ClientConfig) -> Result<Self, AccountError> {
        let url = check_url(&config.broker_url)?;
        Ok(Self {
            http: BrokerHttp::new(url)?,
            pins: PinStore::new(&config.state_dir),
            policy_pin: PolicyPinStore::new(&config.state_dir),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The stored session for this broker, if any.
    pub fn session(&self) -> Result<Option<StoredSession>, AccountError> {
        Ok(StoredSession::load(&self.config.state_dir)?
            .filter(|s| s.broker_url == self.config.broker_url))
    }

    pub(crate) fn require_session(&self) -> Result<StoredSession, AccountError> {
        self.session()?.ok_or(AccountError::NotLoggedIn)
    }

    /// Registers an account (OPAQUE), uploads the public key and the sealed
    /// identity, then logs in on this device.
    pub async fn register(&self, reg: &Registration<'_>) -> Result<LoginOutcome, AccountError> {
        self.register_enrolled(reg, None).await
    }

    /// Applies the organisation policy that came with a registration or
    /// password-change start: verifies it, checks the password strength,
    /// picks Argon2id parameters at or above its minimum, and seals the
    /// recovery escrow copy when recovery is mandatory.
    fn apply_policy(
        &self,
        answer: &RegisterStartResponse,
        email: &Email,
        password: &Password,
        user_inputs: &[&str],
        sealer: Option<&dyn RecoverySealer>,
    ) -> Result<(KsfParams, Option<EncryptedEscrow>), AccountError> {
        let signed = answer
            .policy
            .clone()
            .unwrap_or_else(SignedPolicy::default_unsigned);
        let policy = self
            .policy_pin
            .accept_policy(&self.config.org_public_key, &signed)?;
        let text = std::str::from_utf8(password.as_bytes())
            .map_err(|_| AccountError::Protocol("password is not UTF-8"))?;
        crate::policy::check_password_strength(&policy, text, user_inputs)?;
        let mut ksf = self.config.ksf_policy.registration_params();
        if self.config.ksf_policy == KsfPolicy::Standard {
            ksf.m_cost_kib = ksf.m_cost_kib.max(policy.min_ksf.m_cost_kib);
            ksf.t_cost = ksf.t_cost.max(policy.min_ksf.t_cost);
            ksf.p_cost = ksf.p_cost.max(policy.min_ksf.p_cost);
        }
        if let Some(info) = &answer.recovery_key {
            self.policy_pin
                .accept_recovery_key(&self.config.org_public_key, info)?;
        }
        if !policy.recovery_mandatory {
            return Ok((ksf, None));
        }
        let info = answer
            .recovery_key
            .as_ref()
            .ok_or(AccountError::RecoveryEnrolment(
                "no organisation recovery key is published yet; ask your administrator",
            ))?;
        let sealer = sealer.ok_or(AccountError::RecoveryEnrolment(
            "this program cannot seal your key to the recovery key",
        ))?;
        let sealed = sealer
            .seal_for_recovery(&info.public_key, email)
            .map_err(|_| AccountError::RecoveryEnrolment("sealing to the recovery key failed"))?;
        Ok((ksf, Some(EncryptedEscrow::new(sealed))))
    }

    /// [`AccountClient::register`] under the organisation policy: when it
    /// makes recovery mandatory, `sealer` seals the identity to the
    /// (verified, pinned) recovery key and the copy is uploaded with the
    /// registration.
    pub async fn register_enrolled(
        &self,
        reg: &Registration<'_>,
        sealer: Option<&dyn RecoverySealer>,
    ) -> Result<LoginOutcome, AccountError> {
        let email = Email::parse(reg.email)?;
        let display_name = DisplayName::parse(reg.display_name)?;
        let public_key = PublicKeyString::parse(reg.public_key)?;

        let start = ClientRegistration::<Suite>::start(&mut OsRng, reg.password.as_bytes())
            .map_err(|_| AccountError::Protocol("registration start"))?;
        let answer: RegisterStartResponse = self
            .http
            .json(
                Method::POST,
                "v1/register/start",
                None,
                Some(&RegisterStartRequest {
                    email: email.clone(),
                    registration_request: OpaqueMessage::new(start.message.serialize().to_vec()),
                }),
            )
            .await?;
        let (ksf, recovery_escrow) = self.apply_policy(
            &answer,
            &email,
            reg.password,
            &[email.as_str(), display_name.as_str()],
            sealer,
        )?;
        let argon = self.config.ksf_policy.argon2(&ksf)?;
        let response =
            RegistrationResponse::<Suite>::deserialize(answer.registration_response.as_bytes())
                .map_err(|_| AccountError::Protocol("malformed registration response"))?;
        let finish = start
            .state
            .finish(
                &mut OsRng,
                reg.password.as_bytes(),
                response,
                ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&argon)),
            )
            .map_err(|_| AccountError::Protocol("registration finish"))?;
        let export_key = ExportKey::from_slice(&finish.export_key)
            .ok_or(AccountError::Protocol("export key length"))?;
        let escrow = seal_identity(&export_key, &email, reg.secret_identity)?;
        let _: RegisterFinishResponse = self
            .http
            .json(
                Method::POST,
                "v1/register/finish",
                None,
                Some(&RegisterFinishRequest {
                    email: email.clone(),
                    display_name,
                    invite: reg.invite.cloned(),
                    registration_upload: OpaqueMessage::new(finish.message.serialize().to_vec()),
                    ksf,
                    public_key,
                    escrow,
                    recovery_escrow,
                }),
            )
            .await?;
        self.login(email.as_str(), reg.password).await
    }

    /// Runs the client half of an OPAQUE login without the final round
    /// trip: `login/start`, then the key confirmation computed locally.
    /// Returns the login id, the finalization and the export key. A wrong
    /// password and an unknown account fail here, identically.
    async fn opaque_prove(
        &self,
        email: &Email,
        password: &Password,
    ) -> Result<(LoginId, OpaqueMessage, ExportKey), AccountError> {
        let start = ClientLogin::<Suite>::start(&mut OsRng, password.as_bytes())
            .map_err(|_| AccountError::Protocol("login start"))?;
        let answer: LoginStartResponse = self
            .http
            .json(
                Method::POST,
                "v1/login/start",
                None,
                Some(&LoginStartRequest {
                    email: email.clone(),
                    credential_request: OpaqueMessage::new(start.message.serialize().to_vec()),
                }),
            )
            .await?;
        let argon = self.config.ksf_policy.argon2(&answer.ksf)?;
        let response =
            CredentialResponse::<Suite>::deserialize(answer.credential_response.as_bytes())
                .map_err(|_| AccountError::Protocol("malformed credential response"))?;
        let finish = start
            .state
            .finish(
                &mut OsRng,
                password.as_bytes(),
                response,
                ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&argon)),
            )
            .map_err(|_| AccountError::LoginFailed)?;
        let export_key = ExportKey::from_slice(&finish.export_key)
            .ok_or(AccountError::Protocol("export key length"))?;
        Ok((
            answer.login_id,
            OpaqueMessage::new(finish.message.serialize().to_vec()),
            export_key,
        ))
    }

    /// Runs OPAQUE login; returns the new session and the export key.
    async fn opaque_login(
        &self,
        email: &Email,
        password: &Password,
    ) -> Result<(LoginFinishResponse, ExportKey), AccountError> {
        let (login_id, credential_finalization, export_key) =
            self.opaque_prove(email, password).await?;
        let session: LoginFinishResponse = self
            .http
            .json(
                Method::POST,
                "v1/login/finish",
                None,
                Some(&LoginFinishRequest {
                    login_id,
                    credential_finalization,
                }),
            )
            .await
            .map_err(map_login_failure)?;
        Ok((session, export_key))
    }

    /// A fresh proof of `password` for a change request (issue 18.3): the
    /// broker verifies and consumes it in that request, so a stolen session
    /// token alone cannot change the password or the escrow.
    async fn reauth(
        &self,
        email: &Email,
        password: &Password,
    ) -> Result<ReauthProof, AccountError> {
        let (login_id, credential_finalization, _export) =
            self.opaque_prove(email, password).await?;
        Ok(ReauthProof {
            login_id,
            credential_finalization,
        })
    }

    fn store_session(
        &self,
        email: &Email,
        s: &LoginFinishResponse,
    ) -> Result<StoredSession, AccountError> {
        let stored = StoredSession {
            broker_url: self.config.broker_url.clone(),
            user_id: s.user_id.clone(),
            email: email.clone(),
            session_id: s.session_id.clone(),
            token: s.session_token.clone(),
            expires_at: s.expires_at,
        };
        stored.save(&self.config.state_dir)?;
        Ok(stored)
    }

    async fn latest_escrow(&self, session: &StoredSession) -> Result<EscrowRecord, AccountError> {
        self.http
            .json::<(), _>(
                Method::GET,
                &format!("v1/users/{}/escrow", session.user_id),
                Some(&session.token),
                None,
            )
            .await
    }

    /// Logs in (possibly on a new device), stores the session and returns
    /// the unsealed identity.
    pub async fn login(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<LoginOutcome, AccountError> {
        let email = Email::parse(email)?;
        let (answer, export_key) = self.opaque_login(&email, password).await?;
        let session = self.store_session(&email, &answer)?;
        let record = self.latest_escrow(&session).await?;
        let secret_identity = unseal_identity(&export_key, &email, &record.escrow)?;
        let me = self.whoami_with(&session.token).await?;
        Ok(LoginOutcome {
            session,
            public_key: me.public_key,
            secret_identity,
            escrow_version: record.version,
            recovery_enrolled: me.recovery_enrolled,
        })
    }

    /// Ends the stored session on the broker and forgets it locally.
    pub async fn logout(&self) -> Result<(), AccountError> {
        let session = self.require_session()?;
        let result = self
            .http
            .no_content::<()>(Method::DELETE, "v1/session", Some(&session.token), None)
            .await;
        StoredSession::remove(&self.config.state_dir)?;
        match result {
            // Already expired or revoked: the local state is gone, which is the point.
            Err(AccountError::Broker { status: 401, .. }) => Ok(()),
            other => other,
        }
    }

    async fn whoami_with(&self, token: &SessionToken) -> Result<WhoAmI, AccountError> {
        self.http
            .json::<(), _>(Method::GET, "v1/session", Some(token), None)
            .await
    }

    /// Joining with `invite`: from now on this client refuses any policy
    /// older than the one the invite was made under (and so the unsigned
    /// default once a signed policy exists). The invite must name this
    /// client's broker and org key.
    pub fn accept_invite(&self, invite: &Invite) -> Result<(), AccountError> {
        if invite.org_public_key != self.config.org_public_key
            || invite.broker_url != self.config.broker_url
        {
            return Err(AccountError::Protocol("the invite is for another broker"));
        }
        self.policy_pin
            .require_invite_version(invite.min_policy_version)
    }

    /// The organisation policy, verified with the pinned org key (and not
    /// older than a version seen before). Needs a session.
    pub async fn fetch_policy(&self) -> Result<OrgPolicy, AccountError> {
        let session = self.require_session()?;
        let signed: SignedPolicy = self
            .http
            .json::<(), _>(Method::GET, "v1/policy", Some(&session.token), None)
            .await?;
        self.policy_pin
            .accept_policy(&self.config.org_public_key, &signed)
    }

    /// The organisation recovery key, verified with the pinned org key and
    /// checked against (or pinned as) the one seen at enrolment. `None` when
    /// none is published. Needs a session.
    pub async fn fetch_recovery_key(&self) -> Result<Option<RecoveryKeyInfo>, AccountError> {
        let session = self.require_session()?;
        let answer = self
            .http
            .json::<(), RecoveryKeyInfo>(Method::GET, "v1/recovery/key", Some(&session.token), None)
            .await;
        let info = match answer {
            Ok(info) => info,
            Err(AccountError::Broker { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.policy_pin
            .accept_recovery_key(&self.config.org_public_key, &info)?;
        Ok(Some(info))
    }

    /// Records in the broker's audit log that this user shared (or stopped
    /// sharing) `folder` with `recipient` (a user or group name), with the
    /// folder's label if any. Names only; never keys or content.
    pub async fn record_share(
        &self,
        event: kluis_types::ShareEvent,
        recipient: &str,
        folder: &str,
        label: Option<kluis_types::Label>,
    ) -> Result<(), AccountError> {
        let session = self.require_session()?;
        self.http
            .no_content(
                Method::POST,
                "v1/audit/shares",
                Some(&session.token),
                Some(&kluis_types::ShareAuditRequest {
                    event,
                    recipient: recipient.to_owned(),
                    folder: folder.to_owned(),
                    label: label.map(|l| l.as_str().to_owned()),
                }),
            )
            .await
    }

    /// What this client has pinned about the policy and recovery key.
    pub fn policy_pin(&self) -> Result<PolicyPin, AccountError> {
        self.policy_pin.load()
    }

    /// The account behind the stored session.
    pub async fn whoami(&self) -> Result<WhoAmI, AccountError> {
        let session = self.require_session()?;
        self.whoami_with(&session.token).await
    }

    /// Changes the password: proves the old one with a fresh OPAQUE login,
    /// re-seals the identity under the new export key (and checks that it
    /// opens), rotates the OPAQUE record with a second, single-use proof of
    /// the old password in the same request (a stolen token cannot), and
    /// ends every other session (including older ones of this device). The
    /// fresh session is stored.
    pub async fn change_password(
        &self,
        old: &Password,
        new: &Password,
    ) -> Result<PasswordChanged, AccountError> {
        self.change_password_enrolled(old, new, None).await
    }

    /// [`AccountClient::change_password`] under the organisation policy:
    /// the new password must be strong enough, and when recovery is
    /// mandatory `sealer` writes a fresh escrow copy for the recovery key.
    pub async fn change_password_enrolled(
        &self,
        old: &Password,
        new: &Password,
        sealer: Option<&dyn RecoverySealer>,
    ) -> Result<PasswordChanged, AccountError> {
        let email = self.require_session()?.email;
        let (answer, old_export) = self.opaque_login(&email, old).await?;
        let session = self.store_session(&email, &answer)?;
        let record = self.latest_escrow(&session).await?;
        let identity = unseal_identity(&old_export, &email, &record.escrow)?;

        let start = ClientRegistration::<Suite>::start(&mut OsRng, new.as_bytes())
            .map_err(|_| AccountError::Protocol("registration start"))?;
        let path = format!("v1/users/{}/password", session.user_id);
        let reply: RegisterStartResponse = self
            .http
            .json(
                Method::POST,
                &format!("{path}/start"),
                Some(&session.token),
                Some(&PasswordStartRequest {
                    registration_request: OpaqueMessage::new(start.message.serialize().to_vec()),
                }),
            )
            .await?;
        let (ksf, recovery_escrow) =
            self.apply_policy(&reply, &email, new, &[email.as_str()], sealer)?;
        let argon = self.config.ksf_policy.argon2(&ksf)?;
        let response =
            RegistrationResponse::<Suite>::deserialize(reply.registration_response.as_bytes())
                .map_err(|_| AccountError::Protocol("malformed registration response"))?;
        let finish = start
            .state
            .finish(
                &mut OsRng,
                new.as_bytes(),
                response,
                ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&argon)),
            )
            .map_err(|_| AccountError::Protocol("registration finish"))?;
        let new_export = ExportKey::from_slice(&finish.export_key)
            .ok_or(AccountError::Protocol("export key length"))?;
        let escrow = seal_identity(&new_export, &email, identity.expose())?;
        // Never hand the broker an escrow version this client cannot open.
        unseal_identity(&new_export, &email, &escrow)?;
        // Last: the proof lives for the broker's login timeout (2 minutes).
        let reauth = self.reauth(&email, old).await?;
        let done: PasswordFinishResponse = self
            .http
            .json(
                Method::POST,
                &format!("{path}/finish"),
                Some(&session.token),
                Some(&PasswordFinishRequest {
                    registration_upload: OpaqueMessage::new(finish.message.serialize().to_vec()),
                    ksf,
                    escrow,
                    expected_escrow_version: record.version,
                    reauth,
                    recovery_escrow,
                }),
            )
            .await?;
        // Confirm: the version now current on the broker opens under the
        // new password. If it does not, return to the old password and
        // version at once, so the account never stays on one that cannot
        // be opened.
        let current = self.latest_escrow(&session).await?;
        if current.version == done.escrow_version
            && unseal_identity(&new_export, &email, &current.escrow).is_err()
        {
            self.roll_back_with(&session, &email, new, record.version)
                .await?;
            return Err(AccountError::EscrowUnseal);
        }
        Ok(PasswordChanged {
            escrow_version: done.escrow_version,
            sessions_revoked: done.sessions_revoked,
        })
    }

    /// Returns to the password and escrow version in effect before a
    /// password change: `to_version` is the escrow version that was latest
    /// before it (one less than [`PasswordChanged::escrow_version`]).
    /// Proves the *current* password; afterwards the previous password is
    /// the one that logs in. Every other session ends; the fresh one is
    /// stored.
    pub async fn roll_back_password(
        &self,
        current: &Password,
        to_version: i64,
    ) -> Result<PasswordChanged, AccountError> {
        let email = self.require_session()?.email;
        let (answer, _export) = self.opaque_login(&email, current).await?;
        let session = self.store_session(&email, &answer)?;
        self.roll_back_with(&session, &email, current, to_version)
            .await
    }

    /// Undoes the last password change: [`Self::roll_back_password`] to
    /// the escrow version just below the latest one. Proves the *current*
    /// password; [`AccountError::NothingToUndo`] when there is only one
    /// version.
    pub async fn undo_password_change(
        &self,
        current: &Password,
    ) -> Result<PasswordChanged, AccountError> {
        let email = self.require_session()?.email;
        let (answer, _export) = self.opaque_login(&email, current).await?;
        let session = self.store_session(&email, &answer)?;
        let latest = self.latest_escrow(&session).await?.version;
        if latest < 2 {
            return Err(AccountError::NothingToUndo);
        }
        self.roll_back_with(&session, &email, current, latest - 1)
            .await
    }

    async fn roll_back_with(
        &self,
        session: &StoredSession,
        email: &Email,
        current: &Password,
        to_version: i64,
    ) -> Result<PasswordChanged, AccountError> {
        let list: EscrowVersionList = self
            .http
            .json::<(), _>(
                Method::GET,
                &format!("v1/users/{}/escrow/versions", session.user_id),
                Some(&session.token),
                None,
            )
            .await?;
        let expected_version = list.versions.last().map_or(0, |v| v.version);
        let reauth = self.reauth(email, current).await?;
        let done: PasswordFinishResponse = self
            .http
            .json(
                Method::POST,
                &format!("v1/users/{}/escrow/rollback", session.user_id),
                Some(&session.token),
                Some(&EscrowRollbackRequest {
                    to_version,
                    expected_version,
                    reauth,
                }),
            )
            .await?;
        Ok(PasswordChanged {
            escrow_version: done.escrow_version,
            sessions_revoked: done.sessions_revoked,
        })
    }

    /// Asks for recovery of `email` (no session needed: the password is
    /// lost). `request_key` is the one-time key the caller made (its text
    /// and full fingerprint, 64 hex); it never leaves the caller.
    pub async fn request_recovery(
        &self,
        email: &str,
        request_key: &str,
        request_key_fingerprint: &str,
    ) -> Result<RecoveryTicket, AccountError> {
        let email = Email::parse(email)?;
        let answer: RecoveryStartResponse = self
            .http
            .json(
                Method::POST,
                "v1/recovery/requests",
                None,
                Some(&RecoveryStartRequest {
                    email: email.clone(),
                    request_key: PublicKeyString::parse(request_key)?,
                    request_key_fingerprint: request_key_fingerprint.to_owned(),
                }),
            )
            .await?;
        Ok(RecoveryTicket {
            broker_url: self.config.broker_url.clone(),
            email,
            request_id: answer.request_id,
            token: answer.token,
            requested_at: answer.requested_at,
        })
    }

    /// Where a recovery request stands (and the package, once completed).
    pub async fn recovery_status(
        &self,
        ticket: &RecoveryTicket,
    ) -> Result<RecoveryStatus, AccountError> {
        self.http
            .json_bearer::<(), _>(
                Method::GET,
                &format!("v1/recovery/requests/{}", ticket.request_id),
                ticket.token.expose(),
                None,
            )
            .await
    }

    /// After a completed recovery: sets `new` as the password (a fresh
    /// OPAQUE registration), seals `secret_identity` under it, writes a new
    /// recovery escrow copy when policy requires it, and ends every session.
    /// The request is spent. Log in with the new password afterwards.
    pub async fn reset_after_recovery(
        &self,
        ticket: &RecoveryTicket,
        new: &Password,
        secret_identity: &[u8],
        sealer: Option<&dyn RecoverySealer>,
    ) -> Result<(), AccountError> {
        let path = format!("v1/recovery/requests/{}/password", ticket.request_id);
        let start = ClientRegistration::<Suite>::start(&mut OsRng, new.as_bytes())
            .map_err(|_| AccountError::Protocol("registration start"))?;
        let reply: RegisterStartResponse = self
            .http
            .json_bearer(
                Method::POST,
                &format!("{path}/start"),
                ticket.token.expose(),
                Some(&PasswordStartRequest {
                    registration_request: OpaqueMessage::new(start.message.serialize().to_vec()),
                }),
            )
            .await?;
        let (ksf, recovery_escrow) =
            self.apply_policy(&reply, &ticket.email, new, &[ticket.email.as_str()], sealer)?;
        let argon = self.config.ksf_policy.argon2(&ksf)?;
        let response =
            RegistrationResponse::<Suite>::deserialize(reply.registration_response.as_bytes())
                .map_err(|_| AccountError::Protocol("malformed registration response"))?;
        let finish = start
            .state
            .finish(
                &mut OsRng,
                new.as_bytes(),
                response,
                ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&argon)),
            )
            .map_err(|_| AccountError::Protocol("registration finish"))?;
        let export = ExportKey::from_slice(&finish.export_key)
            .ok_or(AccountError::Protocol("export key length"))?;
        let escrow = seal_identity(&export, &ticket.email, secret_identity)?;
        self.http
            .no_content_bearer(
                Method::POST,
                &format!("{path}/finish"),
                ticket.token.expose(),
                Some(&RecoveryResetRequest {
                    registration_upload: OpaqueMessage::new(finish.message.serialize().to_vec()),
                    ksf,
                    escrow,
                    recovery_escrow,
                }),
            )
            .await
    }

    pub(crate) async fn directory(&self, query: &str) -> Result<DirectoryResponse, AccountError> {
        let session = self.require_session()?;
        let q: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
        self.http
            .json::<(), _>(
                Method::GET,
                &format!("v1/directory?q={q}"),
                Some(&session.token),
                None,
            )
            .await
    }

    /// Prefix search by e-mail or display name. Every entry is checked
    /// against the pinned org key and the TOFU pins; refused entries are
    /// returned separately (and logged as warnings) — never as contacts.
    pub async fn find_contacts(&self, query: &str) -> Result<DirectorySearch, AccountError> {
        let answer = self.directory(query).await?;
        let mut out = DirectorySearch::default();
        for entry in answer.entries {
            let presented = entry.public_key.fingerprint();
            let reject = |reason| RejectedEntry {
                email: entry.email.clone(),
                presented: presented.clone(),
                reason,
            };
            match self.check_entry(&entry) {
                Ok(contact) => out.contacts.push(contact),
                Err(AccountError::Uncertified(_)) => {
                    out.rejected.push(reject(RejectionReason::Uncertified))
                }
                Err(AccountError::KeyChanged { pinned, .. }) => {
                    out.rejected
                        .push(reject(RejectionReason::KeyChanged { pinned }));
                }
                Err(AccountError::BadCertificate(_)) => {
                    out.rejected.push(reject(RejectionReason::BadCertificate));
                }
                Err(other) => return Err(other),
            }
        }
        for r in &out.rejected {
            tracing::warn!(email = %r.email, fingerprint = %r.presented, reason = ?r.reason, "refused directory entry");
        }
        Ok(out)
    }

    fn check_entry(
        &self,
        entry: &kluis_types::DirectoryEntry,
    ) -> Result<VerifiedContact, AccountError> {
        let certified_at = verify_entry(&self.config.org_public_key, entry)?;
        let pin = match self.pins.check_and_pin(&entry.email, &entry.public_key)? {
            PinCheck::NewlyPinned => PinStatus::NewlyPinned,
            PinCheck::Matches => PinStatus::Matches,
            PinCheck::Changed(old) => {
                return Err(AccountError::KeyChanged {
                    email: entry.email.clone(),
                    pinned: old.fingerprint,
                    presented: entry.public_key.fingerprint(),
                });
            }
        };
        Ok(VerifiedContact {
            email: entry.email.clone(),
            display_name: entry.display_name.clone(),
            public_key: entry.public_key.clone(),
            fingerprint: entry.public_key.fingerprint(),
            certified_at,
            pin,
            status: entry.status,
        })
    }

    /// Resolves one recipient by exact e-mail: certified by the org and
    /// matching its pin, or an error (never a silent fallback).
    pub async fn resolve_recipient(&self, email: &str) -> Result<VerifiedContact, AccountError> {
        let email = Email::parse(email)?;
        let answer = self.directory(email.as_str()).await?;
        let entry = answer
            .entries
            .into_iter()
            .find(|e| e.email == email)
            .ok_or_else(|| AccountError::NotFound(email.clone()))?;
        // A revoked (departed) colleague still resolves, with `status`
        // saying so: callers refuse to encrypt new files to them and show
        // them as "left".
        self.check_entry(&entry)
    }

    /// Forgets the pin of `email` after the user compared the new
    /// fingerprint out of band; the next lookup pins the new key.
    pub fn accept_key_change(&self, email: &str) -> Result<bool, AccountError> {
        self.pins.forget(&Email::parse(email)?)
    }
}

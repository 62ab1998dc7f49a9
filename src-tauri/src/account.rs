//! Account commands: the first-run wizard's "register" and "log in" with an
//! organisation's broker, and Settings' "change password" and "log out".
//! Each parses its input and delegates to [`kluis_client::account`], the
//! same functions `kluis account …` runs.

use kluis_agent::Request;
use kluis_client::account::{self as device, BrokerRef};
use serde::{Deserialize, Serialize};
use tauri::State;
use zeroize::Zeroizing;

use crate::error::{ErrorCode, UiError};
use crate::shell::Shell;

/// Which broker: an invite, or its address and the organisation key.
#[derive(Debug, Clone, Default, Deserialize, specta::Type)]
pub struct BrokerChoice {
    /// The invite text the administrator sent (`kluis-invite:…`).
    pub invite: Option<String>,
    /// The broker's address, when there is no invite.
    pub url: Option<String>,
    /// The organisation key (`kluis-org-ed25519:…`), with `url`.
    pub org_key: Option<String>,
}

fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl BrokerChoice {
    fn resolve(&self) -> Result<(BrokerRef, Option<kluis_client::Invite>), UiError> {
        if let Some(text) = given(&self.invite) {
            let (broker, invite) = BrokerRef::from_invite(text)?;
            return Ok((broker, Some(invite)));
        }
        match (given(&self.url), given(&self.org_key)) {
            (Some(url), Some(key)) => Ok((
                BrokerRef {
                    url: url.to_owned(),
                    org_public_key: key.to_owned(),
                },
                None,
            )),
            _ => Err(UiError::new(
                ErrorCode::NoBroker,
                "give the invite, or the server address and the organisation key",
            )),
        }
    }
}

/// An account just registered or logged in on this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct EnrolledView {
    /// The account's address.
    pub email: String,
    /// The broker.
    pub broker_url: String,
    /// This device's key fingerprint, to compare with IT.
    pub fingerprint: String,
    /// Whether the organisation can recover the key.
    pub recovery_enrolled: bool,
}

impl From<device::Enrolled> for EnrolledView {
    fn from(e: device::Enrolled) -> Self {
        EnrolledView {
            email: e.email,
            broker_url: e.broker_url,
            fingerprint: e.fingerprint,
            recovery_enrolled: e.recovery_enrolled,
        }
    }
}

/// This device's account, as Settings shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct AccountView {
    /// The account's address.
    pub email: String,
    /// The broker.
    pub broker_url: String,
    /// Whether the organisation can recover the key, when last seen.
    pub recovery_enrolled: Option<bool>,
    /// The last recovery of this key by IT that this device was told of.
    pub last_recovery: Option<RecoveryView>,
}

/// A recovery of this key by IT, as Settings shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct RecoveryView {
    /// When it was completed (UTC text).
    pub when: String,
    /// The administrators who approved it.
    pub approvers: Vec<String>,
    /// The administrator who re-sealed the key.
    pub by: String,
}

/// Register a new account with an organisation's broker; the identity is
/// made on this device and kept sealed with `password`.
#[tauri::command]
#[specta::specta]
pub async fn register_account(
    shell: State<'_, Shell>,
    broker: BrokerChoice,
    email: String,
    name: String,
    password: String,
) -> Result<EnrolledView, UiError> {
    let password = Zeroizing::new(password);
    let (broker, invite) = broker.resolve()?;
    let home = shell.engine.home().clone();
    let enrolled = device::register(
        &home,
        &broker,
        invite.as_ref(),
        email.trim(),
        name.trim(),
        &password,
    )
    .await?;
    Ok(enrolled.into())
}

/// Log in to an existing account (a new device): the key comes back from
/// the broker's escrow and is kept on this device sealed with `password`.
#[tauri::command]
#[specta::specta]
pub async fn login_account(
    shell: State<'_, Shell>,
    broker: BrokerChoice,
    email: String,
    password: String,
) -> Result<EnrolledView, UiError> {
    let password = Zeroizing::new(password);
    let (broker, _) = broker.resolve()?;
    let home = shell.engine.home().clone();
    Ok(device::login(&home, &broker, email.trim(), &password)
        .await?
        .into())
}

/// This device's account (`None`: the key lives on this computer only).
#[tauri::command]
#[specta::specta]
pub fn get_account(shell: State<'_, Shell>) -> Result<Option<AccountView>, UiError> {
    let home = shell.engine.home();
    let Some(a) = device::load(home)? else {
        return Ok(None);
    };
    let last_recovery = device::known_recoveries(home)?
        .into_iter()
        .next()
        .map(|r| RecoveryView {
            when: device::utc_text(r.completed_at),
            approvers: r.approvals.into_iter().map(|a| a.admin_name).collect(),
            by: r.completed_by,
        });
    Ok(Some(AccountView {
        email: a.email,
        broker_url: a.broker_url,
        recovery_enrolled: a.recovery_enrolled,
        last_recovery,
    }))
}

/// What a password change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
pub struct PasswordChangeView {
    /// Sessions ended on other devices.
    pub sessions_revoked: u32,
    /// Whether the organisation can recover the key.
    pub recovery_enrolled: bool,
}

/// Change the account password (broker and this device's identity file).
#[tauri::command]
#[specta::specta]
pub async fn change_password(
    shell: State<'_, Shell>,
    old_password: String,
    new_password: String,
) -> Result<PasswordChangeView, UiError> {
    let (old, new) = (Zeroizing::new(old_password), Zeroizing::new(new_password));
    let home = shell.engine.home().clone();
    let changed = device::change_password(&home, &old, &new).await?;
    Ok(PasswordChangeView {
        sessions_revoked: u32::try_from(changed.sessions_revoked).unwrap_or(u32::MAX),
        recovery_enrolled: changed.recovery_enrolled,
    })
}

/// Undo the last password change: the broker returns to the password and
/// escrow version before it, and this device's identity is sealed with the
/// previous password again (issue 18.3).
#[tauri::command]
#[specta::specta]
pub async fn undo_password_change(
    shell: State<'_, Shell>,
    current_password: String,
    previous_password: String,
) -> Result<PasswordChangeView, UiError> {
    let (current, previous) = (
        Zeroizing::new(current_password),
        Zeroizing::new(previous_password),
    );
    let home = shell.engine.home().clone();
    let undone = device::undo_password_change(&home, &current, &previous).await?;
    Ok(PasswordChangeView {
        sessions_revoked: u32::try_from(undone.sessions_revoked).unwrap_or(u32::MAX),
        recovery_enrolled: undone.recovery_enrolled,
    })
}

/// End this device's session on the broker and lock Kluis: the next
/// unlock needs the password.
#[tauri::command]
#[specta::specta]
pub async fn logout_account(shell: State<'_, Shell>) -> Result<(), UiError> {
    let home = shell.engine.home().clone();
    device::logout(&home).await?;
    shell.engine.call(&Request::Lock)?;
    Ok(())
}

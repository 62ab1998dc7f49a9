//! This device's Kluis account: the identity file, and (when the person
//! uses an organisation's broker) where the account lives.
//!
//! The account password is also the passphrase of the local identity file,
//! so a person has one secret. The identity is generated here, on the
//! device; the broker only receives its public key and the escrow sealed
//! under the OPAQUE export key (and, when the organisation's policy makes
//! recovery mandatory, a copy sealed to the organisation recovery key).
//!
//! `kluis account …` and the tray's first-run wizard and Settings call the
//! same functions, so both behave alike. Nothing here prints, logs or keeps
//! a password; the identity file is written owner-only and atomically.
//!
//! Files, in [`AgentHome`]:
//! - `identity.kluiskey` (data): the identity sealed with the password;
//! - `account.json` (config): broker URL, pinned organisation key, e-mail,
//!   and whether recovery enrolment was last seen on (no secrets);
//! - `account/` (data): the session and the key pins of `kluis-account`.

use std::path::{Path, PathBuf};

use kluis_account::{
    AccountClient, AccountError, ClientConfig, Invite, KsfPolicy, OrgPublicKey, Password,
    RecoverySealer, Registration,
};
use kluis_format::{Identity, KdfParams, Recipient, open_identity, seal_identity};
use serde::{Deserialize, Serialize};

use crate::ErrorCode;
use kluis_agent::AgentHome;
use kluis_agent::keycache::KeyCache;

/// The shortest password Kluis accepts for an identity, whatever the
/// organisation's policy (which may ask for more).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Failures of the account operations. [`DeviceAccountError::code`] gives
/// a stable code for the UI.
#[derive(Debug, thiserror::Error)]
pub enum DeviceAccountError {
    /// The broker, the network or the client state said no.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// No account on this device (local identity only, or none).
    #[error(
        "this device has no Kluis account yet; register or log in (`kluis account register` or `kluis account login`)"
    )]
    NoAccount,
    /// An identity file already exists.
    #[error("{0} already exists")]
    IdentityExists(PathBuf),
    /// The password is shorter than [`MIN_PASSWORD_CHARS`].
    #[error("the password needs at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    /// The existing identity file does not open with the given password.
    #[error("your existing identity {0} must open with the account password")]
    ExistingIdentity(PathBuf),
    /// The identity file does not open with the current password.
    #[error("the current password does not open {0}")]
    WrongPassword(PathBuf),
    /// The last password change was undone on the broker, but the
    /// previous password given does not log in.
    #[error(
        "your account is back on the password you had before the change, but the one you gave for it does not log in; run `kluis account login` with your previous password"
    )]
    PreviousPasswordRefused,
    /// The escrowed identity is not the registered key.
    #[error(
        "the identity in your escrow does not match your registered public key; contact your administrator"
    )]
    KeyMismatch,
    /// The organisation key text is not one.
    #[error("invalid organisation key (expected kluis-org-ed25519:…)")]
    BadOrgKey,
    /// The invite text is not one.
    #[error("invalid invite")]
    BadInvite,
    /// `account.json` cannot be parsed.
    #[error("{0} is damaged")]
    Damaged(PathBuf),
    /// The identity could not be sealed or read.
    #[error("identity: {0}")]
    Identity(#[from] kluis_format::Error),
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl DeviceAccountError {
    /// A stable code for the UI (`{code, message}`).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Account(e) => match e {
                AccountError::LoginFailed => ErrorCode::LoginFailed,
                AccountError::Http(_) => ErrorCode::Unreachable,
                AccountError::InsecureUrl(_) => ErrorCode::InsecureUrl,
                AccountError::InvalidInput { .. } => ErrorCode::InvalidInput,
                AccountError::WeakPassword { .. } => ErrorCode::WeakPassword,
                AccountError::RecoveryEnrolment(_) => ErrorCode::RecoveryEnrolment,
                AccountError::AccountDisabled => ErrorCode::AccountDisabled,
                AccountError::NotLoggedIn => ErrorCode::NotLoggedIn,
                AccountError::NothingToUndo => ErrorCode::NothingToUndo,
                AccountError::Broker { status: 409, .. } => ErrorCode::AccountExists,
                AccountError::Broker { status: 403, .. } => ErrorCode::Forbidden,
                _ => ErrorCode::Account,
            },
            Self::NoAccount => ErrorCode::NoAccount,
            Self::IdentityExists(_) => ErrorCode::IdentityExists,
            Self::PasswordTooShort => ErrorCode::PasswordTooShort,
            Self::ExistingIdentity(_) | Self::WrongPassword(_) => ErrorCode::WrongPassword,
            Self::KeyMismatch => ErrorCode::KeyMismatch,
            Self::PreviousPasswordRefused => ErrorCode::PreviousPasswordRefused,
            Self::BadOrgKey => ErrorCode::BadOrgKey,
            Self::BadInvite => ErrorCode::BadInvite,
            Self::Damaged(_) => ErrorCode::Damaged,
            Self::Identity(_) => ErrorCode::Identity,
            Self::Io { .. } => ErrorCode::Io,
        }
    }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DeviceAccountError {
    let path = path.to_path_buf();
    move |source| DeviceAccountError::Io {
        action,
        path,
        source,
    }
}

/// What this device remembers about its account (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountFile {
    /// The broker's base URL.
    pub broker_url: String,
    /// The organisation key pinned at enrolment (`kluis-org-ed25519:…`).
    pub org_public_key: String,
    /// The account's address.
    pub email: String,
    /// Whether the organisation could recover this key when last seen
    /// (register, login, password change); `None` from older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_enrolled: Option<bool>,
}

/// Where the account lives: a broker and the organisation key to pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRef {
    /// Base URL (`https://…`, or `http://` to loopback).
    pub url: String,
    /// `kluis-org-ed25519:…`.
    pub org_public_key: String,
}

impl BrokerRef {
    /// From an invite (its text, as the administrator sent it).
    pub fn from_invite(text: &str) -> Result<(Self, Invite), DeviceAccountError> {
        let invite = Invite::decode(text.trim()).map_err(|_| DeviceAccountError::BadInvite)?;
        Ok((
            BrokerRef {
                url: invite.broker_url.clone(),
                org_public_key: invite.org_public_key.to_string(),
            },
            invite,
        ))
    }
}

/// A registered or logged-in account on this device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    /// The account's address.
    pub email: String,
    /// The broker.
    pub broker_url: String,
    /// This identity's fingerprint, to compare with the administrator.
    pub fingerprint: String,
    /// Whether the organisation can recover this key (tell the person).
    pub recovery_enrolled: bool,
}

/// A completed password change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordChange {
    /// Sessions ended on other devices.
    pub sessions_revoked: u64,
    /// Whether the organisation can recover this key.
    pub recovery_enrolled: bool,
}

/// `account.json`.
pub fn account_file(home: &AgentHome) -> PathBuf {
    home.config.join("account.json")
}

/// The client state directory (session, pins).
pub fn state_dir(home: &AgentHome) -> PathBuf {
    home.data.join("account")
}

/// This device's account, if it has one.
pub fn load(home: &AgentHome) -> Result<Option<AccountFile>, DeviceAccountError> {
    let path = account_file(home);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| DeviceAccountError::Damaged(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", &path)(e)),
    }
}

/// Replace `account.json` atomically.
pub fn save(home: &AgentHome, account: &AccountFile) -> Result<(), DeviceAccountError> {
    let path = account_file(home);
    let text = serde_json::to_vec_pretty(account)
        .map_err(|_| DeviceAccountError::Damaged(path.clone()))?;
    write_private(&path, &text)
}

/// The environment variable with which tests of the whole system ask for
/// the insecure Argon2id parameters — only in a debug build. A release
/// build has no such switch: the name is not even in the binary (issue
/// 18.4d; `.ci/run` checks `target/release/kluis` for it).
#[cfg(debug_assertions)]
pub const INSECURE_TEST_KSF_VAR: Option<&str> = Some("KLUIS_INSECURE_TEST_KSF");
/// See the debug build's definition: `None` in a release build.
#[cfg(not(debug_assertions))]
pub const INSECURE_TEST_KSF_VAR: Option<&str> = None;

/// Argon2id parameters for accounts: [`KsfPolicy::Standard`], except that
/// a debug build honours [`INSECURE_TEST_KSF_VAR`]` = 1`.
pub fn ksf_policy() -> KsfPolicy {
    ksf_policy_from(INSECURE_TEST_KSF_VAR.and_then(std::env::var_os))
}

/// [`ksf_policy`] for a given value of the variable (`None`: unset, or a
/// release build, which never reads it).
fn ksf_policy_from(value: Option<std::ffi::OsString>) -> KsfPolicy {
    if INSECURE_TEST_KSF_VAR.is_some() && value.is_some_and(|v| v == "1") {
        KsfPolicy::InsecureTestOnly
    } else {
        KsfPolicy::Standard
    }
}

/// A client of `broker` with this device's state directory.
pub fn client(home: &AgentHome, broker: &BrokerRef) -> Result<AccountClient, DeviceAccountError> {
    let org =
        OrgPublicKey::parse(&broker.org_public_key).map_err(|_| DeviceAccountError::BadOrgKey)?;
    let config =
        ClientConfig::new(broker.url.clone(), org, state_dir(home)).with_ksf_policy(ksf_policy());
    Ok(AccountClient::new(config)?)
}

/// The client of this device's account.
pub fn device_client(home: &AgentHome) -> Result<(AccountClient, AccountFile), DeviceAccountError> {
    let account = load(home)?.ok_or(DeviceAccountError::NoAccount)?;
    let broker = BrokerRef {
        url: account.broker_url.clone(),
        org_public_key: account.org_public_key.clone(),
    };
    Ok((client(home, &broker)?, account))
}

/// Write a new owner-only file atomically (temporary file, fsync, rename).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DeviceAccountError> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io("write", path))
}

fn rng() -> impl rand_core::CryptoRng {
    crate::rng()
}

fn check_length(password: &str) -> Result<(), DeviceAccountError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(DeviceAccountError::PasswordTooShort);
    }
    Ok(())
}

/// Seal `identity` with `password` into `path` (owner-only, atomic).
pub fn seal_to_file(
    path: &Path,
    identity: &Identity,
    password: &str,
) -> Result<(), DeviceAccountError> {
    let sealed = seal_identity(
        identity,
        password.as_bytes(),
        KdfParams::DEFAULT,
        &mut rng(),
    )?;
    write_private(path, &sealed)
}

/// Keep `identity` as this device's own: sealed with `password` in the
/// identity file, and unlocked for this login session in the OS keyring
/// ([`KeyCache`], unless `KLUIS_NO_KEYRING=1`).
pub fn keep_identity(
    home: &AgentHome,
    identity: &Identity,
    password: &str,
) -> Result<(), DeviceAccountError> {
    seal_to_file(&home.identity_file(), identity, password)?;
    KeyCache::for_home(home).store(identity);
    Ok(())
}

/// A new identity for someone who keeps Kluis on this computer only (no
/// broker), sealed with `password`. Refuses to overwrite one.
pub fn create_local_identity(
    home: &AgentHome,
    password: &str,
) -> Result<String, DeviceAccountError> {
    check_length(password)?;
    let path = home.identity_file();
    if path.exists() {
        return Err(DeviceAccountError::IdentityExists(path));
    }
    let identity = Identity::generate(&mut rng());
    let sealed = seal_identity(
        &identity,
        password.as_bytes(),
        KdfParams::DEFAULT,
        &mut rng(),
    )?;
    write_private(&path, &sealed)?;
    Ok(identity.recipient().fingerprint().to_string())
}

/// Seals an identity to the organisation recovery key (recovery
/// enrolment), for [`AccountClient`]'s `*_enrolled` calls.
pub struct Sealer<'a>(pub &'a Identity);

impl RecoverySealer for Sealer<'_> {
    fn seal_for_recovery(
        &self,
        recovery_key: &kluis_types::PublicKeyString,
        email: &kluis_types::Email,
    ) -> Result<Vec<u8>, String> {
        let recipient: Recipient = recovery_key
            .as_str()
            .parse()
            .map_err(|_| "the recovery key is not a Kluis key".to_owned())?;
        kluis_recovery::seal_for_recovery(self.0, &recipient, email.as_str(), &mut rng())
            .map(|e| e.as_bytes().to_vec())
            .map_err(|e| e.to_string())
    }
}

/// A new account on `broker`: the identity already on this device (which
/// must open with `password`) or a new one; enrolled for recovery when the
/// organisation's policy requires it. Then the identity and `account.json`
/// are kept on this device.
pub async fn register(
    home: &AgentHome,
    broker: &BrokerRef,
    invite: Option<&Invite>,
    email: &str,
    display_name: &str,
    password: &str,
) -> Result<Enrolled, DeviceAccountError> {
    check_length(password)?;
    let path = home.identity_file();
    let identity = if path.exists() {
        let bytes = std::fs::read(&path).map_err(io("read", &path))?;
        open_identity(&bytes, password.as_bytes())
            .map_err(|_| DeviceAccountError::ExistingIdentity(path.clone()))?
    } else {
        Identity::generate(&mut rng())
    };
    let client = client(home, broker)?;
    if let Some(invite) = invite {
        // The policy the invite was made under is the oldest this device
        // accepts (issue 18.4c).
        client.accept_invite(invite)?;
    }
    let secret = identity.to_secret_bytes();
    let public = identity.recipient().to_string();
    let pw = Password::new(password);
    let registration = Registration {
        email,
        display_name,
        password: &pw,
        public_key: &public,
        secret_identity: &secret[..],
        invite: invite.map(|i| &i.token),
    };
    let outcome = client
        .register_enrolled(&registration, Some(&Sealer(&identity)))
        .await?;
    remember(
        home,
        broker,
        email,
        &identity,
        password,
        outcome.recovery_enrolled,
    )
}

/// Log in to an existing account (a new device, or again): the escrowed
/// identity comes back, is checked against the registered key, and is kept
/// on this device sealed with `password`.
pub async fn login(
    home: &AgentHome,
    broker: &BrokerRef,
    email: &str,
    password: &str,
) -> Result<Enrolled, DeviceAccountError> {
    let client = client(home, broker)?;
    let outcome = client.login(email, &Password::new(password)).await?;
    let identity = Identity::from_secret_bytes(outcome.secret_identity.expose())?;
    if identity.recipient().to_string() != outcome.public_key.as_str() {
        return Err(DeviceAccountError::KeyMismatch);
    }
    remember(
        home,
        broker,
        email,
        &identity,
        password,
        outcome.recovery_enrolled,
    )
}

/// Keep an account on this device: the identity (see [`keep_identity`])
/// and `account.json`.
pub fn remember(
    home: &AgentHome,
    broker: &BrokerRef,
    email: &str,
    identity: &Identity,
    password: &str,
    recovery_enrolled: bool,
) -> Result<Enrolled, DeviceAccountError> {
    keep_identity(home, identity, password)?;
    save(
        home,
        &AccountFile {
            broker_url: broker.url.clone(),
            org_public_key: broker.org_public_key.clone(),
            email: email.to_owned(),
            recovery_enrolled: Some(recovery_enrolled),
        },
    )?;
    Ok(Enrolled {
        email: email.to_owned(),
        broker_url: broker.url.clone(),
        fingerprint: identity.recipient().fingerprint().to_string(),
        recovery_enrolled,
    })
}

/// Change the account password: the broker's record and escrow (and the
/// recovery copy when the policy requires one), then the identity file on
/// this device. Other devices' sessions end.
pub async fn change_password(
    home: &AgentHome,
    old: &str,
    new: &str,
) -> Result<PasswordChange, DeviceAccountError> {
    check_length(new)?;
    let (client, mut account) = device_client(home)?;
    let path = home.identity_file();
    let bytes = std::fs::read(&path).map_err(io("read", &path))?;
    let identity = open_identity(&bytes, old.as_bytes())
        .map_err(|_| DeviceAccountError::WrongPassword(path.clone()))?;
    let changed = client
        .change_password_enrolled(
            &Password::new(old),
            &Password::new(new),
            Some(&Sealer(&identity)),
        )
        .await?;
    keep_identity(home, &identity, new)?;
    let recovery_enrolled = client.whoami().await?.recovery_enrolled;
    account.recovery_enrolled = Some(recovery_enrolled);
    save(home, &account)?;
    Ok(PasswordChange {
        sessions_revoked: changed.sessions_revoked,
        recovery_enrolled,
    })
}

/// Undo the last password change (issue 18.3: a user can always return to
/// the password and escrow version before a change, e.g. when another
/// device cannot open the new one). The broker returns to them after a
/// fresh proof of the `current` password; then this device logs in with
/// `previous`, checks that the identity that comes back is the one it
/// holds, and keeps it sealed with `previous`. Other devices' sessions end.
pub async fn undo_password_change(
    home: &AgentHome,
    current: &str,
    previous: &str,
) -> Result<PasswordChange, DeviceAccountError> {
    let (client, mut account) = device_client(home)?;
    let path = home.identity_file();
    let bytes = std::fs::read(&path).map_err(io("read", &path))?;
    let identity = open_identity(&bytes, current.as_bytes())
        .map_err(|_| DeviceAccountError::WrongPassword(path.clone()))?;
    let undone = client.undo_password_change(&Password::new(current)).await?;
    let outcome = match client.login(&account.email, &Password::new(previous)).await {
        Err(AccountError::LoginFailed) => return Err(DeviceAccountError::PreviousPasswordRefused),
        other => other?,
    };
    let returned = Identity::from_secret_bytes(outcome.secret_identity.expose())?;
    if returned.recipient().to_string() != identity.recipient().to_string() {
        return Err(DeviceAccountError::KeyMismatch);
    }
    keep_identity(home, &identity, previous)?;
    account.recovery_enrolled = Some(outcome.recovery_enrolled);
    save(home, &account)?;
    Ok(PasswordChange {
        sessions_revoked: undone.sessions_revoked,
        recovery_enrolled: outcome.recovery_enrolled,
    })
}

/// A recovery of this key that IT completed: who approved it, who
/// re-sealed it, and when (from the broker's `GET /v1/session`).
pub use kluis_types::KeyRecovery;

/// `YYYY-MM-DD HH:MM:SS UTC` for Unix seconds (what people are shown).
pub fn utc_text(t: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(FORMAT).ok())
        .unwrap_or_else(|| format!("{t} (Unix time)"))
}

/// The most recoveries remembered on this device.
const MAX_REMEMBERED_RECOVERIES: usize = 50;

fn recoveries_file(home: &AgentHome) -> PathBuf {
    state_dir(home).join("key-recoveries.json")
}

/// The recoveries of this key already told on this device, newest first.
pub fn known_recoveries(home: &AgentHome) -> Result<Vec<KeyRecovery>, DeviceAccountError> {
    let path = recoveries_file(home);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|_| DeviceAccountError::Damaged(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io("read", &path)(e)),
    }
}

/// Ask the broker which recoveries of this key IT completed, and return
/// the ones this device has not told yet (remembering them, so each is
/// told once). A recovery the person did not ask for is how they learn of
/// it.
pub async fn new_recoveries(home: &AgentHome) -> Result<Vec<KeyRecovery>, DeviceAccountError> {
    let (client, _) = device_client(home)?;
    let me = client.whoami().await?;
    let mut known = known_recoveries(home)?;
    let fresh: Vec<KeyRecovery> = me
        .key_recoveries
        .into_iter()
        .filter(|r| !known.iter().any(|k| k.request_id == r.request_id))
        .collect();
    if !fresh.is_empty() {
        known.extend(fresh.iter().cloned());
        known.sort_by_key(|r| std::cmp::Reverse(r.completed_at));
        known.truncate(MAX_REMEMBERED_RECOVERIES);
        let path = recoveries_file(home);
        let text = serde_json::to_vec_pretty(&known)
            .map_err(|_| DeviceAccountError::Damaged(path.clone()))?;
        write_private(&path, &text)?;
    }
    Ok(fresh)
}

/// End this device's session on the broker and forget the unlocked
/// identity of this login session. The identity file and `account.json`
/// stay, so the next login needs only the password.
pub async fn logout(home: &AgentHome) -> Result<AccountFile, DeviceAccountError> {
    let (client, account) = device_client(home)?;
    client.logout().await?;
    KeyCache::for_home(home).forget();
    Ok(account)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    /// Issue 18.4d: the insecure KSF switch is compiled in only with debug
    /// assertions; a release build has neither the switch nor its name.
    #[test]
    fn the_insecure_ksf_switch_exists_only_in_debug_builds() {
        let asked = ksf_policy_from(Some("1".into()));
        if cfg!(debug_assertions) {
            assert_eq!(INSECURE_TEST_KSF_VAR, Some("KLUIS_INSECURE_TEST_KSF"));
            assert_eq!(asked, KsfPolicy::InsecureTestOnly);
        } else {
            assert_eq!(INSECURE_TEST_KSF_VAR, None);
            assert_eq!(asked, KsfPolicy::Standard);
        }
        assert_eq!(ksf_policy_from(None), KsfPolicy::Standard);
        assert_eq!(ksf_policy_from(Some("0".into())), KsfPolicy::Standard);
    }

    #[test]
    fn account_file_round_trips_and_a_damaged_one_is_named() {
        let d = tempfile::tempdir().unwrap();
        let home = AgentHome::in_dir(d.path());
        assert_eq!(load(&home).unwrap(), None);
        let account = AccountFile {
            broker_url: "https://kluis.example.org/".into(),
            org_public_key: "kluis-org-ed25519:x".into(),
            email: "an@example.org".into(),
            recovery_enrolled: Some(true),
        };
        save(&home, &account).unwrap();
        assert_eq!(load(&home).unwrap(), Some(account));
        // Files written before `recovery_enrolled` existed still load.
        std::fs::write(
            account_file(&home),
            br#"{"broker_url":"u","org_public_key":"k","email":"e"}"#,
        )
        .unwrap();
        assert_eq!(load(&home).unwrap().unwrap().recovery_enrolled, None);
        std::fs::write(account_file(&home), b"{not json").unwrap();
        let e = load(&home).unwrap_err();
        assert_eq!(e.code(), "damaged");
        assert!(e.to_string().contains("account.json"), "{e}");
        assert!(matches!(
            device_client(&AgentHome::in_dir(&d.path().join("none"))),
            Err(DeviceAccountError::NoAccount)
        ));
    }

    #[test]
    fn a_local_identity_is_private_opens_with_its_password_and_is_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let home = AgentHome::in_dir(d.path());
        assert_eq!(
            create_local_identity(&home, "short").unwrap_err().code(),
            "password_too_short"
        );
        assert!(!home.identity_file().exists());
        let fingerprint = create_local_identity(&home, "a long passphrase").unwrap();
        let bytes = std::fs::read(home.identity_file()).unwrap();
        let id = open_identity(&bytes, b"a long passphrase").unwrap();
        assert_eq!(id.recipient().fingerprint().to_string(), fingerprint);
        assert!(open_identity(&bytes, b"another passphrase").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(home.identity_file())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let e = create_local_identity(&home, "a long passphrase").unwrap_err();
        assert_eq!(e.code(), "identity_exists");
        assert_eq!(std::fs::read(home.identity_file()).unwrap(), bytes);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("identity.kluiskey")]);
    }

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_text(1_900_000_000), "2030-03-17 17:46:40 UTC");
        assert_eq!(utc_text(i64::MAX), format!("{} (Unix time)", i64::MAX));
    }

    #[test]
    fn bad_org_keys_and_invites_are_named() {
        let d = tempfile::tempdir().unwrap();
        let home = AgentHome::in_dir(d.path());
        let broker = BrokerRef {
            url: "https://kluis.example.org".into(),
            org_public_key: "not a key".into(),
        };
        assert_eq!(client(&home, &broker).err().unwrap().code(), "bad_org_key");
        assert_eq!(
            BrokerRef::from_invite("kluis-invite:garbage")
                .unwrap_err()
                .code(),
            "bad_invite"
        );
    }
}

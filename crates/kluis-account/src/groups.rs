//! Groups on the broker, client side (docs/SHARING.md). The group secret is
//! an opaque blob here: the caller (kluis-agent) encrypts it to the members
//! with the file format, which this crate does not link. Group keys are
//! verified like colleagues' keys: an org certificate over (group name,
//! key) with its own domain separation, then a trust-on-first-use pin in
//! `group-pins.json`. A rotation (member removed) needs a new certificate;
//! the pin then follows the new certified key version.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ed25519_dalek::{Signature, VerifyingKey};
use kluis_types::{
    AddGroupMemberRequest, CreateGroupRequest, Email, EncryptedGroupSecret, Fingerprint, GroupInfo,
    GroupListResponse, GroupName, GroupSecretResponse, GroupSecretVersionsResponse, OrgPublicKey,
    PublicKeyString, RemoveGroupMemberRequest, RotateGroupKeyRequest, SetGroupAdminRequest,
};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::session::write_private;
use crate::{AccountClient, AccountError, PinStatus};

/// A group whose current key is certified by the org and matches the pin.
#[derive(Debug, Clone)]
pub struct VerifiedGroup {
    /// Its name.
    pub name: GroupName,
    /// Current key.
    pub public_key: PublicKeyString,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// Key version (grows at each rotation).
    pub key_version: i64,
    /// Members.
    pub members: Vec<Email>,
    /// Pin state.
    pub pin: PinStatus,
}

/// Checks the org certificate of a group's current key.
pub fn verify_group(org: &OrgPublicKey, g: &GroupInfo) -> Result<(), AccountError> {
    let refuse = |reason: &str| AccountError::GroupRefused {
        group: g.name.to_string(),
        reason: reason.to_owned(),
    };
    let cert = g
        .certificate
        .as_ref()
        .ok_or_else(|| refuse("not certified by your organisation (ask an administrator to run `kluis-broker admin certify-group`)"))?;
    if cert.name != g.name || cert.public_key != g.public_key {
        return Err(refuse("its certificate covers a different name or key"));
    }
    let key =
        VerifyingKey::from_bytes(&org.to_bytes()).map_err(|_| refuse("bad organisation key"))?;
    let sig = Signature::from_slice(cert.signature.as_bytes())
        .map_err(|_| refuse("malformed certificate"))?;
    key.verify_strict(&cert.message(), &sig)
        .map_err(|_| refuse("its certificate does not verify under your organisation's key"))
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct GroupPinFile {
    version: u32,
    /// name -> (key version, key)
    pins: BTreeMap<String, (i64, PublicKeyString)>,
}

fn pin_path(client: &AccountClient) -> PathBuf {
    client.config.state_dir.join("group-pins.json")
}

fn check_pin(client: &AccountClient, g: &GroupInfo) -> Result<PinStatus, AccountError> {
    let path = pin_path(client);
    let mut file: GroupPinFile = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|_| AccountError::CorruptState { path: path.clone() })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => GroupPinFile {
            version: 1,
            ..Default::default()
        },
        Err(source) => return Err(AccountError::Io { path, source }),
    };
    let status = match file.pins.get(g.name.as_str()) {
        Some((_, k)) if *k == g.public_key => return Ok(PinStatus::Matches),
        // Same version, other key: substitution. A newer version is a
        // rotation, accepted because the org certified it (checked before).
        Some((v, k)) if *v >= g.key_version => {
            return Err(AccountError::GroupRefused {
                group: g.name.to_string(),
                reason: format!(
                    "its key CHANGED without a rotation (pinned fingerprint {}, now {})",
                    k.fingerprint(),
                    g.public_key.fingerprint()
                ),
            });
        }
        Some(_) => PinStatus::Matches,
        None => PinStatus::NewlyPinned,
    };
    file.version = 1;
    file.pins
        .insert(g.name.to_string(), (g.key_version, g.public_key.clone()));
    let json = serde_json::to_vec_pretty(&file)
        .map_err(|_| AccountError::CorruptState { path: path.clone() })?;
    write_private(&path, &json)?;
    Ok(status)
}

fn group_path(name: &GroupName, rest: &str) -> String {
    format!("v1/groups/{}{rest}", name.as_str())
}

fn parse_name(name: &str) -> Result<GroupName, AccountError> {
    GroupName::parse(name).map_err(|e| AccountError::InvalidInput {
        what: "group name",
        reason: e.to_string(),
    })
}

fn parse_key(key: &str) -> Result<PublicKeyString, AccountError> {
    PublicKeyString::parse(key).map_err(|e| AccountError::InvalidInput {
        what: "public key",
        reason: e.to_string(),
    })
}

impl AccountClient {
    /// GETs the group `name`'s resource `rest` with the session's token.
    async fn get_group<R: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        rest: &str,
    ) -> Result<R, AccountError> {
        let session = self.require_session()?;
        let path = group_path(&parse_name(name)?, rest);
        self.http
            .json::<(), _>(Method::GET, &path, Some(&session.token), None)
            .await
    }

    /// POSTs what `body` makes (if anything) to the group `name`'s endpoint
    /// `rest` with the session's token; the answer has no body. The session
    /// is checked first, then the name, then the body.
    async fn post_group<B: Serialize + Sync>(
        &self,
        name: &str,
        rest: &str,
        body: impl FnOnce() -> Result<Option<B>, AccountError>,
    ) -> Result<(), AccountError> {
        let session = self.require_session()?;
        let path = group_path(&parse_name(name)?, rest);
        let body = body()?;
        self.http
            .no_content(Method::POST, &path, Some(&session.token), body.as_ref())
            .await
    }

    /// Whether a colleague is current or has left (their account disabled,
    /// key revoked); `None` when the directory does not know the address.
    pub async fn colleague_status(
        &self,
        email: &str,
    ) -> Result<Option<kluis_types::UserStatus>, AccountError> {
        let email = Email::parse(email)?;
        Ok(self
            .directory(email.as_str())
            .await?
            .entries
            .into_iter()
            .find(|e| e.email == email)
            .map(|e| e.status))
    }

    /// Every group with its members (unverified; for listings and policy).
    pub async fn list_groups(&self) -> Result<Vec<GroupInfo>, AccountError> {
        let session = self.require_session()?;
        let r: GroupListResponse = self
            .http
            .json::<(), _>(Method::GET, "v1/groups", Some(&session.token), None)
            .await?;
        Ok(r.groups)
    }

    /// One group by name, unverified.
    pub async fn group(&self, name: &str) -> Result<GroupInfo, AccountError> {
        let name = parse_name(name)?;
        self.list_groups()
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .ok_or_else(|| AccountError::InvalidInput {
                what: "group",
                reason: format!("no group named {name}"),
            })
    }

    /// A group's key, certified by the org and matching its pin, or an
    /// error that says why not.
    pub async fn resolve_group(&self, name: &str) -> Result<VerifiedGroup, AccountError> {
        let g = self.group(name).await?;
        verify_group(&self.config.org_public_key, &g)?;
        let pin = check_pin(self, &g)?;
        Ok(VerifiedGroup {
            fingerprint: g.public_key.fingerprint(),
            name: g.name,
            public_key: g.public_key,
            key_version: g.key_version,
            members: g.members,
            pin,
        })
    }

    /// Create a group with a key generated by the caller; the caller is its
    /// first member and `secret` is encrypted to them.
    pub async fn create_group(
        &self,
        name: &str,
        public_key: &str,
        secret: Vec<u8>,
    ) -> Result<(), AccountError> {
        let session = self.require_session()?;
        let body = CreateGroupRequest {
            name: parse_name(name)?,
            public_key: parse_key(public_key)?,
            secret: EncryptedGroupSecret::new(secret),
        };
        self.http
            .no_content(Method::POST, "v1/groups", Some(&session.token), Some(&body))
            .await
    }

    /// The group's encrypted secret (members only).
    pub async fn group_secret(&self, name: &str) -> Result<GroupSecretResponse, AccountError> {
        self.get_group(name, "/secret").await
    }

    /// Every stored version of the group's secret, oldest first, without
    /// the secrets (members only).
    pub async fn group_secret_versions(
        &self,
        name: &str,
    ) -> Result<GroupSecretVersionsResponse, AccountError> {
        self.get_group(name, "/secrets").await
    }

    /// One stored version of the group's secret (members only).
    pub async fn group_secret_version(
        &self,
        name: &str,
        version: i64,
    ) -> Result<GroupSecretResponse, AccountError> {
        self.get_group(name, &format!("/secrets/{version}")).await
    }

    /// Add `email` (group administrators); `secret` is the group secret
    /// encrypted to every member including them, made from `key_version`.
    pub async fn add_group_member(
        &self,
        name: &str,
        email: &str,
        secret: Vec<u8>,
        key_version: i64,
    ) -> Result<(), AccountError> {
        self.add_group_member_at(name, email, secret, key_version, None)
            .await
    }

    /// [`Self::add_group_member`], refused (409) unless `secret_version`
    /// is still the latest version of the secret, so two concurrent
    /// additions cannot drop each other's member.
    pub async fn add_group_member_at(
        &self,
        name: &str,
        email: &str,
        secret: Vec<u8>,
        key_version: i64,
        secret_version: Option<i64>,
    ) -> Result<(), AccountError> {
        self.post_group(name, "/members", || {
            Ok(Some(AddGroupMemberRequest {
                email: Email::parse(email)?,
                secret: EncryptedGroupSecret::new(secret),
                key_version,
                secret_version,
            }))
        })
        .await
    }

    /// Remove another member `email` (group administrators), rotating to
    /// `new_public_key`; `secret` holds the new and the older group keys,
    /// encrypted to the remaining members.
    pub async fn remove_group_member(
        &self,
        name: &str,
        email: &str,
        new_public_key: &str,
        secret: Vec<u8>,
        key_version: i64,
    ) -> Result<(), AccountError> {
        self.post_group(name, "/remove", || {
            Ok(Some(RemoveGroupMemberRequest {
                email: Email::parse(email)?,
                public_key: parse_key(new_public_key)?,
                secret: EncryptedGroupSecret::new(secret),
                key_version,
            }))
        })
        .await
    }

    /// Rotate the group key without a membership change (group
    /// administrators): `secret` holds the new and the older keys,
    /// encrypted to the members.
    pub async fn rotate_group_key(
        &self,
        name: &str,
        new_public_key: &str,
        secret: Vec<u8>,
        key_version: i64,
    ) -> Result<(), AccountError> {
        self.post_group(name, "/rotate", || {
            Ok(Some(RotateGroupKeyRequest {
                public_key: parse_key(new_public_key)?,
                secret: EncryptedGroupSecret::new(secret),
                key_version,
            }))
        })
        .await
    }

    /// Leave a group. The key is not rotated by the leaver; the group is
    /// marked `rotation_due` for its administrators.
    pub async fn leave_group(&self, name: &str) -> Result<(), AccountError> {
        self.post_group(name, "/leave", || Ok(None::<()>)).await
    }

    /// Grant (`admin = true`) or revoke a member's administrator role
    /// (group administrators).
    pub async fn set_group_admin(
        &self,
        name: &str,
        email: &str,
        admin: bool,
    ) -> Result<(), AccountError> {
        self.post_group(name, "/admins", || {
            Ok(Some(SetGroupAdminRequest {
                email: Email::parse(email)?,
                admin,
            }))
        })
        .await
    }
}

//! Administrator operations, run by `kluis-broker admin …` directly against
//! the store (there is no admin HTTP API).

use kluis_approvals::AdminPublicKey;
use kluis_audit::{Action, Actor, AuditEntry, AuditError, DetailKey, Details, Report};
use kluis_types::{
    AdminToken, Email, InviteToken, OrgCertificate, OrgPolicy, OrgPublicKey, PublicKeyString,
    SignedPolicy,
};
use sha2::{Digest, Sha256};

use crate::org::OrgSigningKey;
use crate::store::{AdminRow, Store, StoreError, StoredPolicy};

/// Admin failures.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No account has that address.
    #[error("no user with e-mail {0}")]
    NoSuchUser(Email),
    /// The key the administrator expected is not the one on file.
    #[error("the key on file for {email} (fingerprint {actual}) is not the expected one")]
    KeyMismatch {
        /// The user.
        email: Email,
        /// Fingerprint of the key on file.
        actual: kluis_types::Fingerprint,
    },
    /// The key changed between reading and certifying.
    #[error("the key of {0} changed while certifying; retry")]
    Raced(Email),
    /// No recovery administrator has that name.
    #[error("no administrator named {0}")]
    NoSuchAdmin(String),
    /// No group has that name.
    #[error("no group named {0}")]
    NoSuchGroup(String),
    /// The group key on file is not the expected one.
    #[error("the key on file for group {name} (fingerprint {actual}) is not the expected one")]
    GroupKeyMismatch {
        /// The group.
        name: String,
        /// Fingerprint of the key on file.
        actual: kluis_types::Fingerprint,
    },
    /// The group key rotated while certifying.
    #[error("the key of group {0} changed while certifying; retry")]
    GroupRaced(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The policy document is not valid.
    #[error("invalid policy: {0}")]
    BadPolicy(String),
    /// An argument is not valid.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which argument.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The audit log failed verification or could not be written.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Creates a single-use invite valid for `ttl_secs`, optionally bound to
/// one address. Only its SHA-256 is stored.
pub async fn create_invite(
    store: &dyn Store,
    now: i64,
    ttl_secs: i64,
    email: Option<&Email>,
) -> Result<InviteToken, StoreError> {
    let actor = Actor::Admin(HOST_ACTOR.to_owned());
    create_invite_as(store, now, ttl_secs, email, &actor).await
}

/// [`create_invite`], recording `actor` in the audit log
/// (`invite.created`: the address it is bound to, if any, and its
/// lifetime; never the token). The row is appended after the invite is
/// stored and before the token is returned: an invite whose row could not
/// be written is never handed out, and nobody can use an invite whose
/// token was never shown (only its hash is stored).
pub async fn create_invite_as(
    store: &dyn Store,
    now: i64,
    ttl_secs: i64,
    email: Option<&Email>,
    actor: &Actor,
) -> Result<InviteToken, StoreError> {
    let token = InviteToken::from_random_bytes(&crate::api::random_32());
    let hash: [u8; 32] = Sha256::digest(token.expose().as_bytes()).into();
    store
        .create_invite(&hash, email, now, now + ttl_secs)
        .await?;
    let mut entry = AuditEntry::new(now, actor.clone(), Action::InviteCreated)
        .details(Details::new().int(DetailKey::ValidSecs, ttl_secs)?);
    if let Some(email) = email {
        entry = entry.target(email.as_str());
    }
    crate::store::append_audit(store, entry).await?;
    Ok(token)
}

/// Signs the (e-mail, key) binding on file and stores the certificate.
/// With `expected`, refuses unless that exact key is on file — the
/// administrator should compare the fingerprint with the user out of band.
pub async fn certify(
    store: &dyn Store,
    key: &OrgSigningKey,
    email: &Email,
    expected: Option<&PublicKeyString>,
    now: i64,
) -> Result<OrgCertificate, AdminError> {
    let actor = Actor::Admin(HOST_ACTOR.to_owned());
    certify_as(store, key, email, expected, &actor, now).await
}

/// The audit actor of host commands run without `--as`.
pub const HOST_ACTOR: &str = "broker-host";

/// [`certify`], recording `actor` in the audit log.
pub async fn certify_as(
    store: &dyn Store,
    key: &OrgSigningKey,
    email: &Email,
    expected: Option<&PublicKeyString>,
    actor: &Actor,
    now: i64,
) -> Result<OrgCertificate, AdminError> {
    let user = store
        .user_by_email(email)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser(email.clone()))?;
    if let Some(expected) = expected
        && expected != &user.public_key
    {
        return Err(AdminError::KeyMismatch {
            email: email.clone(),
            actual: user.public_key.fingerprint(),
        });
    }
    let cert = key.certify(&user.email, &user.public_key, now);
    let entry = AuditEntry::new(now, actor.clone(), Action::KeyCertified)
        .target(email.as_str())
        .details(Details::new().text(
            DetailKey::Fingerprint,
            user.public_key.fingerprint().as_str(),
        )?);
    let audit = |stored: &bool| Ok(if *stored { vec![entry.clone()] } else { vec![] });
    if !store.set_certificate(&cert, &audit).await? {
        return Err(AdminError::Raced(email.clone()));
    }
    Ok(cert)
}

/// The policy in force (the unsigned default, version 0, until one is set).
pub async fn current_policy(store: &dyn Store) -> Result<SignedPolicy, AdminError> {
    Ok(match store.policy_latest().await? {
        Some(p) => SignedPolicy {
            version: p.version,
            issued_at: p.issued_at,
            policy_json: p.policy_json,
            signature: Some(kluis_types::SignatureBytes::new(p.signature)),
        },
        None => SignedPolicy::default_unsigned(),
    })
}

/// Parses a policy document: TOML when `toml` is set, JSON otherwise.
/// Unknown fields are refused, and the policy must validate.
pub fn parse_policy_document(text: &str, toml: bool) -> Result<OrgPolicy, AdminError> {
    let policy: OrgPolicy = if toml {
        ::toml::from_str(text).map_err(|e| AdminError::BadPolicy(e.to_string()))?
    } else {
        serde_json::from_str(text).map_err(|e| AdminError::BadPolicy(e.to_string()))?
    };
    policy
        .validate()
        .map_err(|e| AdminError::BadPolicy(e.to_string()))?;
    Ok(policy)
}

/// Signs `policy` with the org key as the next version, stores it and
/// records `policy.changed`. Returns the new version.
pub async fn set_policy(
    store: &dyn Store,
    key: &OrgSigningKey,
    policy: &OrgPolicy,
    actor: &Actor,
    now: i64,
) -> Result<SignedPolicy, AdminError> {
    policy
        .validate()
        .map_err(|e| AdminError::BadPolicy(e.to_string()))?;
    let old = store.policy_latest().await?.map_or(0, |p| p.version);
    let policy_json =
        serde_json::to_string(policy).map_err(|e| AdminError::BadPolicy(e.to_string()))?;
    let mut signed = SignedPolicy {
        version: old + 1,
        issued_at: now,
        policy_json,
        signature: None,
    };
    let signature = key.sign(&signed.message());
    let details = Details::new()
        .text(DetailKey::Old, &old.to_string())?
        .text(DetailKey::New, &signed.version.to_string())?
        .flag(DetailKey::Flag, policy.recovery_mandatory)?;
    let entry = AuditEntry::new(now, actor.clone(), Action::PolicyChanged)
        .target("policy")
        .details(details);
    store
        .insert_policy(
            &StoredPolicy {
                version: signed.version,
                policy_json: signed.policy_json.clone(),
                issued_at: now,
                signature: signature.to_vec(),
            },
            now,
            &|_| Ok(vec![entry.clone()]),
        )
        .await?;
    signed.signature = Some(kluis_types::SignatureBytes::new(signature.to_vec()));
    Ok(signed)
}

/// Disables a user: every session is deleted at once (in the same
/// transaction), login is refused, and the directory marks the key revoked.
/// Returns the number of sessions ended.
pub async fn disable_user(
    store: &dyn Store,
    email: &Email,
    actor: &Actor,
    now: i64,
) -> Result<u64, AdminError> {
    let user = store
        .user_by_email(email)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser(email.clone()))?;
    let key_revoked = Details::new().text(
        DetailKey::Fingerprint,
        user.public_key.fingerprint().as_str(),
    )?;
    let audit = |ended: &u64| -> Result<Vec<AuditEntry>, kluis_audit::AuditError> {
        let sessions = Details::new().int(
            DetailKey::Sessions,
            i64::try_from(*ended).unwrap_or(i64::MAX),
        )?;
        Ok([
            (Action::UserDisabled, Details::new()),
            (Action::SessionsRevoked, sessions),
            (Action::KeyRevoked, key_revoked.clone()),
        ]
        .into_iter()
        .map(|(action, details)| {
            AuditEntry::new(now, actor.clone(), action)
                .target(email.as_str())
                .details(details)
        })
        .collect())
    };
    let ended = store.set_disabled(&user.user_id, Some(now), &audit).await?;
    Ok(ended)
}

/// Enables a disabled user again. Old sessions stay dead (they were
/// deleted); the user logs in afresh.
pub async fn enable_user(
    store: &dyn Store,
    email: &Email,
    actor: &Actor,
    now: i64,
) -> Result<(), AdminError> {
    let user = store
        .user_by_email(email)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser(email.clone()))?;
    let entry = AuditEntry::new(now, actor.clone(), Action::UserEnabled).target(email.as_str());
    store
        .set_disabled(&user.user_id, None, &|_| Ok(vec![entry.clone()]))
        .await?;
    Ok(())
}

/// Adds a recovery administrator with their Ed25519 approval key and
/// returns their API token (shown once; only its SHA-256 is stored), valid
/// for `ttl_secs`.
pub async fn add_admin(
    store: &dyn Store,
    name: &str,
    admin_key: &str,
    ttl_secs: i64,
    actor: &Actor,
    now: i64,
) -> Result<AdminToken, AdminError> {
    if name.is_empty() || name.len() > 64 {
        return Err(AdminError::Invalid {
            what: "name",
            reason: "1 to 64 characters".into(),
        });
    }
    // "ann " or "ann\u{202E}" would pass for a second "ann" (issue 18.4e).
    if let Some(reason) = kluis_types::display_text_problem(name) {
        return Err(AdminError::Invalid {
            what: "name",
            reason: reason.into(),
        });
    }
    let key = AdminPublicKey::parse(admin_key).map_err(|e| AdminError::Invalid {
        what: "admin key",
        reason: e.to_string(),
    })?;
    let token = AdminToken::from_random_bytes(&crate::api::random_32());
    let hash: [u8; 32] = Sha256::digest(token.expose().as_bytes()).into();
    store
        .add_admin(
            &AdminRow {
                name: name.to_owned(),
                admin_key: key.to_string(),
                created_at: now,
                token_expires_at: now.saturating_add(ttl_secs),
            },
            &hash,
            &|_| {
                Ok(vec![
                    AuditEntry::new(now, actor.clone(), Action::AdminAdded)
                        .target(name)
                        .details(expiry(now.saturating_add(ttl_secs))?),
                ])
            },
        )
        .await?;
    Ok(token)
}

/// Signs the current head of the audit log with the org key and appends the
/// checkpoint row.
pub async fn audit_checkpoint(
    store: &dyn Store,
    key: &OrgSigningKey,
    actor: &Actor,
    now: i64,
) -> Result<kluis_audit::AuditRow, AdminError> {
    let row = store
        .append_audit_with(&|head: &kluis_audit::Head| {
            let signed = kluis_audit::SignedCheckpoint::sign(head, now.max(head.time), key)?;
            kluis_audit::checkpoint_row(head, now, actor.clone(), &signed)
        })
        .await?;
    Ok(row)
}

/// Reads the audit log from the database in stored order and verifies it:
/// chain, sequence, time order and every checkpoint signature.
pub async fn verify_audit(store: &dyn Store, org: &OrgPublicKey) -> Result<Report, AdminError> {
    let rows = store.audit_rows().await?;
    Ok(kluis_audit::verify(&rows, &org.to_bytes())?)
}

/// Signs the (group name, key) binding on file and stores the certificate.
/// With `expected`, refuses unless that exact key is on file (compare the
/// fingerprint with a group member out of band).
pub async fn certify_group(
    store: &dyn Store,
    key: &OrgSigningKey,
    name: &kluis_types::GroupName,
    expected: Option<&PublicKeyString>,
    now: i64,
) -> Result<kluis_types::GroupCertificate, AdminError> {
    let actor = Actor::Admin(HOST_ACTOR.to_owned());
    certify_group_as(store, key, name, expected, &actor, now).await
}

/// [`certify_group`], recording `actor` in the audit log
/// (`group.certified`, in the certificate's own transaction).
pub async fn certify_group_as(
    store: &dyn Store,
    key: &OrgSigningKey,
    name: &kluis_types::GroupName,
    expected: Option<&PublicKeyString>,
    actor: &Actor,
    now: i64,
) -> Result<kluis_types::GroupCertificate, AdminError> {
    let group = store
        .list_groups()
        .await?
        .into_iter()
        .find(|g| &g.name == name)
        .ok_or_else(|| AdminError::NoSuchGroup(name.to_string()))?;
    if let Some(expected) = expected
        && expected != &group.public_key
    {
        return Err(AdminError::GroupKeyMismatch {
            name: name.to_string(),
            actual: group.public_key.fingerprint(),
        });
    }
    let cert = key.certify_group(&group.name, &group.public_key, now);
    let entry = AuditEntry::new(now, actor.clone(), Action::GroupCertified)
        .target(name.as_str())
        .details(
            Details::new()
                .text(
                    DetailKey::Fingerprint,
                    group.public_key.fingerprint().as_str(),
                )?
                .int(DetailKey::KeyVersion, group.key_version)?,
        );
    let audit = |stored: &bool| Ok(if *stored { vec![entry.clone()] } else { vec![] });
    if !store.set_group_certificate(&cert, &audit).await? {
        return Err(AdminError::GroupRaced(name.to_string()));
    }
    Ok(cert)
}

/// The audit details of a token's expiry.
fn expiry(expires_at: i64) -> Result<Details, AuditError> {
    Details::new().int(DetailKey::ExpiresAt, expires_at)
}

/// Removes a recovery administrator: their API token stops working at once
/// and their approvals no longer count towards a recovery. Audited as
/// `admin.removed`.
pub async fn remove_admin(
    store: &dyn Store,
    name: &str,
    actor: &Actor,
    now: i64,
) -> Result<(), AdminError> {
    let entry = AuditEntry::new(now, actor.clone(), Action::AdminRemoved).target(name);
    if store
        .remove_admin(name, &|_| Ok(vec![entry.clone()]))
        .await?
    {
        Ok(())
    } else {
        Err(AdminError::NoSuchAdmin(name.to_owned()))
    }
}

/// Gives a recovery administrator a new API token valid for `ttl_secs` and
/// returns it (shown once); the old token stops working in the same
/// transaction. Audited as `admin.token_rotated`.
pub async fn rotate_admin_token(
    store: &dyn Store,
    name: &str,
    ttl_secs: i64,
    actor: &Actor,
    now: i64,
) -> Result<AdminToken, AdminError> {
    let token = AdminToken::from_random_bytes(&crate::api::random_32());
    let hash: [u8; 32] = Sha256::digest(token.expose().as_bytes()).into();
    let expires_at = now.saturating_add(ttl_secs);
    let entry = AuditEntry::new(now, actor.clone(), Action::AdminTokenRotated)
        .target(name)
        .details(expiry(expires_at)?);
    if store
        .rotate_admin_token(name, &hash, expires_at, &|_| Ok(vec![entry.clone()]))
        .await?
    {
        Ok(token)
    } else {
        Err(AdminError::NoSuchAdmin(name.to_owned()))
    }
}

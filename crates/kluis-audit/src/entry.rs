//! Audit entries, their typed fields, and the canonical encoding that is
//! hashed. RECOVERY.md §6.

use std::fmt;

use crate::error::AuditError;

/// Longest actor id, target or text detail (bytes).
pub const MAX_TEXT_LEN: usize = 256;
/// Most details one entry may carry.
pub const MAX_DETAILS: usize = 16;

fn invalid(field: &'static str, reason: &'static str) -> AuditError {
    AuditError::Invalid { field, reason }
}

fn check_text(field: &'static str, text: &str, allow_empty: bool) -> Result<(), AuditError> {
    if text.len() > MAX_TEXT_LEN {
        return Err(invalid(field, "longer than 256 bytes"));
    }
    if !allow_empty && text.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    // Control and bidi characters, leading or trailing whitespace: audit
    // text must read as what it is (issue 18.4e).
    match kluis_types::display_text_problem(text) {
        Some(reason) => Err(invalid(field, reason)),
        None => Ok(()),
    }
}

/// Text that must never appear in the log: markers of secret-key encodings
/// used by Kluis and neighbouring tools.
const SECRET_MARKERS: [&str; 5] = [
    "kluis-org-secret",
    "KLUISKEY",
    "KLUISSHR",
    "AGE-SECRET-KEY",
    "-----BEGIN",
];

/// Refuses text that looks like key material: a known secret marker, or a
/// run of more than 64 base64/hex characters (a key, token or ciphertext;
/// fingerprints are written in groups of four and pass).
fn check_not_secret(key: DetailKey, text: &str) -> Result<(), AuditError> {
    let upper = text.to_ascii_uppercase();
    if SECRET_MARKERS
        .iter()
        .any(|m| upper.contains(&m.to_ascii_uppercase()))
    {
        return Err(AuditError::SecretLike { key: key.code() });
    }
    let mut run = 0usize;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_') {
            run += 1;
            if run > 64 {
                return Err(AuditError::SecretLike { key: key.code() });
            }
        } else {
            run = 0;
        }
    }
    Ok(())
}

/// A 32-byte chain hash. Text form: 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The `prev_hash` of the first row.
    pub const GENESIS: ChainHash = ChainHash([0u8; 32]);

    /// The hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the hex form.
    pub fn from_hex(text: &str) -> Result<Self, AuditError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out)
            .map_err(|_| invalid("hash", "expected 64 hex digits"))?;
        Ok(Self(out))
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", &self.to_hex()[..16])
    }
}

/// Who did it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Actor {
    /// A user, by e-mail address.
    User(String),
    /// An administrator, by e-mail address or admin name.
    Admin(String),
    /// The broker itself (timers, thresholds, checkpoints).
    System,
}

impl Actor {
    /// A user actor (validated).
    pub fn user(id: &str) -> Result<Self, AuditError> {
        check_text("actor", id, false)?;
        Ok(Actor::User(id.to_owned()))
    }

    /// An administrator actor (validated).
    pub fn admin(id: &str) -> Result<Self, AuditError> {
        check_text("actor", id, false)?;
        Ok(Actor::Admin(id.to_owned()))
    }

    fn kind_byte(&self) -> u8 {
        match self {
            Actor::User(_) => 1,
            Actor::Admin(_) => 2,
            Actor::System => 3,
        }
    }

    fn id(&self) -> &str {
        match self {
            Actor::User(id) | Actor::Admin(id) => id,
            Actor::System => "",
        }
    }

    /// Parses the text form (`user:…`, `admin:…`, `system`).
    pub fn parse(text: &str) -> Result<Self, AuditError> {
        if text == "system" {
            Ok(Actor::System)
        } else if let Some(id) = text.strip_prefix("user:") {
            Actor::user(id)
        } else if let Some(id) = text.strip_prefix("admin:") {
            Actor::admin(id)
        } else {
            Err(invalid("actor", "expected user:…, admin:… or system"))
        }
    }

    fn validate(&self) -> Result<(), AuditError> {
        match self {
            Actor::User(id) | Actor::Admin(id) => check_text("actor", id, false),
            Actor::System => Ok(()),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(id) => write!(f, "user:{id}"),
            Actor::Admin(id) => write!(f, "admin:{id}"),
            Actor::System => f.write_str("system"),
        }
    }
}

macro_rules! coded_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $code:literal $(: $kind:ident)?,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stable code written to the log and exports.
            pub fn code(self) -> &'static str {
                match self {
                    $($name::$variant => $code,)*
                }
            }

            /// Parses a code.
            pub fn from_code(code: &str) -> Result<Self, AuditError> {
                match code {
                    $($code => Ok($name::$variant),)*
                    _ => Err(AuditError::Invalid { field: $what, reason: "unknown code" }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

coded_enum! {
    /// What happened. Codes are stable: new actions get new codes, old codes
    /// are never reused.
    Action, "action" {
        /// A user registered (enrolled) with the broker.
        UserRegistered = "user.registered",
        /// Failed logins for an account passed the alerting threshold.
        LoginFailuresExceeded = "login.failures_exceeded",
        /// A user's password-sealed escrow copy was read.
        EscrowRead = "escrow.read",
        /// A user's recovery escrow copy was stored or replaced.
        RecoveryEscrowStored = "escrow.recovery_stored",
        /// A user's recovery escrow copy was read (for a recovery).
        RecoveryEscrowRead = "escrow.recovery_read",
        /// The organisation key certified a user's key.
        KeyCertified = "key.certified",
        /// A user's key was marked revoked.
        KeyRevoked = "key.revoked",
        /// A folder or file was shared with someone.
        ShareGranted = "share.granted",
        /// A share was withdrawn.
        ShareRevoked = "share.revoked",
        /// A group was created; its creator is its first administrator.
        GroupCreated = "group.created",
        /// A group administrator added a member.
        GroupMemberAdded = "group.member_added",
        /// A group administrator removed a member (the key rotates).
        GroupMemberRemoved = "group.member_removed",
        /// A member left a group (the key is due for rotation).
        GroupMemberLeft = "group.member_left",
        /// A member was made a group administrator.
        GroupAdminGranted = "group.admin_granted",
        /// A group administrator lost the role.
        GroupAdminRevoked = "group.admin_revoked",
        /// A group administrator rotated the group key.
        GroupKeyRotated = "group.key_rotated",
        /// The organisation key certified a group's key.
        GroupCertified = "group.certified",
        /// An administrator created an invite.
        InviteCreated = "invite.created",
        /// The organisation recovery key was set up (K of N shares made).
        RecoveryInitialised = "recovery.initialised",
        /// A user asked for recovery.
        RecoveryRequested = "recovery.requested",
        /// An administrator approved a recovery request.
        RecoveryApproved = "recovery.approved",
        /// The re-sealed identity was delivered to the user.
        RecoveryCompleted = "recovery.completed",
        /// A recovery request was cancelled or expired.
        RecoveryCancelled = "recovery.cancelled",
        /// A user was disabled.
        UserDisabled = "user.disabled",
        /// A user was enabled again.
        UserEnabled = "user.enabled",
        /// All of a user's sessions were ended.
        SessionsRevoked = "sessions.revoked",
        /// A policy setting changed.
        PolicyChanged = "policy.changed",
        /// An administrator was added.
        AdminAdded = "admin.added",
        /// An administrator was removed.
        AdminRemoved = "admin.removed",
        /// An administrator's API token was replaced by a new one.
        AdminTokenRotated = "admin.token_rotated",
        /// A checkpoint signed by the organisation key.
        Checkpoint = "audit.checkpoint",
        /// A user changed their password (new OPAQUE record and a new
        /// escrow version), proven with a fresh login.
        PasswordChanged = "password.changed",
        /// A user returned to the password and escrow version in effect
        /// before a password change, proven with a fresh login.
        EscrowRolledBack = "escrow.rolled_back",
    }
}

/// The type of value a detail key holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ValueKind {
    /// Short text (≤ 256 bytes, screened for key material).
    Text,
    /// A signed 64-bit integer.
    Int,
    /// A boolean.
    Bool,
    /// A 32-byte hash.
    Hash,
    /// A 64-byte signature.
    Signature,
}

coded_enum! {
    /// The closed set of detail names. Each has one value type; there is no
    /// free-form key, so nothing like `password` can be logged by mistake.
    DetailKey, "detail key" {
        /// Why (free text, short).
        Reason = "reason": Text,
        /// A count (failed logins, approvals so far …).
        Count = "count": Int,
        /// A threshold (K).
        Threshold = "threshold": Int,
        /// A number of shares (N).
        Shares = "shares": Int,
        /// A Shamir share index.
        ShareIndex = "share_index": Int,
        /// A key fingerprint in its display form.
        Fingerprint = "fingerprint": Text,
        /// A recovery request id.
        RequestId = "request_id": Text,
        /// A device id or name.
        Device = "device": Text,
        /// A folder id.
        Folder = "folder": Text,
        /// Another user involved (e.g. the share recipient).
        Recipient = "recipient": Text,
        /// A group's key version.
        KeyVersion = "key_version": Int,
        /// A version of a group's encrypted secret.
        SecretVersion = "secret_version": Int,
        /// How long something stays valid (seconds), e.g. an invite.
        ValidSecs = "valid_secs": Int,
        /// A classification label.
        Label = "label": Text,
        /// A policy setting name.
        Policy = "policy": Text,
        /// The previous value of a setting.
        Old = "old": Text,
        /// The new value of a setting.
        New = "new": Text,
        /// A client network address.
        Ip = "ip": Text,
        /// Sessions ended.
        Sessions = "sessions": Int,
        /// When a token stops working (Unix seconds).
        ExpiresAt = "expires_at": Int,
        /// A flag.
        Flag = "flag": Bool,
        /// Checkpoint: the sequence number covered.
        CoversSeq = "covers_seq": Int,
        /// Checkpoint: the hash of the covered row.
        CoversHash = "covers_hash": Hash,
        /// Checkpoint: when it was signed.
        SignedAt = "signed_at": Int,
        /// Checkpoint: Ed25519 signature by the organisation key.
        Signature = "signature": Signature,
    }
}

impl DetailKey {
    /// The value type this key holds.
    pub fn kind(self) -> ValueKind {
        match self {
            DetailKey::Count
            | DetailKey::Threshold
            | DetailKey::Shares
            | DetailKey::ShareIndex
            | DetailKey::Sessions
            | DetailKey::ExpiresAt
            | DetailKey::KeyVersion
            | DetailKey::SecretVersion
            | DetailKey::ValidSecs
            | DetailKey::CoversSeq
            | DetailKey::SignedAt => ValueKind::Int,
            DetailKey::Flag => ValueKind::Bool,
            DetailKey::CoversHash => ValueKind::Hash,
            DetailKey::Signature => ValueKind::Signature,
            _ => ValueKind::Text,
        }
    }

    fn checkpoint_only(self) -> bool {
        matches!(
            self,
            DetailKey::CoversSeq
                | DetailKey::CoversHash
                | DetailKey::SignedAt
                | DetailKey::Signature
        )
    }
}

/// A detail value.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Value {
    /// Short text.
    Text(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A 32-byte hash.
    Hash([u8; 32]),
    /// A 64-byte signature.
    Signature([u8; 64]),
}

impl Value {
    fn kind(&self) -> ValueKind {
        match self {
            Value::Text(_) => ValueKind::Text,
            Value::Int(_) => ValueKind::Int,
            Value::Bool(_) => ValueKind::Bool,
            Value::Hash(_) => ValueKind::Hash,
            Value::Signature(_) => ValueKind::Signature,
        }
    }
}

/// A small typed map of details, kept sorted by key code. At most
/// [`MAX_DETAILS`] entries; text values are screened for key material.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Details(Vec<(DetailKey, Value)>);

impl Details {
    /// No details.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces one detail, checking its type and content.
    pub fn insert(&mut self, key: DetailKey, value: Value) -> Result<(), AuditError> {
        if value.kind() != key.kind() {
            return Err(AuditError::WrongValueType { key: key.code() });
        }
        if let Value::Text(text) = &value {
            check_text("detail", text, true)?;
            check_not_secret(key, text)?;
        }
        match self.0.binary_search_by(|(k, _)| k.code().cmp(key.code())) {
            Ok(at) => self.0[at].1 = value,
            Err(at) => {
                if self.0.len() >= MAX_DETAILS {
                    return Err(invalid("details", "more than 16 entries"));
                }
                self.0.insert(at, (key, value));
            }
        }
        Ok(())
    }

    /// Builder form of [`Details::insert`] for text.
    pub fn text(mut self, key: DetailKey, value: &str) -> Result<Self, AuditError> {
        self.insert(key, Value::Text(value.to_owned()))?;
        Ok(self)
    }

    /// Builder form of [`Details::insert`] for integers.
    pub fn int(mut self, key: DetailKey, value: i64) -> Result<Self, AuditError> {
        self.insert(key, Value::Int(value))?;
        Ok(self)
    }

    /// Builder form of [`Details::insert`] for booleans.
    pub fn flag(mut self, key: DetailKey, value: bool) -> Result<Self, AuditError> {
        self.insert(key, Value::Bool(value))?;
        Ok(self)
    }

    /// Looks a detail up.
    pub fn get(&self, key: DetailKey) -> Option<&Value> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The details in canonical (code) order.
    pub fn iter(&self) -> impl Iterator<Item = (DetailKey, &Value)> {
        self.0.iter().map(|(k, v)| (*k, v))
    }

    /// Number of details.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn has_checkpoint_keys(&self) -> bool {
        self.0.iter().any(|(k, _)| k.checkpoint_only())
    }
}

/// What the broker records: everything of a row except its place in the
/// chain.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AuditEntry {
    /// When (Unix seconds). Clamped to be no earlier than the previous row.
    pub time: i64,
    /// Who.
    pub actor: Actor,
    /// What.
    pub action: Action,
    /// To whom or what (user address, request id, policy name; may be empty).
    pub target: String,
    /// Small typed details; never secrets.
    pub details: Details,
}

impl AuditEntry {
    /// An entry with no target or details.
    pub fn new(time: i64, actor: Actor, action: Action) -> Self {
        Self {
            time,
            actor,
            action,
            target: String::new(),
            details: Details::new(),
        }
    }

    /// Sets the target.
    pub fn target(mut self, target: &str) -> Self {
        target.clone_into(&mut self.target);
        self
    }

    /// Sets the details.
    pub fn details(mut self, details: Details) -> Self {
        self.details = details;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), AuditError> {
        self.actor.validate()?;
        check_text("target", &self.target, true)?;
        if self.details.len() > MAX_DETAILS {
            return Err(invalid("details", "more than 16 entries"));
        }
        for (key, value) in self.details.iter() {
            if value.kind() != key.kind() {
                return Err(AuditError::WrongValueType { key: key.code() });
            }
            if let Value::Text(text) = value {
                check_text("detail", text, true)?;
                check_not_secret(key, text)?;
            }
        }
        if (self.action == Action::Checkpoint) != self.details.has_checkpoint_keys() {
            return Err(invalid(
                "details",
                "checkpoint fields belong to checkpoint rows only",
            ));
        }
        Ok(())
    }
}

/// One stored row: an entry, its sequence number, and its place in the chain.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AuditRow {
    /// 1, 2, 3, … without gaps.
    pub seq: u64,
    /// The entry.
    pub entry: AuditEntry,
    /// The previous row's hash ([`ChainHash::GENESIS`] for row 1).
    pub prev_hash: ChainHash,
    /// `SHA-256(prev_hash || canonical(seq, entry))`.
    pub hash: ChainHash,
}

const ENTRY_DOMAIN: &[u8] = b"kluis audit entry v1\n";

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Every string is validated to at most 256 bytes before it is encoded;
    // a longer one saturates and then fails to verify.
    out.extend_from_slice(&u16::try_from(s.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The canonical encoding of a row's content (RECOVERY.md §6):
///
/// ```text
/// "kluis audit entry v1\n"
/// u64 BE seq || i64 BE time
/// u8 actor kind (1 user, 2 admin, 3 system) || str actor id ("" for system)
/// str action code || str target
/// u8 detail count, then per detail in code order:
///     str key code || u8 tag || value
///     tag 1 text: str | 2 int: i64 BE | 3 bool: u8 0/1 | 4 hash: 32 bytes | 5 signature: 64 bytes
/// str = u16 BE byte length || UTF-8 bytes
/// ```
pub fn canonical_encoding(seq: u64, entry: &AuditEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(ENTRY_DOMAIN);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&entry.time.to_be_bytes());
    out.push(entry.actor.kind_byte());
    put_str(&mut out, entry.actor.id());
    put_str(&mut out, entry.action.code());
    put_str(&mut out, &entry.target);
    out.push(u8::try_from(entry.details.len()).unwrap_or(u8::MAX));
    for (key, value) in entry.details.iter() {
        put_str(&mut out, key.code());
        match value {
            Value::Text(t) => {
                out.push(1);
                put_str(&mut out, t);
            }
            Value::Int(i) => {
                out.push(2);
                out.extend_from_slice(&i.to_be_bytes());
            }
            Value::Bool(b) => {
                out.push(3);
                out.push(u8::from(*b));
            }
            Value::Hash(h) => {
                out.push(4);
                out.extend_from_slice(h);
            }
            Value::Signature(s) => {
                out.push(5);
                out.extend_from_slice(s);
            }
        }
    }
    out
}

/// The chain rule: `SHA-256(prev_hash || canonical_encoding(seq, entry))`.
pub fn chain_hash(prev: &ChainHash, seq: u64, entry: &AuditEntry) -> ChainHash {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update(prev.0);
    h.update(canonical_encoding(seq, entry));
    ChainHash(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for a in Action::ALL {
            assert_eq!(Action::from_code(a.code()).ok(), Some(*a));
            assert!(seen.insert(a.code()));
        }
        for k in DetailKey::ALL {
            assert_eq!(DetailKey::from_code(k.code()).ok(), Some(*k));
            assert!(seen.insert(k.code()));
        }
    }

    /// Issue 18.4e: audit text that would display as something else.
    #[test]
    fn audit_text_with_bidi_or_outer_whitespace_is_refused() {
        for bad in [
            "ann ",
            " ann",
            "ann\u{202E}nimda",
            "a\u{2066}b",
            "a\u{200F}b",
        ] {
            assert!(
                matches!(
                    Details::new().text(DetailKey::Reason, bad),
                    Err(AuditError::Invalid {
                        field: "detail",
                        ..
                    })
                ),
                "{bad:?}"
            );
            assert!(Actor::admin(bad).is_err(), "{bad:?}");
            let entry = AuditEntry::new(1, Actor::System, Action::AdminAdded).target(bad);
            assert!(entry.validate().is_err(), "{bad:?}");
        }
        assert!(Details::new().text(DetailKey::Reason, "lost it").is_ok());
    }

    #[test]
    fn details_are_typed_sorted_and_screened() {
        let d = Details::new()
            .text(DetailKey::Reason, "lost password")
            .and_then(|d| d.int(DetailKey::Count, 3))
            .expect("valid");
        let codes: Vec<_> = d.iter().map(|(k, _)| k.code()).collect();
        assert_eq!(codes, ["count", "reason"]);
        assert!(matches!(
            Details::new().text(DetailKey::Count, "3"),
            Err(AuditError::WrongValueType { key: "count" })
        ));
        assert!(matches!(
            Details::new().text(DetailKey::Reason, "kluis-org-secret-ed25519:abc"),
            Err(AuditError::SecretLike { key: "reason" })
        ));
        let blob = "A".repeat(65);
        assert!(matches!(
            Details::new().text(DetailKey::Reason, &blob),
            Err(AuditError::SecretLike { .. })
        ));
        // A fingerprint in display groups passes.
        assert!(
            Details::new()
                .text(
                    DetailKey::Fingerprint,
                    "4F2A 9C1B 0000 1111 2222 3333 4444 5555"
                )
                .is_ok()
        );
    }

    #[test]
    fn encoding_is_injective_across_field_boundaries() {
        let a = AuditEntry::new(1, Actor::User("ab".into()), Action::UserRegistered).target("c");
        let b = AuditEntry::new(1, Actor::User("a".into()), Action::UserRegistered).target("bc");
        assert_ne!(canonical_encoding(1, &a), canonical_encoding(1, &b));
        let c = AuditEntry::new(1, Actor::Admin("ab".into()), Action::UserRegistered).target("c");
        assert_ne!(canonical_encoding(1, &a), canonical_encoding(1, &c));
        assert_ne!(canonical_encoding(1, &a), canonical_encoding(2, &a));
    }

    #[test]
    fn actor_text_round_trip() {
        for a in [
            Actor::System,
            Actor::User("a@x".into()),
            Actor::Admin("root@x".into()),
        ] {
            assert_eq!(Actor::parse(&a.to_string()).ok(), Some(a));
        }
        assert!(Actor::parse("robot:x").is_err());
    }
}

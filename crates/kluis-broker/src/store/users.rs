//! The user aggregate: accounts, their login secrets (the OPAQUE record
//! and KSF parameters), their key and certificate, and the directory that
//! shows them to colleagues.

use async_trait::async_trait;
use kluis_types::{
    DisplayName, Email, EncryptedEscrow, KsfParams, OrgCertificate, PublicKeyString, SessionId,
    UserId,
};

use super::{AuditOf, SessionStore, StoreError, TokenHash};

/// A user to insert at registration.
pub struct NewUser {
    /// New ID.
    pub user_id: UserId,
    /// Address (unique).
    pub email: Email,
    /// Directory name.
    pub display_name: DisplayName,
    /// Serialized OPAQUE `ServerRegistration`.
    pub opaque_record: Vec<u8>,
    /// KSF parameters the client used.
    pub ksf: KsfParams,
    /// Public key text.
    pub public_key: PublicKeyString,
    /// Escrow version 1.
    pub escrow: EncryptedEscrow,
    /// Recovery escrow version 1 (sealed to the recovery key), if any.
    pub recovery_escrow: Option<EncryptedEscrow>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A stored user.
#[derive(Clone)]
pub struct UserRow {
    /// ID.
    pub user_id: UserId,
    /// Address.
    pub email: Email,
    /// Directory name.
    pub display_name: DisplayName,
    /// Serialized OPAQUE `ServerRegistration`.
    pub opaque_record: Vec<u8>,
    /// KSF parameters.
    pub ksf: KsfParams,
    /// Public key text.
    pub public_key: PublicKeyString,
    /// Org certificate of the current key, if any.
    pub certificate: Option<OrgCertificate>,
    /// When an administrator disabled the account, if it is disabled.
    pub disabled_at: Option<i64>,
}

/// A user as the directory shows them: no login secrets.
#[derive(Clone, Debug)]
pub struct DirectoryRow {
    /// ID.
    pub user_id: UserId,
    /// Address.
    pub email: Email,
    /// Directory name.
    pub display_name: DisplayName,
    /// Public key text.
    pub public_key: PublicKeyString,
    /// Org certificate of the current key, if any.
    pub certificate: Option<OrgCertificate>,
    /// When an administrator disabled the account, if it is disabled.
    pub disabled_at: Option<i64>,
}

/// A password change, applied atomically.
pub struct PasswordChange<'a> {
    /// Whose password.
    pub user_id: &'a UserId,
    /// The session doing the change survives; every other one ends.
    pub keep_session: &'a SessionId,
    /// New serialized OPAQUE record.
    pub opaque_record: &'a [u8],
    /// New KSF parameters.
    pub ksf: KsfParams,
    /// The identity re-sealed under the new export key.
    pub escrow: &'a EncryptedEscrow,
    /// Latest escrow version the client saw.
    pub expected_escrow_version: i64,
    /// A fresh escrow copy sealed to the recovery key, if any.
    pub recovery_escrow: Option<&'a EncryptedEscrow>,
    /// Unix seconds.
    pub now: i64,
}

/// Accounts: registration, look-ups, key, certificate, disabling and the
/// password change.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a user and escrow version 1; when `invite` is given it is
    /// consumed in the same transaction (single use).
    async fn create_user(
        &self,
        user: &NewUser,
        invite: Option<&TokenHash>,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError>;

    /// Looks a user up by address.
    async fn user_by_email(&self, email: &Email) -> Result<Option<UserRow>, StoreError>;

    /// Looks a user up by ID.
    async fn user_by_id(&self, user_id: &UserId) -> Result<Option<UserRow>, StoreError>;

    /// Replaces a user's key and drops the certificate of the old one.
    async fn set_public_key(
        &self,
        user_id: &UserId,
        key: &PublicKeyString,
    ) -> Result<(), StoreError>;

    /// Stores a certificate if it matches the user's current key; returns
    /// whether it was stored.
    async fn set_certificate(
        &self,
        cert: &OrgCertificate,
        audit: &AuditOf<'_, bool>,
    ) -> Result<bool, StoreError>;

    /// Disables (`Some(time)`) or re-enables (`None`) a user. Disabling
    /// deletes every session of the user in the same transaction; returns
    /// how many were deleted.
    async fn set_disabled(
        &self,
        user_id: &UserId,
        disabled_at: Option<i64>,
        audit: &AuditOf<'_, u64>,
    ) -> Result<u64, StoreError>;

    /// Rotates the OPAQUE record, appends the re-sealed escrow and ends every
    /// other session, in one transaction. Returns (new version, sessions ended).
    async fn change_password(
        &self,
        change: &PasswordChange<'_>,
        audit: &AuditOf<'_, (i64, u64)>,
    ) -> Result<(i64, u64), StoreError>;
}

/// The colleague directory, searched with a session token.
#[async_trait]
pub trait DirectoryStore: SessionStore {
    /// A directory search made with a bearer token: users whose e-mail or
    /// lower-cased display name starts with `prefix` (already lower-cased),
    /// ordered by e-mail — or `None` when `token` names no live session
    /// (the test of [`SessionStore::session_by_token_hash`]). Served from the
    /// [`LookupCache`](super::LookupCache) while it is valid, else from the database.
    async fn search_directory(
        &self,
        token: &TokenHash,
        now: i64,
        prefix: &str,
        limit: i64,
    ) -> Result<Option<Vec<DirectoryRow>>, StoreError> {
        let cache = self.lookup_cache();
        match cache.session(token, now) {
            Some(None) => return Ok(None),
            Some(Some(_)) => {
                if let Some(hits) = cache.search(prefix, limit) {
                    return Ok(Some(hits));
                }
            }
            // Remember the session for the next lookups (and every other
            // authenticated request).
            None => {
                if self.session_by_token_hash(token, now).await?.is_none() {
                    return Ok(None);
                }
            }
        }
        let ticket = cache.ticket();
        let hits = self.db_search_directory(token, now, prefix, limit).await?;
        if let Some(h) = &hits {
            cache.put_search(ticket, prefix, limit, h.clone());
        }
        Ok(hits)
    }

    /// [`DirectoryStore::search_directory`] in the database: the session test and
    /// the search in one statement (LEFT JOIN, so a live session with no
    /// hits still answers).
    async fn db_search_directory(
        &self,
        token: &TokenHash,
        now: i64,
        prefix: &str,
        limit: i64,
    ) -> Result<Option<Vec<DirectoryRow>>, StoreError>;
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` prefix pattern.
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Raw columns of a `users` row, shared by both backends' decoders.
pub(crate) struct RawUser {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub opaque_record: Vec<u8>,
    pub ksf_m_cost_kib: i64,
    pub ksf_t_cost: i64,
    pub ksf_p_cost: i64,
    pub public_key: String,
    pub cert_issued_at: Option<i64>,
    pub cert_signature: Option<Vec<u8>>,
    pub disabled_at: Option<i64>,
}

impl RawUser {
    pub(crate) fn decode(self) -> Result<UserRow, StoreError> {
        let corrupt = |_| StoreError::Corrupt { table: "users" };
        let email = Email::parse(&self.email).map_err(corrupt)?;
        let public_key = PublicKeyString::parse(&self.public_key).map_err(corrupt)?;
        let ksf_part =
            |v: i64| u32::try_from(v).map_err(|_| StoreError::Corrupt { table: "users" });
        let certificate = match (self.cert_issued_at, self.cert_signature) {
            (Some(issued_at), Some(sig)) => Some(OrgCertificate {
                email: email.clone(),
                public_key: public_key.clone(),
                issued_at,
                signature: kluis_types::SignatureBytes::new(sig),
            }),
            _ => None,
        };
        Ok(UserRow {
            user_id: UserId::parse(&self.user_id).map_err(corrupt)?,
            display_name: DisplayName::parse(&self.display_name).map_err(corrupt)?,
            email,
            opaque_record: self.opaque_record,
            ksf: KsfParams {
                m_cost_kib: ksf_part(self.ksf_m_cost_kib)?,
                t_cost: ksf_part(self.ksf_t_cost)?,
                p_cost: ksf_part(self.ksf_p_cost)?,
            },
            public_key,
            certificate,
            disabled_at: self.disabled_at,
        })
    }
}

/// Raw columns of a directory hit; `None` throughout for the one row a
/// live session with no hits yields (the search is a LEFT JOIN).
pub(crate) struct RawDirectoryRow {
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub public_key: Option<String>,
    pub cert_issued_at: Option<i64>,
    pub cert_signature: Option<Vec<u8>>,
    pub disabled_at: Option<i64>,
}

impl RawDirectoryRow {
    /// `Ok(None)` for the no-hit row.
    pub(crate) fn decode(self) -> Result<Option<DirectoryRow>, StoreError> {
        let corrupt = |_| StoreError::Corrupt { table: "users" };
        let (Some(user_id), Some(email), Some(display_name), Some(public_key)) =
            (self.user_id, self.email, self.display_name, self.public_key)
        else {
            return Ok(None);
        };
        let email = Email::parse(&email).map_err(corrupt)?;
        let public_key = PublicKeyString::parse(&public_key).map_err(corrupt)?;
        let certificate = match (self.cert_issued_at, self.cert_signature) {
            (Some(issued_at), Some(sig)) => Some(OrgCertificate {
                email: email.clone(),
                public_key: public_key.clone(),
                issued_at,
                signature: kluis_types::SignatureBytes::new(sig),
            }),
            _ => None,
        };
        Ok(Some(DirectoryRow {
            user_id: UserId::parse(&user_id).map_err(corrupt)?,
            display_name: DisplayName::parse(&display_name).map_err(corrupt)?,
            email,
            public_key,
            certificate,
            disabled_at: self.disabled_at,
        }))
    }
}

/// The smallest string greater than every string that starts with
/// `prefix` (code-point order, which is UTF-8 byte order): an upper bound
/// that lets a prefix search walk an index as a range. `None` when there
/// is none (an empty prefix, or one of only U+10FFFF).
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) {
            0xD7FF => Some('\u{E000}'),
            c => char::from_u32(c + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

pub(crate) const USER_COLUMNS: &str = "user_id, email, display_name, opaque_record, \
     ksf_m_cost_kib, ksf_t_cost, ksf_p_cost, public_key, cert_issued_at, cert_signature, \
     disabled_at";

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::{like_prefix, prefix_upper_bound};

    #[test]
    fn like_prefix_escapes_wildcards() {
        assert_eq!(like_prefix("a%b_c\\"), "a\\%b\\_c\\\\%");
        assert_eq!(like_prefix(""), "%");
    }

    #[test]
    fn prefix_upper_bound_is_the_next_string_after_the_prefix_range() {
        assert_eq!(prefix_upper_bound("abc").as_deref(), Some("abd"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
        // Everything that starts with the prefix sorts below the bound.
        let hi = prefix_upper_bound("al").unwrap();
        for s in ["al", "alice@example.org", "al\u{10FFFF}\u{10FFFF}"] {
            assert!(s < hi.as_str(), "{s}");
        }
        assert!("am" >= hi.as_str());
    }
}

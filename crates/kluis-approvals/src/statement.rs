//! Recovery requests, approval statements and the threshold rule.

use serde::{Deserialize, Serialize};

use crate::keys::{AdminPublicKey, AdminSigningKey, KeyFingerprint, SignatureBytes};
use crate::{ApprovalError, invalid};

/// Longest request id accepted (bytes).
pub const MAX_REQUEST_ID_LEN: usize = 128;
/// Longest user name (e-mail address) accepted (bytes).
pub const MAX_USER_LEN: usize = 320;

/// Domain-separation line that starts every signed statement.
const DOMAIN: &[u8] = b"kluis recovery approval v1\n";

/// A user's request to have their key recovered, as the broker records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryRequest {
    /// The broker's id for the request (printable ASCII, no spaces).
    pub request_id: String,
    /// The user whose key is to be recovered (their e-mail address).
    pub user: String,
    /// Fingerprint of the one-time request key the user's client made.
    pub request_key_fingerprint: KeyFingerprint,
    /// When the request was made (Unix seconds).
    pub requested_at: i64,
}

impl RecoveryRequest {
    /// Checks the field syntax (see `docs/RECOVERY.md` §4).
    pub fn validate(&self) -> Result<(), ApprovalError> {
        check_request_id(&self.request_id)?;
        check_user(&self.user)
    }
}

/// What one administrator signs: "I approve recovery request `request_id`
/// for `user`, re-sealing to the key with `request_key_fingerprint`", at
/// `approved_at`, as `admin`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalStatement {
    /// The request approved.
    pub request_id: String,
    /// The user whose key will be recovered.
    pub user: String,
    /// The request key the recovered identity will be sealed to.
    pub request_key_fingerprint: KeyFingerprint,
    /// When the administrator approved (Unix seconds).
    pub approved_at: i64,
    /// The approving administrator's key. Signed too, so a signature cannot
    /// be re-attributed to another key.
    pub admin: AdminPublicKey,
}

impl ApprovalStatement {
    /// The exact bytes signed (RECOVERY.md §4):
    ///
    /// ```text
    /// "kluis recovery approval v1\n"
    /// u32 BE length || request id (ASCII)
    /// u32 BE length || user (UTF-8)
    /// 32 bytes       request key fingerprint
    /// i64 BE         approved_at
    /// 32 bytes       admin Ed25519 public key
    /// ```
    pub fn message(&self) -> Vec<u8> {
        let id = self.request_id.as_bytes();
        let user = self.user.as_bytes();
        let mut out = Vec::with_capacity(DOMAIN.len() + 8 + id.len() + user.len() + 72);
        out.extend_from_slice(DOMAIN);
        for field in [id, user] {
            // Both lengths are bounded far below u32::MAX by validation; an
            // unvalidated over-long field saturates and then fails to verify.
            out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(field);
        }
        out.extend_from_slice(&self.request_key_fingerprint.0);
        out.extend_from_slice(&self.approved_at.to_be_bytes());
        out.extend_from_slice(&self.admin.to_bytes());
        out
    }

    fn validate(&self) -> Result<(), ApprovalError> {
        check_request_id(&self.request_id)?;
        check_user(&self.user)
    }
}

/// A signed approval: the statement and the administrator's signature over
/// [`ApprovalStatement::message`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// What was approved.
    #[serde(flatten)]
    pub statement: ApprovalStatement,
    /// Ed25519 signature by `statement.admin`.
    pub signature: SignatureBytes,
}

impl Approval {
    /// Signs an approval of `request` at `approved_at` (done on the admin's
    /// machine; the broker only ever sees the result).
    pub fn sign(
        request: &RecoveryRequest,
        approved_at: i64,
        key: &AdminSigningKey,
    ) -> Result<Self, ApprovalError> {
        request.validate()?;
        let statement = ApprovalStatement {
            request_id: request.request_id.clone(),
            user: request.user.clone(),
            request_key_fingerprint: request.request_key_fingerprint,
            approved_at,
            admin: key.public_key(),
        };
        let signature = key.sign(&statement.message());
        Ok(Self {
            statement,
            signature,
        })
    }

    /// The signer.
    pub fn admin(&self) -> AdminPublicKey {
        self.statement.admin
    }

    /// Checks this one approval against `request` and the administrator
    /// list, as the broker should when an approval is submitted. `index` is
    /// only used to label errors. This does not check for double approval;
    /// [`verify_approvals`] does.
    pub fn verify(
        &self,
        index: usize,
        request: &RecoveryRequest,
        admins: &[AdminPublicKey],
    ) -> Result<(), ApprovalError> {
        let admin = self.statement.admin;
        if !admins.contains(&admin) {
            return Err(ApprovalError::UnknownAdmin { index, admin });
        }
        self.statement.validate()?;
        let bad_signature = ApprovalError::BadSignature { index, admin };
        let key = admin.verifying_key().ok_or(bad_signature.clone())?;
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature.0);
        key.verify_strict(&self.statement.message(), &signature)
            .map_err(|_| bad_signature)?;
        let wrong = |field| ApprovalError::WrongRequest {
            index,
            admin,
            field,
        };
        if self.statement.request_id != request.request_id {
            return Err(wrong("request id"));
        }
        if self.statement.user != request.user {
            return Err(wrong("user"));
        }
        if self.statement.request_key_fingerprint != request.request_key_fingerprint {
            return Err(wrong("request key fingerprint"));
        }
        if self.statement.approved_at < request.requested_at {
            return Err(ApprovalError::ApprovedBeforeRequest { index, admin });
        }
        Ok(())
    }
}

/// The outcome of a successful [`verify_approvals`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedApprovals {
    /// Who approved and when, in the order given.
    pub approvers: Vec<(AdminPublicKey, i64)>,
    /// The time of the last approval: when the threshold was reached.
    pub completed_at: i64,
}

/// The threshold rule: accepts `approvals` only if every one verifies
/// ([`Approval::verify`]), no administrator appears twice, and there are at
/// least `threshold` of them.
///
/// Any bad approval fails the whole set rather than being skipped: a forged,
/// misdirected or repeated approval means someone is tampering, and the
/// broker should never have stored it.
pub fn verify_approvals(
    threshold: usize,
    request: &RecoveryRequest,
    approvals: &[Approval],
    admins: &[AdminPublicKey],
) -> Result<VerifiedApprovals, ApprovalError> {
    let mut distinct: Vec<AdminPublicKey> = admins.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if threshold == 0 || threshold > distinct.len() {
        return Err(ApprovalError::BadThreshold {
            threshold,
            admins: distinct.len(),
        });
    }
    request.validate()?;
    let mut approvers: Vec<(AdminPublicKey, i64)> = Vec::with_capacity(approvals.len());
    for (index, approval) in approvals.iter().enumerate() {
        approval.verify(index, request, &distinct)?;
        let admin = approval.admin();
        if let Some(first) = approvers.iter().position(|(a, _)| *a == admin) {
            return Err(ApprovalError::DoubleApproval {
                admin,
                first,
                second: index,
            });
        }
        approvers.push((admin, approval.statement.approved_at));
    }
    if approvers.len() < threshold {
        return Err(ApprovalError::NotEnoughApprovals {
            have: approvers.len(),
            need: threshold,
        });
    }
    let completed_at = approvers
        .iter()
        .map(|(_, t)| *t)
        .max()
        .unwrap_or(request.requested_at);
    Ok(VerifiedApprovals {
        approvers,
        completed_at,
    })
}

fn check_request_id(id: &str) -> Result<(), ApprovalError> {
    if id.is_empty() || id.len() > MAX_REQUEST_ID_LEN {
        return Err(invalid("request id", "must be 1 to 128 bytes"));
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "request id",
            "must be printable ASCII without spaces",
        ));
    }
    Ok(())
}

fn check_user(user: &str) -> Result<(), ApprovalError> {
    if user.is_empty() || user.len() > MAX_USER_LEN {
        return Err(invalid("user", "must be 1 to 320 bytes"));
    }
    if user.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid(
            "user",
            "must not contain spaces or control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn request() -> RecoveryRequest {
        RecoveryRequest {
            request_id: "req-1".into(),
            user: "alice@example.org".into(),
            request_key_fingerprint: KeyFingerprint([9u8; 32]),
            requested_at: 1_000,
        }
    }

    #[test]
    fn message_is_length_prefixed_and_domain_separated() {
        let key = AdminSigningKey::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let a = Approval::sign(&request(), 1_001, &key).expect("valid request");
        let m = a.statement.message();
        assert!(m.starts_with(DOMAIN));
        assert_eq!(&m[DOMAIN.len()..DOMAIN.len() + 4], &5u32.to_be_bytes());
        assert_eq!(m.len(), DOMAIN.len() + 4 + 5 + 4 + 17 + 32 + 8 + 32);
        // Moving a byte between id and user changes the message.
        let mut other = a.statement.clone();
        other.request_id = "req-1a".into();
        other.user = "lice@example.org".into();
        assert_ne!(other.message(), m);
    }

    #[test]
    fn single_approval_verifies_and_json_round_trips() {
        let key = AdminSigningKey::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let a = Approval::sign(&request(), 1_001, &key).expect("valid request");
        a.verify(0, &request(), &[key.public_key()])
            .expect("verifies");
        let json = serde_json::to_string(&a).expect("serialises");
        let back: Approval = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, a);
        back.verify(0, &request(), &[key.public_key()])
            .expect("still verifies");
    }

    #[test]
    fn field_rules() {
        let mut r = request();
        r.request_id = "has space".into();
        assert!(r.validate().is_err());
        let mut r = request();
        r.user = String::new();
        assert!(r.validate().is_err());
        let key = AdminSigningKey::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let mut r = request();
        r.request_id = "x".repeat(MAX_REQUEST_ID_LEN + 1);
        assert!(Approval::sign(&r, 1, &key).is_err());
    }

    #[test]
    fn zero_or_excessive_threshold_is_refused() {
        let key = AdminSigningKey::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let admins = [key.public_key(), key.public_key()];
        assert_eq!(
            verify_approvals(0, &request(), &[], &admins),
            Err(ApprovalError::BadThreshold {
                threshold: 0,
                admins: 1
            })
        );
        assert_eq!(
            verify_approvals(2, &request(), &[], &admins),
            Err(ApprovalError::BadThreshold {
                threshold: 2,
                admins: 1
            })
        );
    }
}

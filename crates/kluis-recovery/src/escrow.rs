//! Escrow to the recovery key, and re-sealing to a one-time request key.
//! RECOVERY.md §5.
//!
//! Both containers are ordinary Kluis files (FORMAT.md) whose plaintext is a
//! small record:
//!
//! ```text
//! escrow copy (to the recovery key)      recovery package (to the request key)
//! magic   8  "KLUISESC"                  magic   8  "KLUISRCV"
//! version 1  0x01                        version 1  0x01
//!                                        u16 BE length || request id (ASCII)
//! u16 BE length || user (UTF-8)          u16 BE length || user (UTF-8)
//!                                        u8 count || count × (32 admin key || i64 BE approved_at)
//! 32  fingerprint of the user's key      32  fingerprint of the user's key
//! 64  identity secret                    64  identity secret
//! ```
//! The user and fingerprint inside are authenticated with the secret, so the
//! broker cannot swap one user's escrow into another user's request.

use std::io::Read as _;

use kluis_approvals::{
    AdminPublicKey, Approval, KeyFingerprint, RecoveryRequest, VerifiedApprovals, verify_approvals,
};
use kluis_format::{
    Decryptor, EncryptOptions, IDENTITY_SECRET_LEN, Identity, Metadata, Recipient, encrypt,
};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::error::{RecoveryError, Result};
use crate::setup::RecoveryKey;

const ESCROW_MAGIC: &[u8; 8] = b"KLUISESC";
const PACKAGE_MAGIC: &[u8; 8] = b"KLUISRCV";
const VERSION: u8 = 1;
/// Upper bound on a decrypted record; anything longer is refused.
const MAX_RECORD: u64 = 8 + 1 + 2 + 128 + 2 + 320 + 1 + 255 * 40 + 32 + 64;

/// An escrow copy of a user's identity, sealed to the organisation recovery
/// key. Opaque to the broker, which stores it beside the password-sealed
/// copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryEscrow(Vec<u8>);

impl RecoveryEscrow {
    /// Wraps bytes fetched from the broker.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    /// The bytes to upload.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A user's identity re-sealed to their one-time request key. The broker
/// relays it from the admin machine to the user's client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryPackage(Vec<u8>);

impl RecoveryPackage {
    /// Wraps bytes fetched from the broker.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    /// The bytes to upload.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The one-time key a user's client makes when asking for recovery. Its
/// fingerprint is shown to the user, who reads it to the approving admins;
/// it never leaves the client. Zeroized on drop.
pub struct RequestKey(Identity);

impl std::fmt::Debug for RequestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RequestKey({})", self.0.recipient().fingerprint())
    }
}

impl RequestKey {
    /// Makes a fresh request key.
    pub fn generate(rng: &mut impl rand_core::CryptoRng) -> Self {
        Self(Identity::generate(rng))
    }
    /// Wraps a request key the client kept (sealed) between runs.
    pub fn from_identity(identity: Identity) -> Self {
        Self(identity)
    }
    /// The secret key, for the client to keep sealed between runs until
    /// the package arrives. Handle as a secret.
    pub fn identity(&self) -> &Identity {
        &self.0
    }
    /// The public half, sent to the broker with the request.
    pub fn recipient(&self) -> &Recipient {
        self.0.recipient()
    }
    /// The fingerprint to show the user and to put in the request.
    pub fn fingerprint(&self) -> KeyFingerprint {
        fingerprint_of(self.0.recipient())
    }
}

/// The fingerprint of any Kluis recipient in the form approvals sign.
pub fn fingerprint_of(recipient: &Recipient) -> KeyFingerprint {
    KeyFingerprint(*recipient.fingerprint().as_bytes())
}

/// Who must approve: the administrators' keys and how many of them. The
/// admin machine should take these from its own pinned configuration, not
/// from the broker.
#[derive(Clone, Debug)]
pub struct ApprovalPolicy {
    /// Approvals needed.
    pub threshold: usize,
    /// Administrators allowed to approve.
    pub admins: Vec<AdminPublicKey>,
}

/// A recovered identity, as the user's client receives it.
pub struct Recovered {
    /// The user's identity: unlock it, then set a new password.
    pub identity: Identity,
    /// The user named in the package (equal to the request's user).
    pub user: String,
    /// Who approved and when, as the admin machine verified it: show this
    /// to the user ("who recovered your key and when").
    pub approvals: Vec<(AdminPublicKey, i64)>,
}

impl std::fmt::Debug for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recovered({}, {:?})", self.user, self.identity)
    }
}

fn check_user(user: &str) -> Result<()> {
    if user.is_empty()
        || user.len() > 320
        || user.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(RecoveryError::BadParameters(
            "user must be 1 to 320 bytes without spaces",
        ));
    }
    Ok(())
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Callers bound every string to at most 320 bytes.
    out.extend_from_slice(&u16::try_from(s.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn seal_to(
    plaintext: &[u8],
    to: &Recipient,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encrypt(
        plaintext,
        &mut out,
        std::slice::from_ref(to),
        &Metadata::default(),
        EncryptOptions::default(),
        rng,
    )
    .map_err(RecoveryError::Format)?;
    Ok(out)
}

/// Opens a Kluis file with `identity`; `None` if it is not addressed to it.
fn open_with(file: &[u8], identity: &Identity) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let mut d = match Decryptor::new(file, identity) {
        Ok(d) => d,
        Err(kluis_format::Error::NoMatchingRecipient) => return Ok(None),
        Err(e) => return Err(RecoveryError::Format(e)),
    };
    // Room for the largest record up front, so the buffer holding the
    // secret is never reallocated (which would leave an unzeroized copy).
    let mut out = Zeroizing::new(Vec::with_capacity(MAX_RECORD as usize + 1));
    (&mut d)
        .take(MAX_RECORD + 1)
        .read_to_end(&mut out)
        .map_err(|e| RecoveryError::Format(kluis_format::Error::from_io(e)))?;
    Ok(Some(out))
}

struct Record<'a> {
    what: &'static str,
    b: &'a [u8],
}

impl<'a> Record<'a> {
    fn bad(&self, reason: &'static str) -> RecoveryError {
        RecoveryError::MalformedPayload {
            what: self.what,
            reason,
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() < n {
            return Err(self.bad("truncated"));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn string(&mut self) -> Result<&'a str> {
        let len = self.take(2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        std::str::from_utf8(self.take(len)?).map_err(|_| self.bad("text is not UTF-8"))
    }
    fn header(&mut self, magic: &[u8; 8]) -> Result<()> {
        if self.take(8)? != magic {
            return Err(self.bad("wrong magic"));
        }
        if self.take(1)?[0] != VERSION {
            return Err(self.bad("unsupported version"));
        }
        Ok(())
    }
    /// The fingerprint and secret that end both records; checks they match.
    fn identity(&mut self) -> Result<Identity> {
        let fp = self.take(32)?;
        let secret = self.take(IDENTITY_SECRET_LEN)?;
        if !self.b.is_empty() {
            return Err(self.bad("trailing data"));
        }
        let identity =
            Identity::from_secret_bytes(secret).map_err(|_| self.bad("invalid identity"))?;
        if !bool::from(identity.recipient().fingerprint().as_bytes().ct_eq(fp)) {
            return Err(self.bad("the identity does not match its fingerprint"));
        }
        Ok(identity)
    }
}

/// Seals a user's identity to the organisation recovery key, for the broker
/// to keep beside the password-sealed copy. Run by the user's client at
/// enrolment and after every password change, when policy requires it.
pub fn seal_for_recovery(
    identity: &Identity,
    recovery: &Recipient,
    user: &str,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<RecoveryEscrow> {
    check_user(user)?;
    let mut record = Zeroizing::new(Vec::with_capacity(MAX_RECORD as usize));
    record.extend_from_slice(ESCROW_MAGIC);
    record.push(VERSION);
    put_str(&mut record, user);
    record.extend_from_slice(identity.recipient().fingerprint().as_bytes());
    record.extend_from_slice(&identity.to_secret_bytes()[..]);
    seal_to(&record, recovery, rng).map(RecoveryEscrow)
}

/// Opens an escrow copy with the rebuilt recovery key and checks that it
/// belongs to `user` and holds the key `user_key` (the user's
/// org-certified public key, checked against its certificate by the
/// caller). Used by [`reseal_for_request`]; exposed for the handover of a
/// departed user's files, which should still go through the approval flow
/// and end in [`reseal_for_request`].
pub fn open_escrow(
    key: &RecoveryKey,
    escrow: &RecoveryEscrow,
    user: &str,
    user_key: &Recipient,
) -> Result<Identity> {
    let plain = open_with(&escrow.0, &key.0)?.ok_or(RecoveryError::EscrowNotForThisKey)?;
    let mut r = Record {
        what: "escrow copy",
        b: &plain,
    };
    r.header(ESCROW_MAGIC)?;
    let found = r.string()?;
    if found != user {
        return Err(RecoveryError::EscrowForAnotherUser {
            expected: user.to_owned(),
            found: found.to_owned(),
        });
    }
    let identity = r.identity()?;
    // Anyone can seal to the recovery public key, so an escrow copy proves
    // nothing about whose key it holds; the certificate does.
    if identity.recipient() != user_key {
        return Err(RecoveryError::EscrowKeyMismatch);
    }
    Ok(identity)
}

/// Everything the admin machine is given about one recovery, all of it
/// fetched from the broker and all of it checked by [`reseal_for_request`].
#[derive(Clone, Copy, Debug)]
pub struct RecoveryCase<'a> {
    /// The request as the broker recorded it.
    pub request: &'a RecoveryRequest,
    /// The request key's public half (must match the approved fingerprint).
    pub request_key: &'a Recipient,
    /// The signed approvals.
    pub approvals: &'a [Approval],
    /// The user's escrow copy.
    pub escrow: &'a RecoveryEscrow,
    /// The user's current public key from the directory, **after** the
    /// caller has verified its org certificate with the pinned org key.
    pub user_key: &'a Recipient,
}

/// On the admin machine: checks the approvals against `policy` (from the
/// admin machine's own configuration), checks that the request key is the
/// approved one, opens the user's escrow copy with the rebuilt recovery key,
/// checks it is that user's and holds their certified key, and seals the
/// identity to the request key. Returns the package for the broker to relay
/// and who approved (for the audit log).
pub fn reseal_for_request(
    key: &RecoveryKey,
    case: &RecoveryCase<'_>,
    policy: &ApprovalPolicy,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<(RecoveryPackage, VerifiedApprovals)> {
    let RecoveryCase {
        request,
        request_key,
        approvals,
        escrow,
        user_key,
    } = *case;
    let verified = verify_approvals(policy.threshold, request, approvals, &policy.admins)?;
    let actual = fingerprint_of(request_key);
    if actual != request.request_key_fingerprint {
        return Err(RecoveryError::RequestKeyMismatch {
            expected: request.request_key_fingerprint,
            actual,
        });
    }
    let identity = open_escrow(key, escrow, &request.user, user_key)?;
    let mut record = Zeroizing::new(Vec::with_capacity(MAX_RECORD as usize));
    record.extend_from_slice(PACKAGE_MAGIC);
    record.push(VERSION);
    put_str(&mut record, &request.request_id);
    put_str(&mut record, &request.user);
    // verify_approvals admits at most one approval per distinct admin; more
    // than 255 administrators approving one request is refused here.
    let count = u8::try_from(verified.approvers.len())
        .map_err(|_| RecoveryError::BadParameters("more than 255 approvals"))?;
    record.push(count);
    for (admin, at) in &verified.approvers {
        record.extend_from_slice(&admin.to_bytes());
        record.extend_from_slice(&at.to_be_bytes());
    }
    record.extend_from_slice(identity.recipient().fingerprint().as_bytes());
    record.extend_from_slice(&identity.to_secret_bytes()[..]);
    let package = seal_to(&record, request_key, rng).map(RecoveryPackage)?;
    Ok((package, verified))
}

/// On the user's client: opens the package with the request key and checks
/// it answers `request`. A package sealed to another key is
/// [`RecoveryError::WrongRequestKey`].
pub fn open_recovered(
    package: &RecoveryPackage,
    request_key: &RequestKey,
    request: &RecoveryRequest,
) -> Result<Recovered> {
    let plain = open_with(&package.0, &request_key.0)?.ok_or(RecoveryError::WrongRequestKey)?;
    let mut r = Record {
        what: "recovery package",
        b: &plain,
    };
    r.header(PACKAGE_MAGIC)?;
    if r.string()? != request.request_id {
        return Err(RecoveryError::PackageForAnotherRequest("request id"));
    }
    let user = r.string()?.to_owned();
    if user != request.user {
        return Err(RecoveryError::PackageForAnotherRequest("user"));
    }
    let count = r.take(1)?[0];
    let mut approvals = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let entry = r.take(40)?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&entry[..32]);
        let mut at = [0u8; 8];
        at.copy_from_slice(&entry[32..]);
        approvals.push((AdminPublicKey::from_bytes(key), i64::from_be_bytes(at)));
    }
    let identity = r.identity()?;
    Ok(Recovered {
        identity,
        user,
        approvals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn escrow_round_trip_and_user_binding() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let user = Identity::generate(&mut rng);
        let org = RecoveryKey(Identity::generate(&mut rng));
        let escrow =
            seal_for_recovery(&user, org.recipient(), "a@x.example", &mut rng).expect("seals");
        let back = open_escrow(&org, &escrow, "a@x.example", user.recipient()).expect("opens");
        assert!(back.ct_eq(&user));
        assert!(matches!(
            open_escrow(&org, &escrow, "b@x.example", user.recipient()),
            Err(RecoveryError::EscrowForAnotherUser { .. })
        ));
        let other = RecoveryKey(Identity::generate(&mut rng));
        assert!(matches!(
            open_escrow(&other, &escrow, "a@x.example", user.recipient()),
            Err(RecoveryError::EscrowNotForThisKey)
        ));
    }

    #[test]
    fn record_with_mismatched_fingerprint_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let user = Identity::generate(&mut rng);
        let org = RecoveryKey(Identity::generate(&mut rng));
        let mut record = Vec::new();
        record.extend_from_slice(ESCROW_MAGIC);
        record.push(VERSION);
        put_str(&mut record, "a@x.example");
        record.extend_from_slice(&[0u8; 32]);
        record.extend_from_slice(&user.to_secret_bytes()[..]);
        let escrow = RecoveryEscrow(seal_to(&record, org.recipient(), &mut rng).expect("seals"));
        assert!(matches!(
            open_escrow(&org, &escrow, "a@x.example", user.recipient()),
            Err(RecoveryError::MalformedPayload { .. })
        ));
    }
}

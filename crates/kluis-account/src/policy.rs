//! The organisation policy and recovery key as this client trusts them:
//! verified with the org key pinned at enrolment, never taken from the
//! broker on its word.
//!
//! * A policy version ≥ 1 must carry a valid org signature. Version 0 is
//!   the built-in default and is accepted only while this client has never
//!   seen a signed policy from this broker: `policy.json` in the state
//!   directory remembers the highest version seen, and an older one (a
//!   rollback) is refused.
//! * The recovery key must be certified by the org key; its fingerprint is
//!   pinned at enrolment, and a different one is refused afterwards.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, VerifyingKey};
use kluis_types::{Fingerprint, OrgPolicy, OrgPublicKey, RecoveryKeyInfo, SignedPolicy};
use serde::{Deserialize, Serialize};

use crate::AccountError;
use crate::session::write_private;

/// File name inside the state directory.
pub const POLICY_PIN_FILE: &str = "policy.json";

fn verify_sig(org: &OrgPublicKey, message: &[u8], signature: &[u8]) -> bool {
    VerifyingKey::from_bytes(&org.to_bytes())
        .ok()
        .zip(Signature::from_slice(signature).ok())
        .is_some_and(|(k, sig)| k.verify_strict(message, &sig).is_ok())
}

/// Checks a served policy's signature (version ≥ 1) and parses it.
pub fn verify_policy(org: &OrgPublicKey, signed: &SignedPolicy) -> Result<OrgPolicy, AccountError> {
    match (&signed.signature, signed.version) {
        (None, 0) => {}
        (Some(sig), v) if v >= 1 => {
            if !verify_sig(org, &signed.message(), sig.as_bytes()) {
                return Err(AccountError::BadPolicy(
                    "not signed by your organisation's key",
                ));
            }
        }
        _ => return Err(AccountError::BadPolicy("unsigned policy version")),
    }
    let policy = signed
        .policy()
        .map_err(|_| AccountError::BadPolicy("not a valid policy document"))?;
    if signed.version == 0 && policy != OrgPolicy::default() {
        return Err(AccountError::BadPolicy(
            "version 0 must be the built-in default",
        ));
    }
    Ok(policy)
}

/// Checks that the org key certified this recovery key.
pub fn verify_recovery_key(org: &OrgPublicKey, info: &RecoveryKeyInfo) -> Result<(), AccountError> {
    if info.threshold < 2
        || info.shares < info.threshold
        || !verify_sig(org, &info.message(), info.signature.as_bytes())
    {
        return Err(AccountError::BadRecoveryKey);
    }
    Ok(())
}

/// Checks a new password against the policy's minimum zxcvbn score.
/// `user_inputs` (address, name) count as guessable words.
pub fn check_password_strength(
    policy: &OrgPolicy,
    password: &str,
    user_inputs: &[&str],
) -> Result<(), AccountError> {
    let entropy = zxcvbn::zxcvbn(password, user_inputs);
    let score = u8::from(entropy.score());
    if score >= policy.min_password_score {
        return Ok(());
    }
    let hint = entropy
        .feedback()
        .and_then(|f| {
            f.warning()
                .map(|w| w.to_string())
                .or_else(|| f.suggestions().first().map(ToString::to_string))
        })
        .map(|h| format!(": {h}"))
        .unwrap_or_default();
    Err(AccountError::WeakPassword {
        score,
        required: policy.min_password_score,
        hint,
    })
}

/// What this client remembers about the broker's policy and recovery key.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct PolicyPin {
    /// Highest policy version seen.
    pub version: i64,
    /// The policy version the invite this device joined with was made
    /// under: an older one (the unsigned version 0 included) is refused.
    #[serde(default)]
    pub invite_min_version: i64,
    /// Fingerprint of the recovery key pinned at enrolment.
    #[serde(default)]
    pub recovery_key: Option<Fingerprint>,
}

#[derive(Debug, Clone)]
pub(crate) struct PolicyPinStore {
    path: PathBuf,
}

impl PolicyPinStore {
    pub(crate) fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join(POLICY_PIN_FILE),
        }
    }

    pub(crate) fn load(&self) -> Result<PolicyPin, AccountError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|_| AccountError::CorruptState {
                path: self.path.clone(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PolicyPin::default()),
            Err(source) => Err(AccountError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    pub(crate) fn save(&self, pin: &PolicyPin) -> Result<(), AccountError> {
        let json = serde_json::to_vec_pretty(pin).map_err(|_| AccountError::CorruptState {
            path: self.path.clone(),
        })?;
        write_private(&self.path, &json)
    }

    /// Verifies `signed`, refuses a rollback, and remembers the version.
    pub(crate) fn accept_policy(
        &self,
        org: &OrgPublicKey,
        signed: &SignedPolicy,
    ) -> Result<OrgPolicy, AccountError> {
        let policy = verify_policy(org, signed)?;
        let mut pin = self.load()?;
        if signed.version < pin.invite_min_version {
            return Err(AccountError::PolicyBelowInvite {
                invite: pin.invite_min_version,
                served: signed.version,
            });
        }
        if signed.version < pin.version {
            return Err(AccountError::PolicyRollback {
                seen: pin.version,
                served: signed.version,
            });
        }
        if signed.version > pin.version {
            pin.version = signed.version;
            self.save(&pin)?;
        }
        Ok(policy)
    }

    /// Remembers the invite's policy version (issue 18.4c); it only grows.
    pub(crate) fn require_invite_version(&self, min: i64) -> Result<(), AccountError> {
        let mut pin = self.load()?;
        if min > pin.invite_min_version {
            pin.invite_min_version = min;
            self.save(&pin)?;
        }
        Ok(())
    }

    /// Verifies a recovery key and pins it (first use) or checks the pin.
    pub(crate) fn accept_recovery_key(
        &self,
        org: &OrgPublicKey,
        info: &RecoveryKeyInfo,
    ) -> Result<(), AccountError> {
        verify_recovery_key(org, info)?;
        let mut pin = self.load()?;
        let fp = info.public_key.fingerprint();
        match &pin.recovery_key {
            Some(pinned) if pinned != &fp => Err(AccountError::RecoveryKeyChanged {
                pinned: pinned.clone(),
                presented: fp,
            }),
            Some(_) => Ok(()),
            None => {
                pin.recovery_key = Some(fp);
                self.save(&pin)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};
    use kluis_types::SignatureBytes;

    fn org() -> (SigningKey, OrgPublicKey) {
        let k = SigningKey::from_bytes(&[5u8; 32]);
        let p = OrgPublicKey::from_bytes(k.verifying_key().to_bytes());
        (k, p)
    }

    fn signed(k: &SigningKey, version: i64, policy: &OrgPolicy) -> SignedPolicy {
        let mut s = SignedPolicy {
            version,
            issued_at: 10,
            policy_json: serde_json::to_string(policy).unwrap(),
            signature: None,
        };
        s.signature = Some(SignatureBytes::new(
            k.sign(&s.message()).to_bytes().to_vec(),
        ));
        s
    }

    #[test]
    fn signed_policy_verifies_and_tampering_is_refused() {
        let (k, p) = org();
        let strict = OrgPolicy {
            recovery_mandatory: true,
            ..OrgPolicy::default()
        };
        let s = signed(&k, 1, &strict);
        assert_eq!(verify_policy(&p, &s).unwrap(), strict);
        let mut loosened = s.clone();
        loosened.policy_json = serde_json::to_string(&OrgPolicy::default()).unwrap();
        assert!(matches!(
            verify_policy(&p, &loosened),
            Err(AccountError::BadPolicy(_))
        ));
        let mut unsigned = s;
        unsigned.signature = None;
        assert!(verify_policy(&p, &unsigned).is_err());
        let other = SigningKey::from_bytes(&[6u8; 32]);
        assert!(verify_policy(&p, &signed(&other, 1, &strict)).is_err());
        // Version 0 must be exactly the default.
        let mut fake_default = SignedPolicy::default_unsigned();
        fake_default.policy_json = serde_json::to_string(&strict).unwrap();
        assert!(verify_policy(&p, &fake_default).is_err());
    }

    /// Issue 18.4c: after an invite made under policy version 2, version 0
    /// (unsigned) and 1 are refused, 2 and later accepted.
    #[test]
    fn a_policy_older_than_the_invite_is_refused() {
        let (k, p) = org();
        let dir = tempfile::tempdir().unwrap();
        let store = PolicyPinStore::new(dir.path());
        store.require_invite_version(2).unwrap();
        store.require_invite_version(1).unwrap(); // never lowered
        assert!(matches!(
            store.accept_policy(&p, &SignedPolicy::default_unsigned()),
            Err(AccountError::PolicyBelowInvite {
                invite: 2,
                served: 0
            })
        ));
        assert!(matches!(
            store.accept_policy(&p, &signed(&k, 1, &OrgPolicy::default())),
            Err(AccountError::PolicyBelowInvite {
                invite: 2,
                served: 1
            })
        ));
        store
            .accept_policy(&p, &signed(&k, 2, &OrgPolicy::default()))
            .unwrap();
    }

    #[test]
    fn weak_passwords_are_refused_by_score() {
        let p = OrgPolicy::default();
        assert!(matches!(
            check_password_strength(&p, "password1", &[]),
            Err(AccountError::WeakPassword { required: 3, .. })
        ));
        assert!(check_password_strength(&p, "alice2026", &["alice@example.org", "alice"]).is_err());
        check_password_strength(&p, "correct horse battery staple lantern", &[]).unwrap();
        let lax = OrgPolicy {
            min_password_score: 0,
            ..OrgPolicy::default()
        };
        check_password_strength(&lax, "password1", &[]).unwrap();
    }

    #[test]
    fn rollback_to_an_older_version_is_refused() {
        let (k, p) = org();
        let dir = tempfile::tempdir().unwrap();
        let store = PolicyPinStore::new(dir.path());
        store
            .accept_policy(&p, &SignedPolicy::default_unsigned())
            .unwrap();
        store
            .accept_policy(&p, &signed(&k, 2, &OrgPolicy::default()))
            .unwrap();
        assert!(matches!(
            store.accept_policy(&p, &signed(&k, 1, &OrgPolicy::default())),
            Err(AccountError::PolicyRollback { seen: 2, served: 1 })
        ));
        assert!(matches!(
            store.accept_policy(&p, &SignedPolicy::default_unsigned()),
            Err(AccountError::PolicyRollback { .. })
        ));
    }
}

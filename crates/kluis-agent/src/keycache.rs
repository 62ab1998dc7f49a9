//! The unlocked identity, cached in the operating system's keyring.
//!
//! The durable copy of a user's identity is always the password-protected
//! identity file (Argon2id, FORMAT.md §7). On top of it, an unlocked identity
//! is kept in the OS keyring so that the agent and the tray app can start
//! unlocked after login without asking for the password again:
//!
//! * Linux: the kernel key retention service (keyutils; persistent keyring,
//!   kept across logins for a few days and never written to disk; gone after a
//!   reboot, when the password is asked once);
//! * macOS: the login keychain; Windows: the Credential Manager.
//!
//! Where no keyring works (a container without keyutils, a CI sandbox), or
//! when `KLUIS_NO_KEYRING=1`, nothing is cached and the password-protected
//! file is the only copy. `kluis lock` and logging out remove the cached
//! copy, so a locked agent stays locked across restarts.
//!
//! The entry is named after the data directory, so several Kluis homes of
//! one user never read each other's identity.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use kluis_format::Identity;

use crate::AgentHome;

/// The keyring service name of every Kluis entry.
pub const SERVICE: &str = "kluis";

/// Where the identity of one Kluis home is cached.
#[derive(Debug, Clone)]
pub struct KeyCache {
    user: String,
}

/// Whether caching is switched off by the environment.
fn disabled() -> bool {
    std::env::var_os("KLUIS_NO_KEYRING").is_some_and(|v| v == "1")
}

impl KeyCache {
    /// The cache entry of `home`.
    pub fn for_home(home: &AgentHome) -> KeyCache {
        let digest = Sha256::digest(home.data.to_string_lossy().as_bytes());
        let tag = data_encoding::HEXLOWER.encode(&digest[..12]);
        KeyCache {
            user: format!("identity-{tag}"),
        }
    }

    fn entry(&self) -> Option<keyring::Entry> {
        if disabled() {
            return None;
        }
        keyring::Entry::new(SERVICE, &self.user).ok()
    }

    /// Cache `identity`. Returns whether a keyring took it; failures are
    /// not errors (the password-protected file remains).
    pub fn store(&self, identity: &Identity) -> bool {
        let Some(entry) = self.entry() else {
            return false;
        };
        let secret = identity.to_secret_bytes();
        entry.set_secret(&secret[..]).is_ok()
    }

    /// The cached identity, if a keyring holds a valid one.
    pub fn load(&self) -> Option<Identity> {
        let entry = self.entry()?;
        let secret = Zeroizing::new(entry.get_secret().ok()?);
        Identity::from_secret_bytes(&secret).ok()
    }

    /// Remove the cached identity (lock, log out, new identity).
    pub fn forget(&self) {
        if let Some(entry) = self.entry() {
            let _ = entry.delete_credential();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Store, load and forget through the real OS keyring. Keyrings that do
    /// not work here (no keyutils in a sandbox) are reported, and the
    /// contract then is that nothing is cached.
    #[test]
    fn identity_round_trips_through_the_keyring() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = AgentHome::in_dir(dir.path());
        let cache = KeyCache::for_home(&home);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let id = Identity::generate(&mut rng);
        if !cache.store(&id) {
            // tests/run.sh gives the suite a session keyring; CI requires it.
            assert!(
                std::env::var_os("KLUIS_REQUIRE_KEYRING").is_none(),
                "KLUIS_REQUIRE_KEYRING is set but no OS keyring works here"
            );
            eprintln!("SKIPPED: no usable OS keyring here (no session keyring?)");
            assert!(cache.load().is_none());
            return;
        }
        let back = cache.load().expect("cached identity");
        assert!(back.ct_eq(&id));
        // Another home does not see it.
        let other = tempfile::tempdir().expect("tempdir");
        assert!(
            KeyCache::for_home(&AgentHome::in_dir(other.path()))
                .load()
                .is_none()
        );
        cache.forget();
        assert!(cache.load().is_none());
    }

    use rand_core::SeedableRng as _;
}

//! Trust-on-first-use pins of colleagues' keys: `pins.json` in the state
//! directory. A key that differs from its pin is refused until the user
//! explicitly accepts the change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kluis_types::{Email, Fingerprint, PublicKeyString};
use serde::{Deserialize, Serialize};

use crate::AccountError;
use crate::session::write_private;

/// File name inside the state directory.
pub const PIN_FILE: &str = "pins.json";

/// One pinned key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// The key text seen first.
    pub public_key: PublicKeyString,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PinFile {
    version: u32,
    pins: BTreeMap<Email, Pin>,
}

/// Outcome of checking a key against the pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    /// First time this colleague is seen; the key is now pinned.
    NewlyPinned,
    /// Same key as pinned.
    Matches,
    /// A different key than pinned.
    Changed(Pin),
}

/// The pin store of one client state directory.
#[derive(Debug, Clone)]
pub struct PinStore {
    path: PathBuf,
}

impl PinStore {
    /// The pin file in `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join(PIN_FILE),
        }
    }

    fn read(&self) -> Result<PinFile, AccountError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|_| AccountError::CorruptState {
                path: self.path.clone(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PinFile {
                version: 1,
                pins: BTreeMap::new(),
            }),
            Err(source) => Err(AccountError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn write(&self, file: &PinFile) -> Result<(), AccountError> {
        let json = serde_json::to_vec_pretty(file).map_err(|_| AccountError::CorruptState {
            path: self.path.clone(),
        })?;
        write_private(&self.path, &json)
    }

    /// The pin for `email`, if any.
    pub fn get(&self, email: &Email) -> Result<Option<Pin>, AccountError> {
        Ok(self.read()?.pins.get(email).cloned())
    }

    /// Every pinned colleague, by e-mail address.
    pub fn all(&self) -> Result<Vec<(Email, Pin)>, AccountError> {
        Ok(self.read()?.pins.into_iter().collect())
    }

    /// Checks `key` against the pin for `email`, pinning it if there is none.
    pub fn check_and_pin(
        &self,
        email: &Email,
        key: &PublicKeyString,
    ) -> Result<PinCheck, AccountError> {
        let mut file = self.read()?;
        match file.pins.get(email) {
            Some(pin) if &pin.public_key == key => Ok(PinCheck::Matches),
            Some(pin) => Ok(PinCheck::Changed(pin.clone())),
            None => {
                file.version = 1;
                file.pins.insert(
                    email.clone(),
                    Pin {
                        public_key: key.clone(),
                        fingerprint: key.fingerprint(),
                    },
                );
                self.write(&file)?;
                Ok(PinCheck::NewlyPinned)
            }
        }
    }

    /// Forgets the pin for `email` (after the user verified the new
    /// fingerprint out of band); the next lookup pins the current key.
    pub fn forget(&self, email: &Email) -> Result<bool, AccountError> {
        let mut file = self.read()?;
        let removed = file.pins.remove(email).is_some();
        if removed {
            self.write(&file)?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    #[test]
    fn pins_on_first_use_and_flags_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = PinStore::new(dir.path());
        let e = Email::parse("b@example.org").unwrap();
        let k1 = PublicKeyString::parse("kluis1one").unwrap();
        let k2 = PublicKeyString::parse("kluis1two").unwrap();
        assert_eq!(store.check_and_pin(&e, &k1).unwrap(), PinCheck::NewlyPinned);
        assert_eq!(store.check_and_pin(&e, &k1).unwrap(), PinCheck::Matches);
        assert!(
            matches!(store.check_and_pin(&e, &k2).unwrap(), PinCheck::Changed(p) if p.public_key == k1)
        );
        assert!(store.forget(&e).unwrap());
        assert_eq!(store.check_and_pin(&e, &k2).unwrap(), PinCheck::NewlyPinned);
    }
}

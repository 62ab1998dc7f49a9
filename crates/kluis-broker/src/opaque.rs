//! The server side of OPAQUE (RFC 9807) and the OPRF seed.
//!
//! The seed is the serialized `ServerSetup`: the OPRF seed plus the server's
//! AKE key pair. It lives outside the database (a 0600 file in the data
//! directory, or the `KLUIS_BROKER_OPRF_SEED` environment variable), so a
//! stolen database alone gives no offline password-guessing oracle. If it is
//! lost, no existing account can log in again: every OPAQUE record and every
//! escrow blob sealed under an export key becomes useless.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use opaque_ke::ServerSetup;
use opaque_ke::ciphersuite::CipherSuite;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

/// The OPAQUE cipher suite: ristretto255 OPRF, 3DH with SHA-512, Argon2id
/// key stretching on the client (the server never runs the KSF).
#[derive(Debug, Clone, Copy)]
pub struct Suite;

impl CipherSuite for Suite {
    type OprfCs = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::TripleDh<opaque_ke::Ristretto255, sha2::Sha512>;
    type Ksf = opaque_ke::argon2::Argon2<'static>;
}

/// Failures loading or creating the seed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// Reading or writing the seed file failed.
    #[error("OPRF seed file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The seed text is not valid.
    #[error("OPRF seed from {origin} is malformed")]
    Malformed {
        /// File path or environment variable name.
        origin: String,
    },
    /// The seed file is readable by group or others.
    #[error("OPRF seed file {path} must not be readable by group or others (chmod 600)")]
    Permissions {
        /// The file.
        path: PathBuf,
    },
}

/// The broker's long-term OPAQUE secret.
pub struct OprfSeed(ServerSetup<Suite>);

impl OprfSeed {
    /// Generates a fresh seed.
    pub fn generate() -> Self {
        Self(ServerSetup::<Suite>::new(&mut OsRng))
    }

    /// The OPAQUE server setup.
    pub fn setup(&self) -> &ServerSetup<Suite> {
        &self.0
    }

    /// Base64 text form (secret!).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.serialize()))
    }

    /// Parses the base64 text form.
    pub fn from_base64(text: &str, origin: &str) -> Result<Self, SeedError> {
        let malformed = || SeedError::Malformed {
            origin: origin.to_owned(),
        };
        let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| malformed())?);
        ServerSetup::<Suite>::deserialize(&bytes)
            .map(Self)
            .map_err(|_| malformed())
    }

    /// Loads the seed from `path`, creating it (mode 0600) if it does not
    /// exist yet.
    pub fn load_or_create(path: &Path) -> Result<Self, SeedError> {
        let io = |source| SeedError::Io {
            path: path.to_owned(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                let text = Zeroizing::new(text);
                Self::from_base64(&text, &path.display().to_string())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let seed = Self::generate();
                let mut file = create_private(path).map_err(io)?;
                file.write_all(seed.to_base64().as_bytes()).map_err(io)?;
                file.write_all(b"\n").map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok(seed)
            }
            Err(e) => Err(io(e)),
        }
    }
}

/// Creates a new file readable only by its owner; fails if it exists.
pub(crate) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), SeedError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|source| SeedError::Io {
        path: path.to_owned(),
        source,
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(SeedError::Permissions {
            path: path.to_owned(),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), SeedError> {
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    #[test]
    fn seed_file_is_created_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oprf-seed");
        let a = OprfSeed::load_or_create(&path).unwrap();
        let b = OprfSeed::load_or_create(&path).unwrap();
        assert_eq!(a.setup().serialize(), b.setup().serialize());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                OprfSeed::load_or_create(&path),
                Err(SeedError::Permissions { .. })
            ));
        }
    }

    #[test]
    fn malformed_seed_is_an_error() {
        assert!(OprfSeed::from_base64("AAAA", "test").is_err());
    }
}

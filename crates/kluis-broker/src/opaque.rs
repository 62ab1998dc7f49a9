//! The server side of OPAQUE (RFC 9807) and the OPRF seed.
//!
//! The seed is the serialized `ServerSetup`: the OPRF seed plus the server's
//! AKE key pair. It lives outside the database and outside the data
//! directory (a systemd credential, a 0600 file next to the configuration,
//! or the `KLUIS_BROKER_OPRF_SEED` environment variable), so neither a
//! stolen database nor a backup of the data directory gives an offline
//! password-guessing oracle. If it is lost, no existing account can log in
//! again: every OPAQUE record and every escrow blob sealed under an export
//! key becomes useless. [`open_seed`] therefore never creates a seed for a
//! database that already has accounts or was set up with another seed.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use opaque_ke::ServerSetup;
use opaque_ke::ciphersuite::CipherSuite;
use rand::rngs::OsRng;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::config::SeedSource;
use crate::store::{Store, StoreError};

/// The environment variable that can hold the seed itself.
pub const SEED_ENV: &str = "KLUIS_BROKER_OPRF_SEED";

/// The label of the seed check value (see [`OprfSeed::check_value`]).
const CHECK_LABEL: &[u8] = b"kluis-broker oprf-seed check v1";

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
    /// The seed is missing where a new one must not be created.
    #[error(
        "OPRF seed {path} is missing and {why}: refusing to start (a new seed would make every \
         existing login fail). Restore the seed from a backup or copy it from another instance \
         (an older broker kept it in its data directory as oprf-seed); docs/BROKER.md, \
         \"The OPRF seed\""
    )]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
        /// Why none is created.
        why: &'static str,
    },
    /// The seed is not the one the database was set up with.
    #[error(
        "OPRF seed from {origin} is not the seed this database was set up with: refusing to \
         start (every login through this instance would fail with \"wrong e-mail address or \
         password\"). All instances on one database must use the same seed; copy it from a \
         running instance"
    )]
    Mismatch {
        /// File path or environment variable name.
        origin: String,
    },
    /// The database could not be asked about the seed.
    #[error("checking the OPRF seed against the database")]
    Store(#[source] StoreError),
}

impl From<StoreError> for SeedError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
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

    /// The check value stored in the database (table `oprf_seed_check`):
    /// HMAC-SHA256 keyed with the serialized seed over a fixed label. It is
    /// a PRF output under a key of several hundred random bits, so it
    /// reveals nothing about the seed, and it involves no password, so
    /// together with the OPAQUE records it still gives no offline oracle.
    pub fn check_value(&self) -> [u8; 32] {
        let key = Zeroizing::new(self.0.serialize().to_vec());
        let mut mac = <Hmac<Sha256>>::new_from_slice(&key).unwrap_or_else(|_| {
            unreachable!("HMAC accepts keys of any length");
        });
        mac.update(CHECK_LABEL);
        mac.finalize().into_bytes().into()
    }

    /// Loads the seed from `path`; `Ok(None)` if there is no such file.
    pub fn load(path: &Path) -> Result<Option<Self>, SeedError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                check_private(path)?;
                Self::from_base64(&text, &path.display().to_string()).map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SeedError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Generates a seed into a new 0600 file at `path` (never overwrites).
    pub fn create(path: &Path) -> Result<Self, SeedError> {
        let io = |source| SeedError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let mut dir = std::fs::DirBuilder::new();
            dir.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt as _;
                dir.mode(0o700);
            }
            dir.create(parent).map_err(io)?;
        }
        let seed = Self::generate();
        let mut file = create_private(path).map_err(io)?;
        file.write_all(seed.to_base64().as_bytes()).map_err(io)?;
        file.write_all(b"\n").map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(seed)
    }
}

/// Loads the seed `source` names and checks it against the database.
///
/// * A seed file is created (0600) only when it is missing, the database
///   has no account and no seed was recorded for it; otherwise a missing
///   seed is [`SeedError::Missing`]. A systemd credential is never created.
/// * The first start on a database records the seed's check value; every
///   start compares its seed with it ([`SeedError::Mismatch`]), so an
///   instance with another seed never serves.
/// * A seed inside the data directory works but is warned about at every
///   start: one backup of that directory would be an offline oracle.
pub async fn open_seed(
    source: &SeedSource,
    store: &dyn Store,
    data_dir: &Path,
    now: i64,
) -> Result<OprfSeed, SeedError> {
    let mut created = None;
    let (seed, origin) = match source {
        SeedSource::Env(text) => (OprfSeed::from_base64(text, SEED_ENV)?, SEED_ENV.to_owned()),
        SeedSource::Credential(path) => match OprfSeed::load(path)? {
            Some(seed) => (seed, path.display().to_string()),
            None => {
                return Err(SeedError::Missing {
                    path: path.clone(),
                    why: "a systemd credential is never created (LoadCredential=oprf-seed:FILE)",
                });
            }
        },
        SeedSource::File(path) => {
            let seed = match OprfSeed::load(path)? {
                Some(seed) => seed,
                None if store.has_users().await? => {
                    return Err(SeedError::Missing {
                        path: path.clone(),
                        why: "the database already has accounts",
                    });
                }
                None if store.seed_check().await?.is_some() => {
                    return Err(SeedError::Missing {
                        path: path.clone(),
                        why: "the database was set up with a seed (another instance shares it)",
                    });
                }
                None => match OprfSeed::create(path) {
                    Ok(seed) => {
                        created = Some(path.clone());
                        seed
                    }
                    // Another process on this host created it just now.
                    Err(SeedError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        OprfSeed::load(path)?.ok_or_else(|| SeedError::Missing {
                            path: path.clone(),
                            why: "it vanished while being created",
                        })?
                    }
                    Err(e) => return Err(e),
                },
            };
            if path.starts_with(data_dir) {
                tracing::warn!(
                    file = %path.display(),
                    data_dir = %data_dir.display(),
                    "the OPRF seed is inside the data directory: one backup of that directory \
                     is an offline password oracle; move it out (docs/BROKER.md, \"The OPRF seed\")"
                );
            }
            (seed, path.display().to_string())
        }
    };
    let check = seed.check_value();
    let stored = store.init_seed_check(&check, now).await?;
    if !bool::from(stored.as_slice().ct_eq(&check[..])) {
        if let Some(path) = &created {
            // Ours lost the race to another instance's: leave no stray seed.
            let _ = std::fs::remove_file(path);
        }
        return Err(SeedError::Mismatch { origin });
    }
    if let Some(path) = &created {
        tracing::info!(
            file = %path.display(),
            "created a new OPRF seed: back it up, apart from the database"
        );
    }
    Ok(seed)
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
        assert!(OprfSeed::load(&path).unwrap().is_none());
        let a = OprfSeed::create(&path).unwrap();
        let b = OprfSeed::load(&path).unwrap().unwrap();
        assert_eq!(a.setup().serialize(), b.setup().serialize());
        assert_eq!(a.check_value(), b.check_value());
        assert_ne!(a.check_value(), OprfSeed::generate().check_value());
        assert!(OprfSeed::create(&path).is_err(), "never overwritten");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                OprfSeed::load(&path),
                Err(SeedError::Permissions { .. })
            ));
        }
    }

    #[test]
    fn malformed_seed_is_an_error() {
        assert!(OprfSeed::from_base64("AAAA", "test").is_err());
    }
}

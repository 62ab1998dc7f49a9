//! The stored session: one 0600 JSON file in the client's state directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use kluis_types::{Email, SessionId, SessionToken, UserId};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::AccountError;

/// What a logged-in client remembers between runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredSession {
    /// Broker base URL.
    pub broker_url: String,
    /// The account.
    pub user_id: UserId,
    /// Its address.
    pub email: Email,
    /// Public session ID.
    pub session_id: SessionId,
    /// Bearer token (Debug shows `<redacted>`).
    pub token: SessionToken,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

pub(crate) const SESSION_FILE: &str = "session.json";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AccountError + '_ {
    move |source| AccountError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename), mode 0600.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AccountError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp: PathBuf = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

impl StoredSession {
    pub(crate) fn load(dir: &Path) -> Result<Option<Self>, AccountError> {
        let path = dir.join(SESSION_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|_| AccountError::CorruptState { path })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AccountError::Io { path, source: e }),
        }
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<(), AccountError> {
        let path = dir.join(SESSION_FILE);
        let json = Zeroizing::new(
            serde_json::to_vec_pretty(self)
                .map_err(|_| AccountError::CorruptState { path: path.clone() })?,
        );
        write_private(&path, &json)
    }

    pub(crate) fn remove(dir: &Path) -> Result<(), AccountError> {
        let path = dir.join(SESSION_FILE);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(AccountError::Io { path, source: e }),
        }
    }
}

//! Two engines must never run on the same folder pair: an exclusive lock on
//! `.kluis-lock` in the plaintext folder (so two agents with different homes
//! also exclude each other) plus one per mirror in the data directory (so two
//! pairs cannot share a mirror). The OS drops the locks when the process dies.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::AgentError;

/// Held locks of one pair.
#[derive(Debug)]
pub struct PairLock {
    _files: Vec<File>,
}

fn take(path: &Path, what: &Path) -> Result<File, AgentError> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(AgentError::io("open lock", path))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(AgentError::Locked(what.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(AgentError::io("lock", path)(e)),
    }
}

impl PairLock {
    /// Lock both folders of a pair.
    pub fn acquire(plain: &Path, mirror: &Path, lock_dir: &Path) -> Result<PairLock, AgentError> {
        std::fs::create_dir_all(lock_dir).map_err(AgentError::io("create", lock_dir))?;
        let a = take(&plain.join(".kluis-lock"), plain)?;
        let canon = mirror
            .canonicalize()
            .unwrap_or_else(|_| PathBuf::from(mirror));
        let h = Sha256::digest(canon.to_string_lossy().as_bytes());
        let name: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
        let b = take(&lock_dir.join(format!("mirror-{name}.lock")), mirror)?;
        Ok(PairLock { _files: vec![a, b] })
    }
}

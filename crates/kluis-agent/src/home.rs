use std::path::{Path, PathBuf};

use crate::error::AgentError;

/// The directories Kluis uses. `KLUIS_HOME` puts everything in one directory
/// (like `GNUPGHOME`), so scripts and tests run isolated users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentHome {
    /// Configuration (`sync.json`).
    pub config: PathBuf,
    /// Data (identity, indexes).
    pub data: PathBuf,
    /// Runtime (the IPC socket).
    pub runtime: PathBuf,
}

impl AgentHome {
    /// From `KLUIS_HOME` or the platform directories.
    pub fn resolve() -> Result<Self, AgentError> {
        if let Some(dir) = std::env::var_os("KLUIS_HOME").filter(|d| !d.is_empty()) {
            return Ok(Self::in_dir(Path::new(&dir)));
        }
        let dirs =
            directories::ProjectDirs::from("org", "Kluis", "kluis").ok_or(AgentError::NoHome)?;
        let runtime = dirs
            .runtime_dir()
            .map_or_else(|| dirs.data_dir().join("run"), Path::to_path_buf);
        Ok(AgentHome {
            config: dirs.config_dir().to_path_buf(),
            data: dirs.data_dir().to_path_buf(),
            runtime,
        })
    }

    /// Everything in one directory.
    pub fn in_dir(dir: &Path) -> Self {
        AgentHome {
            config: dir.to_path_buf(),
            data: dir.to_path_buf(),
            runtime: dir.to_path_buf(),
        }
    }

    /// The folder-pair configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.config.join("sync.json")
    }

    /// The default identity file (same as the CLI's).
    pub fn identity_file(&self) -> PathBuf {
        self.data.join("identity.kluiskey")
    }

    /// The control endpoint: the Unix socket, or on Windows the file that
    /// holds the agent's named-pipe name (see [`crate::ipc`]).
    pub fn socket_path(&self) -> PathBuf {
        if cfg!(windows) {
            self.runtime.join("agent.pipe")
        } else {
            self.runtime.join("agent.sock")
        }
    }

    /// The index database of a pair.
    pub fn index_path(&self, pair_id: &str) -> PathBuf {
        self.data.join("sync").join(format!("{pair_id}.db"))
    }

    /// Directory for lock files.
    pub fn lock_dir(&self) -> PathBuf {
        self.data.join("sync")
    }
}

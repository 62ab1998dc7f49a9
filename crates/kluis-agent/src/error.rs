use std::path::PathBuf;

/// Errors of the agent library.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// An I/O error on a path.
    #[error("{op} {path}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// No home directory could be determined.
    #[error("cannot determine a home directory; set KLUIS_HOME")]
    NoHome,
    /// The configuration file is not valid.
    #[error("configuration {path} is invalid: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// Folder pair problems (overlap, unknown pair, missing folder).
    #[error("{0}")]
    Pair(String),
    /// Another engine already runs on this folder pair.
    #[error("another Kluis agent already syncs {0}")]
    Locked(PathBuf),
    /// The identity is locked; the request needs it unlocked.
    #[error("the Kluis agent is locked; unlock it first (kluis unlock)")]
    IdentityLocked,
    /// The identity could not be opened.
    #[error("cannot unlock the identity: {0}")]
    Identity(#[source] kluis_format::Error),
    /// The engine failed to start.
    #[error(transparent)]
    Sync(#[from] kluis_sync::SyncError),
    /// The IPC peer sent something we do not understand, or hung up.
    #[error("agent protocol: {0}")]
    Protocol(String),
    /// No agent is listening.
    #[error("no Kluis agent is running (socket {0})")]
    NotRunning(PathBuf),
    /// The agent answered with an error.
    #[error("{message}")]
    Remote {
        /// Stable code for the UI.
        code: String,
        /// Human sentence.
        message: String,
    },
    /// The organisation directory could not be asked (offline, signed
    /// out); the agent keeps what it learned before.
    #[error("{0}")]
    Directory(String),
    /// Not available on this platform.
    #[error("{0} is not supported on this platform yet")]
    Unsupported(&'static str),
}

impl AgentError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> AgentError {
        let path = path.into();
        move |source| AgentError::Io { op, path, source }
    }
}

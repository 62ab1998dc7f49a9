//! One error type for the faces: every failure of the client API, with a
//! stable [`Error::code`] for a UI (`{code, message}`) and the library's
//! own sentence as [`Error::message`].

use kluis_agent::AgentError;

use crate::account::DeviceAccountError;
use crate::share::ShareError;

/// A failure of the client API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The daemon (in-process or over IPC) said no.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The broker, the network or the client state said no.
    #[error(transparent)]
    Account(#[from] kluis_account::AccountError),
    /// This device's account or identity file.
    #[error(transparent)]
    Device(#[from] DeviceAccountError),
    /// Sharing a folder or file.
    #[error(transparent)]
    Share(#[from] ShareError),
}

impl Error {
    /// A stable code to branch on (and to translate), e.g.
    /// `wrong_password`, `login_failed`, `not_shared`.
    pub fn code(&self) -> &str {
        match self {
            Error::Agent(e) => match e {
                AgentError::Identity(kluis_format::Error::WrongPassword) => "wrong_password",
                AgentError::Identity(_) => "identity",
                AgentError::Remote { code, .. } if code == "wrong_passphrase" => "wrong_password",
                AgentError::Remote { code, .. } => code.as_str(),
                AgentError::Locked(_) => "already_running",
                AgentError::IdentityLocked => "locked",
                AgentError::NotRunning(_) => "agent_not_running",
                AgentError::Pair(_) => "pair",
                AgentError::Config { .. } => "config",
                AgentError::Io { .. } => "io",
                AgentError::Protocol(_) => "agent_protocol",
                AgentError::Unsupported(_) => "unsupported",
                _ => "failed",
            },
            Error::Account(kluis_account::AccountError::LoginFailed) => "login_failed",
            Error::Account(_) => "account",
            Error::Device(e) => e.code(),
            Error::Share(e) => e.code(),
        }
    }

    /// A sentence for people (English; a UI shows its translation of
    /// [`Error::code`] and this as detail).
    pub fn message(&self) -> String {
        match self {
            Error::Agent(AgentError::Remote { message, .. }) => message.clone(),
            other => other.to_string(),
        }
    }
}

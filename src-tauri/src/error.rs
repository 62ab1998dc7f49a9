//! What the UI sees when a command fails: a stable `code` to branch on and
//! a `message` for people. The UI translates known codes; the message is the
//! library's own sentence, shown as detail.

use kluis_agent::AgentError;
use serde::Serialize;

/// A failed command, as the UI receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct UiError {
    /// Stable code, e.g. `wrong_password`, `too_many_attempts`, `no_pair`.
    pub code: String,
    /// A sentence for people (English; the UI shows its translation of `code`).
    pub message: String,
}

impl UiError {
    /// A new error.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        UiError {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<AgentError> for UiError {
    fn from(e: AgentError) -> Self {
        let code = match &e {
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
        }
        .to_owned();
        let message = match e {
            AgentError::Remote { message, .. } => message,
            other => other.to_string(),
        };
        UiError { code, message }
    }
}

impl From<kluis_account::AccountError> for UiError {
    fn from(e: kluis_account::AccountError) -> Self {
        let code = match &e {
            kluis_account::AccountError::LoginFailed => "login_failed",
            _ => "account",
        };
        UiError::new(code, e.to_string())
    }
}

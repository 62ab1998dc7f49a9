//! One error type for the faces: every failure of the client API, with a
//! stable, typed [`Error::code`] for a UI (`{code, message}`) and the library's
//! own sentence as [`Error::message`].

use kluis_agent::AgentError;

use crate::ErrorCode;
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
    /// [`ErrorCode::WrongPassword`], [`ErrorCode::LoginFailed`],
    /// [`ErrorCode::NotShared`].
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Agent(e) => agent_code(e),
            Error::Account(kluis_account::AccountError::LoginFailed) => ErrorCode::LoginFailed,
            Error::Account(_) => ErrorCode::Account,
            Error::Device(e) => e.code(),
            Error::Share(e) => share_code(e),
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

/// The daemon's failures. Its IPC errors arrive as wire names
/// ([`AgentError::Remote`]); this is the one place they become codes.
fn agent_code(e: &AgentError) -> ErrorCode {
    match e {
        AgentError::Identity(kluis_format::Error::WrongPassword) => ErrorCode::WrongPassword,
        AgentError::Identity(_) => ErrorCode::Identity,
        AgentError::Remote { code, .. } => ErrorCode::from_name(code),
        AgentError::Locked(_) => ErrorCode::AlreadyRunning,
        AgentError::IdentityLocked => ErrorCode::Locked,
        AgentError::NotRunning(_) => ErrorCode::AgentNotRunning,
        AgentError::Pair(_) => ErrorCode::Pair,
        AgentError::Config { .. } => ErrorCode::Config,
        AgentError::Io { .. } => ErrorCode::Io,
        AgentError::Protocol(_) => ErrorCode::AgentProtocol,
        AgentError::Unsupported(_) => ErrorCode::Unsupported,
        _ => ErrorCode::Failed,
    }
}

/// Sharing's failures.
fn share_code(e: &ShareError) -> ErrorCode {
    match e {
        ShareError::Io { .. } => ErrorCode::Io,
        ShareError::Meta { .. } | ShareError::Format { .. } => ErrorCode::Damaged,
        ShareError::NotShared(_) => ErrorCode::NotShared,
        ShareError::NotAMirror(_) => ErrorCode::NotAMirror,
        ShareError::Policy(_) => ErrorCode::Policy,
        ShareError::LastMember(_) => ErrorCode::LastMember,
        ShareError::NotAMember(_) => ErrorCode::NotAMember,
        ShareError::Group(_) => ErrorCode::Group,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(code: &str) -> Error {
        Error::Agent(AgentError::Remote {
            code: code.into(),
            message: "the agent's sentence".into(),
        })
    }

    /// The agent's wire names become the same codes (and its sentence
    /// stays the message); a name this build does not know is `failed`.
    #[test]
    fn the_agents_wire_names_become_typed_codes() {
        assert_eq!(remote("wrong_passphrase").code(), ErrorCode::WrongPassword);
        assert_eq!(remote("unknown_pair").code(), ErrorCode::UnknownPair);
        assert_eq!(remote("locked").code(), ErrorCode::Locked);
        assert_eq!(remote("disk_on_fire").code(), ErrorCode::Failed);
        assert_eq!(remote("locked").message(), "the agent's sentence");
        assert_eq!(
            Error::Agent(AgentError::IdentityLocked).code(),
            ErrorCode::Locked
        );
    }

    #[test]
    fn share_and_account_failures_keep_their_names() {
        let e = Error::from(ShareError::LastMember("an@example.org".into()));
        assert_eq!(e.code(), "last_member");
        let e = Error::from(ShareError::NotShared("/m".into()));
        assert_eq!(e.code(), ErrorCode::NotShared);
        let e = Error::from(kluis_account::AccountError::LoginFailed);
        assert_eq!(e.code(), "login_failed");
        let e = Error::from(DeviceAccountError::BadInvite);
        assert_eq!(e.code(), ErrorCode::BadInvite);
    }
}

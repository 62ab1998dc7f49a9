//! The stable codes a failure of the client API carries
//! ([`crate::Error::code`]): typed, so that a face branches on a variant
//! rather than a string, and exported to the tray's TypeScript (with the
//! `specta` feature). The serialised names are the snake-case names the
//! UI has always received; its texts are keyed `error.<code>`, and the
//! agent's IPC errors carry the same names on the wire.

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// Every code a command can fail with. Serialised as the snake-case
        /// names the UI always received.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "specta", derive(specta::Type))]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code's name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)*
                }
            }

            /// The code the agent's IPC errors name `name` (their wire
            /// names, [`AgentError::Remote`](kluis_agent::AgentError::Remote));
            /// [`ErrorCode::Failed`] when this build does not know it.
            pub fn from_name(name: &str) -> ErrorCode {
                match name {
                    $($name => ErrorCode::$variant,)*
                    // The agent's endpoint says `wrong_passphrase`.
                    "wrong_passphrase" => ErrorCode::WrongPassword,
                    _ => ErrorCode::Failed,
                }
            }
        }
    };
}

error_codes! {
    /// The broker refused or failed an account operation.
    Account = "account",
    /// The account was disabled by an administrator.
    AccountDisabled = "account_disabled",
    /// An account with this address exists.
    AccountExists = "account_exists",
    /// No `kluis agent` answers.
    AgentNotRunning = "agent_not_running",
    /// The agent answered something unexpected.
    AgentProtocol = "agent_protocol",
    /// Another engine syncs these folders.
    AlreadyRunning = "already_running",
    /// The login item could not be changed.
    Autostart = "autostart",
    /// The invite cannot be read.
    BadInvite = "bad_invite",
    /// The organisation key cannot be read.
    BadOrgKey = "bad_org_key",
    /// A path outside the folder, or not a conflict copy.
    BadPath = "bad_path",
    /// An ignore rule is not valid.
    BadPattern = "bad_pattern",
    /// A request the app or the agent cannot parse.
    BadRequest = "bad_request",
    /// The configuration cannot be read or written.
    Config = "config",
    /// Damaged metadata or key file.
    Damaged = "damaged",
    /// The organisation directory failed.
    Directory = "directory",
    /// Anything else.
    Failed = "failed",
    /// The broker forbids it.
    Forbidden = "forbidden",
    /// A group operation failed.
    Group = "group",
    /// The identity cannot be used.
    Identity = "identity",
    /// This device already has an identity.
    IdentityExists = "identity_exists",
    /// The server address is not `https://`.
    InsecureUrl = "insecure_url",
    /// The agent could not serialise its answer.
    Internal = "internal",
    /// A field is not valid.
    InvalidInput = "invalid_input",
    /// A file could not be read or written.
    Io = "io",
    /// The key on the server does not match the account.
    KeyMismatch = "key_mismatch",
    /// A folder needs at least one member.
    LastMember = "last_member",
    /// The identity is locked.
    Locked = "locked",
    /// Wrong address or password at login.
    LoginFailed = "login_failed",
    /// Sharing needs a broker account.
    NoAccount = "no_account",
    /// Neither an invite nor a server and organisation key.
    NoBroker = "no_broker",
    /// No home folder.
    NoHome = "no_home",
    /// This device has no identity yet.
    NoIdentity = "no_identity",
    /// The file is not encrypted to this identity.
    NoMatchingRecipient = "no_matching_recipient",
    /// The folder pair no longer exists.
    NoSuchPair = "no_such_pair",
    /// That person is not a member of the folder.
    NotAMember = "not_a_member",
    /// Not a Kluis mirror folder.
    NotAMirror = "not_a_mirror",
    /// This device is not logged in.
    NotLoggedIn = "not_logged_in",
    /// The folder is not shared with you.
    NotShared = "not_shared",
    /// The password was never changed.
    NothingToUndo = "nothing_to_undo",
    /// A folder or file could not be opened.
    Open = "open",
    /// The folder pair cannot be used (or does not exist).
    Pair = "pair",
    /// The password is too short.
    PasswordTooShort = "password_too_short",
    /// The organisation's policy refuses the share.
    Policy = "policy",
    /// The previous password typed for an undo is wrong.
    PreviousPasswordRefused = "previous_password_refused",
    /// The organisation requires recovery, but its key is not available.
    RecoveryEnrolment = "recovery_enrolment",
    /// Sharing from the app needs its own engine.
    ShareNeedsAppEngine = "share_needs_app_engine",
    /// That colleague's key cannot be used.
    ShareRefused = "share_refused",
    /// A share is still running.
    ShareRunning = "share_running",
    /// Too many wrong passwords: wait.
    TooManyAttempts = "too_many_attempts",
    /// The agent knows no such pair.
    UnknownPair = "unknown_pair",
    /// The broker cannot be reached.
    Unreachable = "unreachable",
    /// Not supported on this platform.
    Unsupported = "unsupported",
    /// The password is too weak for the organisation.
    WeakPassword = "weak_password",
    /// The password is not right.
    WrongPassword = "wrong_password",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_their_names_and_parse_back() {
        for c in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::from(c.as_str())
            );
            assert_eq!(ErrorCode::from_name(c.as_str()), *c);
        }
        assert_eq!(
            ErrorCode::from_name("wrong_passphrase"),
            ErrorCode::WrongPassword
        );
        assert_eq!(ErrorCode::from_name("disk_on_fire"), ErrorCode::Failed);
    }

    /// Every code the agent's endpoint and `kluis_agent`'s `code()`
    /// functions send is one the UI has a text for, not the generic one.
    #[test]
    fn every_library_code_is_known() {
        let agent = [
            "wrong_passphrase",
            "locked",
            "no_matching_recipient",
            "identity",
            "unknown_pair",
            "bad_request",
            "directory",
            "failed",
            "internal",
        ];
        let account = [
            "login_failed",
            "unreachable",
            "insecure_url",
            "invalid_input",
            "weak_password",
            "recovery_enrolment",
            "account_disabled",
            "not_logged_in",
            "nothing_to_undo",
            "account_exists",
            "forbidden",
            "account",
            "no_account",
            "identity_exists",
            "password_too_short",
            "wrong_password",
            "key_mismatch",
            "previous_password_refused",
            "bad_org_key",
            "bad_invite",
            "damaged",
            "io",
        ];
        let share = [
            "io",
            "damaged",
            "not_shared",
            "not_a_mirror",
            "policy",
            "last_member",
            "not_a_member",
            "group",
        ];
        for name in agent.iter().chain(&account).chain(&share) {
            let c = ErrorCode::from_name(name);
            assert!(
                c != ErrorCode::Failed || *name == "failed",
                "{name} is unknown"
            );
        }
    }
}

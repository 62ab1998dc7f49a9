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

impl From<kluis_client::Error> for UiError {
    fn from(e: kluis_client::Error) -> Self {
        UiError {
            code: e.code().to_owned(),
            message: e.message(),
        }
    }
}

/// Every library error a command meets, through [`kluis_client::Error`]
/// (whose `code()` is the stable code the UI translates).
macro_rules! through_client_error {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for UiError {
            fn from(e: $t) -> Self {
                UiError::from(kluis_client::Error::from(e))
            }
        }
    )*};
}

through_client_error!(
    AgentError,
    kluis_client::AccountError,
    kluis_client::account::DeviceAccountError,
    kluis_client::share::ShareError,
);

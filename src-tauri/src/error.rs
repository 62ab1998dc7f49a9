//! What the UI sees when a command fails: a stable [`ErrorCode`] to branch
//! on and translate, and a `message` for logs. The UI shows its own
//! sentence for the code, in the user's language, never the message (the
//! libraries' English); the i18n test fails when a code lacks a text.

use kluis_agent::AgentError;
/// The codes, typed in the client API (which maps every library error and
/// the agent's wire names to one).
pub use kluis_client::ErrorCode;
use serde::Serialize;

/// A failed command, as the UI receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct UiError {
    /// What failed; the UI shows its translation.
    pub code: ErrorCode,
    /// The library's English, for logs (the UI does not show it).
    pub message: String,
}

impl UiError {
    /// A new error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        UiError {
            code,
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
        UiError::new(e.code(), e.message())
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

//! Validated identifiers and names.

use serde::{Deserialize, Serialize};

use crate::{ParseError, invalid};

/// An e-mail address, trimmed and lower-cased. It is the account name and the
/// OPAQUE credential identifier.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Longest accepted address (RFC 5321 path limit).
    pub const MAX_LEN: usize = 254;

    /// Normalises (trim, lower-case) and validates an address.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let text = text.trim().to_lowercase();
        if text.len() < 3 || text.len() > Self::MAX_LEN {
            return Err(invalid("email", "length must be 3..=254"));
        }
        if text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || crate::is_bidi_or_separator(c))
        {
            return Err(invalid(
                "email",
                "contains whitespace, control or bidirectional formatting characters",
            ));
        }
        let mut parts = text.split('@');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty() => {
                Ok(Self(text))
            }
            _ => Err(invalid("email", "must be local@domain")),
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}
impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's display name: 1 to 128 characters, none of them control or
/// bidirectional formatting characters, no leading or trailing whitespace
/// ([`crate::display_text_problem`]).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    /// Longest accepted name, in characters.
    pub const MAX_CHARS: usize = 128;

    /// Validates a display name. It is not trimmed: "ann " is refused, not
    /// silently made into "ann" (issue 18.4e).
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let count = text.chars().count();
        if count == 0 || count > Self::MAX_CHARS {
            return Err(invalid("display name", "length must be 1..=128 characters"));
        }
        if let Some(reason) = crate::display_text_problem(text) {
            return Err(invalid("display name", reason));
        }
        Ok(Self(text.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<DisplayName> for String {
    fn from(value: DisplayName) -> Self {
        value.0
    }
}
impl std::fmt::Display for DisplayName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! hex_id {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Builds an ID from 16 random bytes supplied by the caller.
            pub fn from_random_bytes(bytes: &[u8; 16]) -> Self {
                use std::fmt::Write as _;
                let mut text = String::with_capacity(32);
                for b in bytes {
                    // Writing to a String cannot fail.
                    let _ = write!(text, "{b:02x}");
                }
                Self(text)
            }

            /// Validates the text form: 32 lower-case hex digits.
            pub fn parse(text: &str) -> Result<Self, ParseError> {
                if text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(invalid($what, "expected 32 lower-case hex digits"))
                }
            }

            /// The text form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        #[cfg(feature = "openapi")]
        crate::schema::string_schema!(
            $name,
            concat!($what, ": 32 lower-case hex digits"),
            Some(32),
            Some(32),
            Some("^[0-9a-f]{32}$")
        );
    };
}

hex_id!(
    /// A user's stable identifier.
    UserId,
    "user id"
);
hex_id!(
    /// The public identifier of a session (not its bearer token).
    SessionId,
    "session id"
);
hex_id!(
    /// Identifies a login in progress between its two OPAQUE round trips.
    LoginId,
    "login id"
);
hex_id!(
    /// Identifies a key-recovery request.
    RequestId,
    "request id"
);

#[cfg(feature = "openapi")]
crate::schema::string_schema!(
    Email,
    "e-mail address (trimmed and lower-cased by the server)",
    Some(3),
    Some(254),
    None
);
#[cfg(feature = "openapi")]
crate::schema::string_schema!(
    DisplayName,
    "display name, 1 to 128 characters, no control characters",
    Some(1),
    Some(128),
    None
);

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    #[test]
    fn email_normalises_and_rejects_garbage() {
        assert_eq!(
            Email::parse("  Alice@Example.ORG ").unwrap().as_str(),
            "alice@example.org"
        );
        for bad in [
            "",
            "a",
            "no-at-sign",
            "a@b@c",
            "@x.org",
            "x@",
            "a b@c.d",
            "a\u{0}@b.c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
    }

    #[test]
    fn ids_are_32_hex() {
        let id = UserId::from_random_bytes(&[0xab; 16]);
        assert_eq!(id.as_str(), "ab".repeat(16));
        assert!(UserId::parse(&"AB".repeat(16)).is_err());
        assert!(UserId::parse("abc").is_err());
    }

    #[test]
    fn display_name_limits() {
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(129)).is_err());
        assert_eq!(DisplayName::parse("Alice").unwrap().as_str(), "Alice");
        for bad in [
            " Alice",
            "Alice ",
            "Al\u{202E}ice",
            "Al\u{2067}ice",
            "Al\u{7}ice",
        ] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?}");
            let json = serde_json::to_string(bad).unwrap();
            assert!(
                serde_json::from_str::<DisplayName>(&json).is_err(),
                "{bad:?}"
            );
        }
        assert!(Email::parse("ann\u{202E}@example.org").is_err());
    }
}

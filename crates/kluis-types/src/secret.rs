//! Bearer secrets: zeroized on drop, compared in constant time, never shown
//! by `Debug`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{ParseError, invalid};

macro_rules! bearer_secret {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$meta])*
        pub struct $name(Zeroizing<String>);

        impl $name {
            /// The text prefix every token of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Builds a token from fresh random bytes (the caller supplies the
            /// randomness; this crate has no RNG).
            pub fn from_random_bytes(bytes: &[u8; 32]) -> Self {
                let mut text = String::with_capacity(Self::PREFIX.len() + 43);
                text.push_str(Self::PREFIX);
                URL_SAFE_NO_PAD.encode_string(bytes, &mut text);
                Self(Zeroizing::new(text))
            }

            /// Parses and validates the text form.
            pub fn parse(text: &str) -> Result<Self, ParseError> {
                let rest = text
                    .strip_prefix(Self::PREFIX)
                    .ok_or_else(|| invalid($what, "wrong prefix"))?;
                let mut raw = Zeroizing::new([0u8; 33]);
                match URL_SAFE_NO_PAD.decode_slice(rest.as_bytes(), &mut raw[..]) {
                    Ok(32) => Ok(Self(Zeroizing::new(text.to_owned()))),
                    _ => Err(invalid($what, "expected 32 base64url bytes")),
                }
            }

            /// The secret text. Handle with care: never log it.
            pub fn expose(&self) -> &str {
                &self.0
            }

            /// Constant-time equality.
            pub fn ct_eq(&self, other: &Self) -> bool {
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }

        impl Clone for $name {
            fn clone(&self) -> Self {
                Self(Zeroizing::new(self.0.as_str().to_owned()))
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = Zeroizing::new(String::deserialize(d)?);
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        #[cfg(feature = "openapi")]
        crate::schema::string_schema!(
            $name,
            concat!($what, ": the prefix `", $prefix, "` followed by 32 base64url bytes"),
            Some(47),
            Some(64),
            None
        );
    };
}

bearer_secret!(
    /// A session bearer token. The broker stores only its SHA-256.
    SessionToken,
    "kst_",
    "session token"
);
bearer_secret!(
    /// A single-use registration invite. The broker stores only its SHA-256.
    InviteToken,
    "kit_",
    "invite token"
);
bearer_secret!(
    /// A recovery administrator's API token (`/v1/admin/…`). The broker
    /// stores only its SHA-256.
    AdminToken,
    "kat_",
    "admin token"
);
bearer_secret!(
    /// Proves, to the broker, that the caller made a given recovery request
    /// (user side of `/v1/recovery/…`). The broker stores only its SHA-256.
    RecoveryToken,
    "krt_",
    "recovery token"
);

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip_and_debug_redacts() {
        let t = SessionToken::from_random_bytes(&[7u8; 32]);
        assert!(t.expose().starts_with("kst_"));
        let again = SessionToken::parse(t.expose()).unwrap();
        assert!(t.ct_eq(&again));
        let dbg = format!("{t:?}");
        assert!(!dbg.contains(&t.expose()[4..]));
        assert_eq!(dbg, "SessionToken(<redacted>)");
    }

    #[test]
    fn token_rejects_wrong_prefix_and_length() {
        assert!(SessionToken::parse("kit_AAAA").is_err());
        assert!(SessionToken::parse("kst_AAAA").is_err());
        let invite = InviteToken::from_random_bytes(&[1u8; 32]);
        assert!(SessionToken::parse(invite.expose()).is_err());
        let other = SessionToken::from_random_bytes(&[8u8; 32]);
        let t = SessionToken::from_random_bytes(&[7u8; 32]);
        assert!(!t.ct_eq(&other));
    }
}

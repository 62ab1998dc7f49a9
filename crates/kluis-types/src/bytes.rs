//! Opaque byte strings that travel as standard base64 (RFC 4648 §4, padded).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! base64_bytes {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(Vec<u8>);

        impl $name {
            /// Wraps bytes that are already in their opaque form.
            pub fn new(bytes: Vec<u8>) -> Self {
                Self(bytes)
            }
            /// The opaque bytes.
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }
            /// The opaque bytes, by value.
            pub fn into_bytes(self) -> Vec<u8> {
                self.0
            }
            /// Number of opaque bytes.
            pub fn len(&self) -> usize {
                self.0.len()
            }
            /// Whether there are no bytes at all.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "(<{} bytes>)"), self.0.len())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&STANDARD.encode(&self.0))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                STANDARD
                    .decode(text.as_bytes())
                    .map(Self)
                    .map_err(|_| serde::de::Error::custom(concat!("invalid base64 in ", stringify!($name))))
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::schema::base64_schema()
            }
        }
        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

base64_bytes!(
    /// The secret identity sealed by the client under a key derived from its
    /// OPAQUE export key. The broker stores and returns it; it can never open it.
    EncryptedEscrow
);
base64_bytes!(
    /// One serialized OPAQUE protocol message (RFC 9807), opaque to this crate.
    OpaqueMessage
);
base64_bytes!(
    /// A detached Ed25519 signature (64 bytes).
    SignatureBytes
);
base64_bytes!(
    /// A group's secret keys, encrypted by a client to every member of the
    /// group (a Kluis file). The broker stores and returns it; it can never
    /// open it.
    EncryptedGroupSecret
);

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    #[test]
    fn escrow_round_trips_as_base64_and_debug_hides_bytes() {
        let e = EncryptedEscrow::new(vec![0xde, 0xad, 0xbe, 0xef]);
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, "\"3q2+7w==\"");
        let back: EncryptedEscrow = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        assert_eq!(format!("{e:?}"), "EncryptedEscrow(<4 bytes>)");
    }

    #[test]
    fn bad_base64_is_a_deserialize_error() {
        assert!(serde_json::from_str::<OpaqueMessage>("\"***\"").is_err());
        assert!(serde_json::from_str::<OpaqueMessage>("17").is_err());
    }
}

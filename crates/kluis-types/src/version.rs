//! Version numbers a client names in a request (escrow versions, group key
//! versions), bounded at the wire.
//!
//! The broker does arithmetic on them (`expected + 1`) and stores them in a
//! signed 64-bit column; a number near `i64::MAX` once made PostgreSQL
//! answer 500 ("bigint out of range") and overflowed on SQLite. Every such
//! field is parsed through [`deserialize_version`], so an absurd number is a
//! 400 at the boundary on both backends, before any handler or store runs.

use serde::{Deserialize, Deserializer, de::Error as _};

/// Highest version number a request may name: 2^53 - 1, the largest
/// integer every JSON implementation represents exactly. A version grows by
/// one per change; no account or group comes near it.
pub const MAX_VERSION: i64 = (1 << 53) - 1;

/// Whether `v` is a version number a request may name (`0..=MAX_VERSION`).
pub fn version_in_range(v: i64) -> bool {
    (0..=MAX_VERSION).contains(&v)
}

/// Serde `deserialize_with` for a request's version field: an integer in
/// `0..=MAX_VERSION`, anything else an error naming the range.
pub fn deserialize_version<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    // Through i128 so that u64::MAX is "out of range", not "not an i64".
    let v = i128::deserialize(d)?;
    i64::try_from(v)
        .ok()
        .filter(|v| version_in_range(*v))
        .ok_or_else(|| D::Error::custom(format!("a version number is 0..={MAX_VERSION}")))
}

/// A version number in a URL path (`…/escrow/versions/{version}`), bounded
/// like the body fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VersionNumber(pub i64);

impl<'de> Deserialize<'de> for VersionNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A path segment is text: parsed as i64 (a bigger number is already
        // an error), then bounded.
        let v = i64::deserialize(d)?;
        if version_in_range(v) {
            Ok(Self(v))
        } else {
            Err(D::Error::custom(format!(
                "a version number is 0..={MAX_VERSION}"
            )))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(deserialize_with = "deserialize_version")]
        v: i64,
    }

    fn parse(text: &str) -> Result<i64, serde_json::Error> {
        serde_json::from_str::<Probe>(&format!("{{\"v\":{text}}}")).map(|p| p.v)
    }

    #[test]
    fn versions_are_bounded() {
        assert_eq!(parse("0").unwrap(), 0);
        assert_eq!(parse("9007199254740991").unwrap(), MAX_VERSION);
        for bad in [
            "9007199254740992",
            "9223372036854775807",
            "18446744073709551615",
            "-1",
            "-9223372036854775808",
            "1.5",
            "\"1\"",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!(
            parse("9223372036854775807")
                .unwrap_err()
                .to_string()
                .contains("0..=9007199254740991")
        );
    }
}

//! The invite bundle an administrator hands to a new user.
//!
//! It carries the broker address, the single-use invite token, the
//! organisation public key and the organisation policy version in force
//! when it was made. The client pins the org key from here (or from its
//! configuration), never from the broker API alone, and refuses a policy
//! older than the invite's (issue 18.4c): a hostile broker cannot hand a
//! fresh device the unsigned built-in default once a signed policy exists.
//!
//! Text forms: `kluis-invite-v2:` + base64url(JSON), written since
//! `min_policy_version` exists and where it is required; `kluis-invite-v1:`
//! (older brokers) is still read, as `min_policy_version = 0` — what such an
//! invite always meant. A v1-only client refuses a v2 invite by its prefix
//! rather than silently ignoring the floor.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::{Email, InviteToken, OrgPublicKey, ParseError, invalid};

/// A decoded invite bundle.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Invite {
    /// Base URL of the broker, e.g. `https://kluis.example.org`.
    pub broker_url: String,
    /// The single-use token.
    pub token: InviteToken,
    /// The organisation key to pin.
    pub org_public_key: OrgPublicKey,
    /// If set, the invite may only register this address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    /// The organisation policy version in force when the invite was made:
    /// the joining device refuses any older policy, and so the unsigned
    /// version 0 once a signed one exists. Required in v2; 0 for v1.
    #[serde(default, deserialize_with = "crate::deserialize_version")]
    pub min_policy_version: i64,
}

/// The v2 form must say which policy version it requires.
#[derive(Deserialize)]
struct V2Fields {
    #[allow(dead_code, reason = "only its presence is checked")]
    min_policy_version: serde::de::IgnoredAny,
}

impl Invite {
    /// Prefix of the text form written now.
    pub const PREFIX: &'static str = "kluis-invite-v2:";
    /// Prefix of the older form, still read (`min_policy_version = 0`).
    pub const PREFIX_V1: &'static str = "kluis-invite-v1:";

    /// Text form: prefix + base64url(JSON). The text contains the token:
    /// treat it as a secret.
    pub fn encode(&self) -> Result<String, ParseError> {
        let json = serde_json::to_vec(self).map_err(|_| invalid("invite", "cannot encode"))?;
        Ok(format!("{}{}", Self::PREFIX, URL_SAFE_NO_PAD.encode(json)))
    }

    /// Parses the text form (v2, or v1 as `min_policy_version = 0`).
    pub fn decode(text: &str) -> Result<Self, ParseError> {
        let text = text.trim();
        let (rest, v2) = match text.strip_prefix(Self::PREFIX) {
            Some(rest) => (rest, true),
            None => (
                text.strip_prefix(Self::PREFIX_V1)
                    .ok_or_else(|| invalid("invite", "wrong prefix"))?,
                false,
            ),
        };
        let json = URL_SAFE_NO_PAD
            .decode(rest.as_bytes())
            .map_err(|_| invalid("invite", "bad base64url"))?;
        let json = zeroize::Zeroizing::new(json);
        if v2 {
            serde_json::from_slice::<V2Fields>(&json)
                .map_err(|_| invalid("invite", "v2 invite without min_policy_version"))?;
        }
        let invite: Self =
            serde_json::from_slice(&json).map_err(|_| invalid("invite", "bad contents"))?;
        if !v2 && invite.min_policy_version != 0 {
            return Err(invalid("invite", "a v1 invite carries no policy version"));
        }
        Ok(invite)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    #[test]
    fn invite_round_trip() {
        let inv = Invite {
            broker_url: "https://broker.example".into(),
            token: InviteToken::from_random_bytes(&[3u8; 32]),
            org_public_key: OrgPublicKey::from_bytes([4u8; 32]),
            email: None,
            min_policy_version: 3,
        };
        let text = inv.encode().unwrap();
        assert!(text.starts_with("kluis-invite-v2:"));
        let back = Invite::decode(&text).unwrap();
        assert!(back.token.ct_eq(&inv.token));
        assert_eq!(back.org_public_key, inv.org_public_key);
        assert_eq!(back.min_policy_version, 3);
        assert!(Invite::decode("kluis-invite-v1:!!").is_err());
    }

    fn text(prefix: &str, json: &serde_json::Value) -> String {
        format!("{prefix}{}", URL_SAFE_NO_PAD.encode(json.to_string()))
    }

    /// Issue 18.4c: v1 invites still read (floor 0); a v2 invite must
    /// carry a sane floor.
    #[test]
    fn old_invites_read_as_floor_zero_and_v2_needs_its_floor() {
        let inv = Invite {
            broker_url: "https://broker.example".into(),
            token: InviteToken::from_random_bytes(&[3u8; 32]),
            org_public_key: OrgPublicKey::from_bytes([4u8; 32]),
            email: None,
            min_policy_version: 0,
        };
        let mut json = serde_json::to_value(&inv).unwrap();
        json.as_object_mut().unwrap().remove("min_policy_version");
        let v1 = Invite::decode(&text(Invite::PREFIX_V1, &json)).unwrap();
        assert_eq!(v1.min_policy_version, 0);
        assert!(
            Invite::decode(&text(Invite::PREFIX, &json)).is_err(),
            "v2 without a floor"
        );
        json["min_policy_version"] = 2.into();
        assert!(
            Invite::decode(&text(Invite::PREFIX_V1, &json)).is_err(),
            "v1 with a floor"
        );
        assert_eq!(
            Invite::decode(&text(Invite::PREFIX, &json))
                .unwrap()
                .min_policy_version,
            2
        );
        for bad in [
            serde_json::json!(-1),
            serde_json::json!(u64::MAX),
            serde_json::json!("1"),
        ] {
            json["min_policy_version"] = bad;
            assert!(Invite::decode(&text(Invite::PREFIX, &json)).is_err());
        }
    }
}

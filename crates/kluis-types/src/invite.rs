//! The invite bundle an administrator hands to a new user.
//!
//! It carries the broker address, the single-use invite token and the
//! organisation public key. The client pins the org key from here (or from
//! its configuration), never from the broker API alone.

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
}

impl Invite {
    /// Prefix of the text form.
    pub const PREFIX: &'static str = "kluis-invite-v1:";

    /// Text form: prefix + base64url(JSON). The text contains the token:
    /// treat it as a secret.
    pub fn encode(&self) -> Result<String, ParseError> {
        let json = serde_json::to_vec(self).map_err(|_| invalid("invite", "cannot encode"))?;
        Ok(format!("{}{}", Self::PREFIX, URL_SAFE_NO_PAD.encode(json)))
    }

    /// Parses the text form.
    pub fn decode(text: &str) -> Result<Self, ParseError> {
        let rest = text
            .trim()
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| invalid("invite", "wrong prefix"))?;
        let json = URL_SAFE_NO_PAD
            .decode(rest.as_bytes())
            .map_err(|_| invalid("invite", "bad base64url"))?;
        let json = zeroize::Zeroizing::new(json);
        serde_json::from_slice(&json).map_err(|_| invalid("invite", "bad contents"))
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
        };
        let text = inv.encode().unwrap();
        let back = Invite::decode(&text).unwrap();
        assert!(back.token.ct_eq(&inv.token));
        assert_eq!(back.org_public_key, inv.org_public_key);
        assert!(Invite::decode("kluis-invite-v1:!!").is_err());
    }
}

//! Managing groups (docs/SHARING.md): create a group, add and remove
//! members, rotate its key. Each change seals the group secret
//! ([`GroupKeys`], the bytes: FORMAT.md §8.7) to the members, every key
//! verified through the directory; the broker stores it as an opaque blob.
//! Reading your groups' keys is the daemon's too:
//! [`kluis_agent::share::groups`].

use kluis_account::AccountClient;
use kluis_format::{Identity, Recipient};
use kluis_types::OrgPolicy;

pub use kluis_agent::share::groups::{
    GroupError, GroupKeys, MAX_VERSIONS, fetch_keys, my_group_keys,
};

/// Create group `name` with a fresh key, you as its first member.
pub async fn create(
    client: &AccountClient,
    identity: &Identity,
    name: &str,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Recipient, GroupError> {
    let key = Identity::generate(rng);
    let public = key.recipient().clone();
    let keys = GroupKeys {
        keys: vec![(1, key)],
    };
    let blob = keys
        .seal(&[identity.recipient().clone()], rng)
        .map_err(|e| GroupError::Secret {
            group: name.into(),
            reason: e.to_string(),
        })?;
    client.create_group(name, &public.to_string(), blob).await?;
    Ok(public)
}

/// Add `email` (verified through the directory) to group `name`: one more
/// stanza on the group secret; no file changes.
pub async fn add_member(
    client: &AccountClient,
    identity: &Identity,
    name: &str,
    email: &str,
    policy: Option<&OrgPolicy>,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<(), GroupError> {
    let who = super::resolve::resolve(client, email).await?;
    if let Some(p) = policy {
        let e = kluis_types::Email::parse(email).map_err(kluis_account::AccountError::from)?;
        p.check_share(None, &e, &[name.to_owned()])?;
    }
    let s = client.group_secret(name).await?;
    let mut out = Vec::new();
    kluis_format::rewrite_header(s.secret.as_bytes(), &mut out, identity, |h, fk| {
        let kem = h.reshare_kem();
        h.add_recipient(fk, &who.member.recipient, kem, rng)
    })
    .map_err(|e| GroupError::Secret {
        group: name.into(),
        reason: e.to_string(),
    })?;
    client
        .add_group_member_at(name, email, out, s.key_version, Some(s.secret_version))
        .await?;
    Ok(())
}

/// Remove `email` from group `name`: a new group key, the secret (new key
/// and all older ones) encrypted to the remaining members, each verified
/// through the directory. Returns the new public key, which needs an org
/// certificate before anyone shares with it.
pub async fn remove_member(
    client: &AccountClient,
    identity: &Identity,
    name: &str,
    email: &str,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Recipient, GroupError> {
    let (public, blob, from) = next_key(client, identity, name, Some(email), rng).await?;
    client
        .remove_group_member(name, email, &public.to_string(), blob, from)
        .await?;
    Ok(public)
}

/// Rotate the key of group `name` without a membership change (group
/// administrators; due after a member left): a new key, the secret (new
/// key and all older ones) encrypted to the members, each verified through
/// the directory. Returns the new public key, which needs an org
/// certificate before anyone shares with it.
pub async fn rotate(
    client: &AccountClient,
    identity: &Identity,
    name: &str,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Recipient, GroupError> {
    let (public, blob, from) = next_key(client, identity, name, None, rng).await?;
    client
        .rotate_group_key(name, &public.to_string(), blob, from)
        .await?;
    Ok(public)
}

/// A new key for group `name` and the secret holding it and every older
/// key, sealed to the members but `without`. Returns (new key, sealed
/// secret, key version it was made from).
async fn next_key(
    client: &AccountClient,
    identity: &Identity,
    name: &str,
    without: Option<&str>,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<(Recipient, Vec<u8>, i64), GroupError> {
    let info = client.group(name).await?;
    let s = client.group_secret(name).await?;
    let mut keys = GroupKeys::open(name, s.secret.as_bytes(), identity)?;
    if keys.keys.len() >= MAX_VERSIONS {
        return Err(GroupError::Secret {
            group: name.into(),
            reason: "too many key versions; create a new group".into(),
        });
    }
    let mut members = Vec::new();
    for m in info.members.iter().filter(|m| Some(m.as_str()) != without) {
        members.push(
            super::resolve::resolve(client, m.as_str())
                .await?
                .member
                .recipient,
        );
    }
    let next = keys.keys.last().map_or(1, |(v, _)| v + 1);
    let key = Identity::generate(rng);
    let public = key.recipient().clone();
    keys.keys.push((next, key));
    let blob = keys.seal(&members, rng).map_err(|e| GroupError::Secret {
        group: name.into(),
        reason: e.to_string(),
    })?;
    Ok((public, blob, s.key_version))
}

//! Group keys, client side (docs/SHARING.md; the bytes: FORMAT.md §8.7). A
//! group is an ordinary Kluis identity generated here. Its secret — every key version, so members keep
//! reading files from before a rotation — is a Kluis file encrypted to the
//! members, which the broker stores as an opaque blob:
//!
//! ```text
//! magic    8   "KLSGRPK1"
//! count    2   u16 big-endian, 1..=64 key versions
//! entry*       version u32 big-endian, then 64 bytes of identity secret
//!              (oldest first, versions strictly increasing from 1; the
//!              last one is the current key)
//! ```
//!
//! A copy of that file travels with every folder shared with the group
//! (`.kluis-groups/` in the mirror, [`super::group_files`]), so members can
//! open the folder without the broker.
//!
//! Here: the file itself ([`GroupKeys`]) and fetching your groups' keys,
//! which the daemon does at every directory refresh. Creating a group and
//! changing its members is `kluis_client::share::groups`: adding a member
//! adds one stanza to that file's header (no new key, no file touched);
//! removing one generates a new key and encrypts the whole list to the
//! remaining members only.

use std::io::Read;

use kluis_account::AccountClient;
use kluis_format::{EncryptOptions, IDENTITY_SECRET_LEN, Identity, Metadata, Recipient};
use zeroize::Zeroizing;

use super::resolve::ResolveError;

const MAGIC: &[u8; 8] = b"KLSGRPK1";
/// The most key versions one group secret holds.
pub const MAX_VERSIONS: usize = 64;

/// Group operations that failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// Talking to the broker failed.
    #[error(transparent)]
    Account(#[from] kluis_account::AccountError),
    /// A member's key could not be verified.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The group secret did not open or is malformed.
    #[error("the group secret of {group} cannot be opened: {reason}")]
    Secret {
        /// The group.
        group: String,
        /// Why.
        reason: String,
    },
    /// The policy forbids it.
    #[error(transparent)]
    Policy(#[from] kluis_types::PolicyViolation),
}

/// Every key version of a group, oldest first.
pub struct GroupKeys {
    /// (version, key).
    pub keys: Vec<(u32, Identity)>,
}

impl std::fmt::Debug for GroupKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupKeys")
            .field("versions", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl GroupKeys {
    /// The decrypted group-key file (layout above), which
    /// [`GroupKeys::seal`] encrypts. It holds every secret key.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(10 + self.keys.len() * 68));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.keys.len() as u16).to_be_bytes());
        for (v, k) in &self.keys {
            out.extend_from_slice(&v.to_be_bytes());
            out.extend_from_slice(&k.to_secret_bytes()[..]);
        }
        out
    }

    /// Parse a decrypted group-key file (layout above), as
    /// [`GroupKeys::open`] does after decrypting; the error says what is
    /// wrong. The file comes from the broker or a mirror's `.kluis-groups/`,
    /// so any bytes must parse or fail cleanly; `fuzz/` checks that.
    pub fn decode(b: &[u8]) -> Result<Self, &'static str> {
        if b.len() < 10 || &b[..8] != MAGIC {
            return Err("not a group secret (bad magic)");
        }
        let n = usize::from(u16::from_be_bytes([b[8], b[9]]));
        if n == 0 || n > MAX_VERSIONS {
            return Err("key count out of range");
        }
        let body = &b[10..];
        if body.len() != n * (4 + IDENTITY_SECRET_LEN) {
            return Err("wrong length");
        }
        let mut keys: Vec<(u32, Identity)> = Vec::with_capacity(n);
        for e in body.chunks_exact(4 + IDENTITY_SECRET_LEN) {
            let v = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            // FORMAT.md §8.7: versions start at 1 and strictly increase.
            if v <= keys.last().map_or(0, |(p, _)| *p) {
                return Err("key versions out of order");
            }
            let k = Identity::from_secret_bytes(&e[4..]).map_err(|_| "invalid key")?;
            keys.push((v, k));
        }
        Ok(GroupKeys { keys })
    }

    /// The current key.
    pub fn current(&self) -> Option<&Identity> {
        self.keys.last().map(|(_, k)| k)
    }

    /// Seal to `members`.
    pub fn seal(
        &self,
        members: &[Recipient],
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Vec<u8>, kluis_format::Error> {
        let plain = self.encode();
        let mut out = Vec::new();
        let meta = Metadata {
            name: Some(".kluis-group".into()),
            size: Some(plain.len() as u64),
            ..Metadata::default()
        };
        kluis_format::encrypt(
            &plain[..],
            &mut out,
            members,
            &meta,
            EncryptOptions::default(),
            rng,
        )?;
        Ok(out)
    }

    /// Open with your identity.
    pub fn open(group: &str, bytes: &[u8], identity: &Identity) -> Result<Self, GroupError> {
        let err = |reason: String| GroupError::Secret {
            group: group.to_owned(),
            reason,
        };
        let mut d = kluis_format::Decryptor::new(bytes, identity).map_err(|e| match e {
            kluis_format::Error::NoMatchingRecipient => {
                err("it is not encrypted to you (not a member)".into())
            }
            e => err(e.to_string()),
        })?;
        let mut plain = Zeroizing::new(Vec::new());
        d.read_to_end(&mut plain).map_err(|e| err(e.to_string()))?;
        Self::decode(&plain).map_err(|r| err(r.into()))
    }
}

/// How many older versions of a group secret [`fetch_keys`] tries when
/// the latest one does not open.
const MAX_FALLBACK_VERSIONS: i64 = 64;

/// Your keys of group `name` (all versions), fetched from the broker.
///
/// The broker keeps every version of the secret (docs/SHARING.md). When
/// the latest one does not open for you — damaged, or written without
/// you — the newest older version that does is used, so files encrypted
/// to the keys it holds stay readable; the error of the latest version is
/// returned when none opens.
pub async fn fetch_keys(
    client: &AccountClient,
    identity: &Identity,
    name: &str,
) -> Result<GroupKeys, GroupError> {
    let s = client.group_secret(name).await?;
    let latest = match GroupKeys::open(name, s.secret.as_bytes(), identity) {
        Ok(keys) => return Ok(keys),
        Err(e) => e,
    };
    let oldest = (s.secret_version - MAX_FALLBACK_VERSIONS).max(1);
    for v in (oldest..s.secret_version).rev() {
        let Ok(old) = client.group_secret_version(name, v).await else {
            continue;
        };
        if let Ok(keys) = GroupKeys::open(name, old.secret.as_bytes(), identity) {
            return Ok(keys);
        }
    }
    Err(latest)
}

/// The keys of every group you are a member of (for the sync engine and
/// for opening folders shared with a group).
pub async fn my_group_keys(
    client: &AccountClient,
    identity: &Identity,
    me: &str,
) -> Result<Vec<Identity>, GroupError> {
    let mut out = Vec::new();
    for g in client.list_groups().await? {
        if g.members.iter().any(|m| m.as_str() == me) {
            out.extend(
                fetch_keys(client, identity, g.name.as_str())
                    .await?
                    .keys
                    .into_iter()
                    .map(|(_, k)| k),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frozen group key file of FORMAT.md §8.7 opens for Bob, with the
    /// versions and key ids its `.expect` lists.
    #[test]
    fn frozen_group_key_file() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/frozen");
        let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
        let bob = kluis_format::open_identity(&read("bob.key"), &read("bob.passphrase")).unwrap();
        let keys = GroupKeys::open("frozen", &read("group-keys.kluis"), &bob).unwrap();
        let expect = String::from_utf8(read("group-keys.expect")).unwrap();
        let field = |k: &str| {
            expect
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .unwrap()
                .to_owned()
        };
        let versions: Vec<String> = keys.keys.iter().map(|(v, _)| v.to_string()).collect();
        assert_eq!(versions.join(" "), field("group-versions: "));
        let ids: Vec<String> = keys
            .keys
            .iter()
            .map(|(_, k)| {
                k.recipient()
                    .fingerprint()
                    .key_id()
                    .0
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            })
            .collect();
        assert_eq!(ids.join(" "), field("group-key-ids: "));
    }

    #[test]
    fn group_secret_round_trip_and_strictness() {
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let alice = Identity::generate(&mut rng);
        let carol = Identity::generate(&mut rng);
        let keys = GroupKeys {
            keys: vec![
                (1, Identity::generate(&mut rng)),
                (2, Identity::generate(&mut rng)),
            ],
        };
        let blob = keys.seal(&[alice.recipient().clone()], &mut rng).unwrap();
        let back = GroupKeys::open("g", &blob, &alice).unwrap();
        assert_eq!(back.keys.len(), 2);
        assert_eq!(
            back.current().unwrap().recipient(),
            keys.current().unwrap().recipient()
        );
        assert!(matches!(
            GroupKeys::open("g", &blob, &carol),
            Err(GroupError::Secret { .. })
        ));
        let enc = keys.encode();
        assert!(GroupKeys::decode(&enc[..enc.len() - 1]).is_err());
        let mut bad = enc.to_vec();
        bad[0] = b'X';
        assert!(GroupKeys::decode(&bad).is_err());
        // Versions must start at 1 or more and strictly increase.
        let mut bad = enc.to_vec();
        bad[10 + 68..10 + 72].copy_from_slice(&1u32.to_be_bytes());
        assert!(GroupKeys::decode(&bad).is_err());
        let mut bad = enc.to_vec();
        bad[10..14].copy_from_slice(&0u32.to_be_bytes());
        assert!(GroupKeys::decode(&bad).is_err());
    }
}

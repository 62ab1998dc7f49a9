//! Adds the frozen vector `group-keys`: a group key file (FORMAT.md §8.7)
//! of two key versions, encrypted to the frozen identity Bob. The two group
//! secrets are fixed (SHA-512 of a label), so the `.expect` can list each
//! version's key id; the file itself is random (HPKE) and never
//! regenerated once committed.
//!
//! Usage: cargo run -p kluis-agent --example make_group_vector -- tests/vectors/frozen
#![allow(clippy::unwrap_used, reason = "one-off generator")]

use std::path::Path;

use kluis_agent::share::groups::GroupKeys;
use kluis_format::{Identity, open_identity};
use sha2::{Digest, Sha512};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: make_group_vector DIR");
    let dir = Path::new(&dir);
    let bob = open_identity(
        &std::fs::read(dir.join("bob.key")).unwrap(),
        &std::fs::read(dir.join("bob.passphrase")).unwrap(),
    )
    .unwrap();
    let secret = |v: u32| Sha512::digest(format!("kluis frozen group key version {v}"));
    let keys = GroupKeys {
        keys: [1u32, 2]
            .into_iter()
            .map(|v| (v, Identity::from_secret_bytes(&secret(v)).unwrap()))
            .collect(),
    };
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let file = keys.seal(&[bob.recipient().clone()], &mut rng).unwrap();
    std::fs::write(dir.join("group-keys.kluis"), &file).unwrap();
    let mut plain = b"KLSGRPK1".to_vec();
    plain.extend_from_slice(&2u16.to_be_bytes());
    for (v, k) in &keys.keys {
        plain.extend_from_slice(&v.to_be_bytes());
        plain.extend_from_slice(&k.to_secret_bytes()[..]);
    }
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let ids: Vec<String> = keys
        .keys
        .iter()
        .map(|(_, k)| hex(&k.recipient().fingerprint().key_id().0))
        .collect();
    std::fs::write(
        dir.join("group-keys.expect"),
        format!(
            "identity: bob\nexpect: ok\nlength: {}\nsha256: {}\nname: .kluis-group\ngroup-versions: 1 2\ngroup-key-ids: {}\n",
            plain.len(),
            hex(&sha2::Sha256::digest(&plain)),
            ids.join(" ")
        ),
    )
    .unwrap();
}

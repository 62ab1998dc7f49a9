//! Encrypted names (FORMAT.md §8.3–8.5). The first input byte selects:
//!
//! - 0: the rest is a mirror component as a sync client may leave it:
//!   splitting off a sync client's suffix and decrypting never panic, and
//!   whatever decrypts is a name this folder could have written;
//! - 1: the rest is a plaintext name: encrypting it and decrypting the
//!   result gives it back, and a long name is hashed;
//! - 2: the rest is a plaintext name encrypted with the folder's key by
//!   another client (any bytes, as a folder member can write them): it must
//!   decrypt only to a name this folder could have written, never to `..`,
//!   `a/b` or an empty name, which would place files outside the folder.
#![no_main]

use aes_siv::KeyInit;
use aes_siv::siv::Aes256Siv;
use kluis_sync::names::{self, Encoded, NameCipher};
use libfuzzer_sys::fuzz_target;

const FOLDER_ID: [u8; 16] = [7; 16];
const NAME_SECRET: [u8; 32] = [9; 32];

fn cipher() -> NameCipher {
    NameCipher::new(FOLDER_ID, &NAME_SECRET)
}

/// `name` decrypted from the mirror is one this folder writes: it encrypts
/// back to `stem`.
fn check_decrypted(c: &NameCipher, stem: &str, name: &str) {
    match c.encrypt_component(name) {
        Ok(Encoded::Direct(s)) => assert_eq!(s, stem, "{name:?} does not encrypt back"),
        Ok(Encoded::Hashed { ct_b32, .. }) => assert_eq!(ct_b32, stem),
        Err(e) => panic!("decrypted a name this folder cannot write: {name:?} ({e})"),
    }
}

/// FORMAT.md §8.3 with the folder's key, for any plaintext bytes (what
/// another client can write).
fn foreign_encrypt(plain: &[u8]) -> String {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(&FOLDER_ID), &NAME_SECRET);
    let mut key = [0u8; 64];
    hk.expand(b"kluis/names/v1", &mut key).expect("64 bytes");
    let pad = 16 - plain.len() % 16;
    let mut padded = plain.to_vec();
    padded.extend(std::iter::repeat_n(pad as u8, pad));
    let ct = Aes256Siv::new_from_slice(&key)
        .expect("key")
        .encrypt([&b"kluis/name/v1"[..], &FOLDER_ID[..]], &padded)
        .expect("siv");
    let mut spec = data_encoding::Specification::new();
    spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
    spec.encoding().expect("alphabet").encode(&ct)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let c = cipher();
    match mode % 3 {
        0 => {
            let Ok(component) = std::str::from_utf8(rest) else {
                return;
            };
            let base = component
                .strip_suffix(names::FILE_SUFFIX)
                .unwrap_or(component);
            let (stem, extra) = names::split_sync_suffix(base);
            assert_eq!(format!("{stem}{extra}"), base);
            let _ = NameCipher::is_hashed(stem);
            if let Ok(name) = c.decrypt_b32(stem) {
                check_decrypted(&c, stem, &name);
            }
        }
        1 => {
            let Ok(name) = std::str::from_utf8(rest) else {
                return;
            };
            match c.encrypt_component(name) {
                Ok(Encoded::Direct(s)) => {
                    assert!(s.len() <= names::MAX_DIRECT_CHARS);
                    assert_eq!(names::split_sync_suffix(&s), (&s[..], ""));
                    assert_eq!(c.decrypt_b32(&s).expect("direct name decrypts"), name);
                }
                Ok(Encoded::Hashed { name: h, ct_b32 }) => {
                    assert!(NameCipher::is_hashed(&h));
                    assert_eq!(c.decrypt_b32(&ct_b32).expect("hashed name decrypts"), name);
                }
                Err(_) => {}
            }
        }
        _ => {
            let stem = foreign_encrypt(rest);
            if let Ok(name) = c.decrypt_b32(&stem) {
                check_decrypted(&c, &stem, &name);
            }
        }
    }
});

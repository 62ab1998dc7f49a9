//! Ciphertext file names. docs/FORMAT.md §8 is the normative description;
//! this module implements it.
//!
//! Every plaintext path component is encrypted on its own with AES-SIV
//! (RFC 5297, AES-256, deterministic): the same name in the same mirror always
//! gives the same ciphertext name, on every device, so a file created on two
//! devices collides (and becomes a conflict) instead of duplicating.
//!
//! ```text
//! name_key  = HKDF-SHA256(salt = folder_id, ikm = name_secret, info = "kluis/names/v1", L = 64)
//! padded    = name || n bytes of value n, 1 <= n <= 16, to a multiple of 16
//! ct        = AES-SIV-256(name_key, AD = ["kluis/name/v1", folder_id], padded)   (16-byte tag || padded)
//! direct    = base32lower_nopad(ct)                       if at most 154 characters
//! hashed    = "h" || base32lower_nopad(SHA-256("kluis/longname/v1" || ct))  otherwise (53 characters)
//! file      = (direct | hashed) || ".kls"      directory = (direct | hashed)
//! ```
//!
//! Hashed file names keep the real name in the Kluis header metadata; hashed
//! directories keep `base32(ct)` in a `.kluis-name` marker file inside.
//! The alphabet `a-z2-7` is the same on case-insensitive file systems and
//! holds no character that Windows or OneDrive forbid.

use aes_siv::KeyInit;
use aes_siv::siv::Aes256Siv;
use data_encoding::{Encoding, Specification};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::NameError;

/// Suffix of encrypted files in the mirror.
pub const FILE_SUFFIX: &str = ".kls";
/// Marker inside a hashed directory that holds its encrypted full name.
pub const DIR_NAME_MARKER: &str = ".kluis-name";
/// Longest direct (un-hashed) encoded component, in characters.
pub const MAX_DIRECT_CHARS: usize = 154;
/// Longest plaintext component accepted (bytes), as in the file metadata.
pub const MAX_NAME_BYTES: usize = 1024;

const AD_LABEL: &[u8] = b"kluis/name/v1";
const KDF_INFO: &[u8] = b"kluis/names/v1";
const LONG_LABEL: &[u8] = b"kluis/longname/v1";
const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz234567";

/// Whether `b` is one of ALPHABET's characters (`a`–`z`, `2`–`7`).
fn in_alphabet(b: u8) -> bool {
    b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)
}

/// Whether `name` is one plaintext path component (FORMAT.md §8.3): 1 to
/// [`MAX_NAME_BYTES`] bytes, no `/` or NUL, not `.` or `..`; on Windows
/// also no `\` or `:`, which would make a path of it there.
fn is_component(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.contains(['/', '\0'])
        && name != "."
        && name != ".."
        && !(cfg!(windows) && name.contains(['\\', ':']))
}

fn base32() -> Encoding {
    let mut spec = Specification::new();
    spec.symbols.push_str(ALPHABET);
    // The symbols are a valid 32-character alphabet; this cannot fail.
    spec.encoding()
        .unwrap_or_else(|_| data_encoding::BASE32_NOPAD.clone())
}

/// How a component is stored in the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoded {
    /// The full encrypted name is the component.
    Direct(String),
    /// The component is a hash; `ct_b32` is the encrypted name to keep in the
    /// header metadata (files) or the directory marker (directories).
    Hashed { name: String, ct_b32: String },
}

impl Encoded {
    /// The component as it appears on disk (without `.kls`).
    pub fn stem(&self) -> &str {
        match self {
            Encoded::Direct(s) => s,
            Encoded::Hashed { name, .. } => name,
        }
    }
}

/// The per-mirror name cipher.
pub struct NameCipher {
    key: Zeroizing<[u8; 64]>,
    folder_id: [u8; 16],
    b32: Encoding,
}

impl std::fmt::Debug for NameCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameCipher").finish_non_exhaustive()
    }
}

impl NameCipher {
    /// Derive the name key from the folder's name secret.
    pub fn new(folder_id: [u8; 16], name_secret: &[u8; 32]) -> Self {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(&folder_id), name_secret);
        let mut key = Zeroizing::new([0u8; 64]);
        // 64 bytes is far below HKDF-SHA256's 8160-byte limit.
        let _ = hk.expand(KDF_INFO, &mut key[..]);
        NameCipher {
            key,
            folder_id,
            b32: base32(),
        }
    }

    fn siv(&self) -> Result<Aes256Siv, NameError> {
        Aes256Siv::new_from_slice(&self.key[..]).map_err(|_| NameError::Key)
    }

    /// Encrypt one plaintext component.
    pub fn encrypt_component(&self, name: &str) -> Result<Encoded, NameError> {
        if !is_component(name) {
            return Err(NameError::InvalidPlain(name.to_owned()));
        }
        let pad = 16 - name.len() % 16;
        let mut padded = Zeroizing::new(Vec::with_capacity(name.len() + pad));
        padded.extend_from_slice(name.as_bytes());
        padded.extend(std::iter::repeat_n(pad as u8, pad));
        let ct = self
            .siv()?
            .encrypt([AD_LABEL, &self.folder_id[..]], &padded)
            .map_err(|_| NameError::Key)?;
        let direct = self.b32.encode(&ct);
        if direct.len() <= MAX_DIRECT_CHARS {
            return Ok(Encoded::Direct(direct));
        }
        let mut h = Sha256::new();
        h.update(LONG_LABEL);
        h.update(&ct);
        let name = format!("h{}", self.b32.encode(&h.finalize()));
        Ok(Encoded::Hashed {
            name,
            ct_b32: direct,
        })
    }

    /// Decrypt a direct component (base32 of the SIV output).
    pub fn decrypt_b32(&self, enc: &str) -> Result<String, NameError> {
        let ct = self
            .b32
            .decode(enc.as_bytes())
            .map_err(|_| NameError::NotEncrypted(enc.to_owned()))?;
        let padded = Zeroizing::new(
            self.siv()?
                .decrypt([AD_LABEL, &self.folder_id[..]], &ct)
                .map_err(|_| NameError::NotEncrypted(enc.to_owned()))?,
        );
        let pad = usize::from(*padded.last().ok_or(NameError::Padding)?);
        if pad == 0 || pad > 16 || pad > padded.len() {
            return Err(NameError::Padding);
        }
        let (body, tail) = padded.split_at(padded.len() - pad);
        if tail.iter().any(|&b| usize::from(b) != pad) {
            return Err(NameError::Padding);
        }
        let s = std::str::from_utf8(body).map_err(|_| NameError::Padding)?;
        // Whoever holds the folder's name key (every member) can encrypt any
        // bytes: `..`, `a/b` or `` would put a file outside the folder or
        // somewhere else in it when joined to a local path.
        if !is_component(s) {
            return Err(NameError::NotEncrypted(enc.to_owned()));
        }
        Ok(s.to_owned())
    }

    /// Whether `stem` is the hashed form.
    pub fn is_hashed(stem: &str) -> bool {
        stem.len() == 53 && stem.starts_with('h')
    }

    /// Encrypt a '/'-separated plaintext path; files get `.kls` on the last
    /// component.
    pub fn encrypt_path(&self, path: &str, is_file: bool) -> Result<String, NameError> {
        let mut out = String::with_capacity(path.len() * 2);
        let parts: Vec<&str> = path.split('/').collect();
        for (i, comp) in parts.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            out.push_str(self.encrypt_component(comp)?.stem());
            if is_file && i + 1 == parts.len() {
                out.push_str(FILE_SUFFIX);
            }
        }
        Ok(out)
    }
}

/// Split a mirror component into (stem, extra) where `stem` is the longest
/// prefix in the base32 alphabet and `extra` what a sync client appended
/// ("…(conflicted copy 2024-05-01)", "-LAPTOP-2", " (1)"). `.kls` is removed
/// first for files.
pub fn split_sync_suffix(component: &str) -> (&str, &str) {
    // Every character of ALPHABET is ASCII, so the first byte outside it
    // is on a character boundary.
    let end = component
        .bytes()
        .position(|b| !in_alphabet(b))
        .unwrap_or(component.len());
    component.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> NameCipher {
        NameCipher::new([7; 16], &[9; 32])
    }

    #[test]
    fn the_byte_test_is_the_alphabet() {
        for b in 0..=255u8 {
            assert_eq!(in_alphabet(b), ALPHABET.as_bytes().contains(&b), "{b}");
        }
    }

    #[test]
    fn round_trip_and_stable() {
        let c = cipher();
        for name in ["a", "Report 2024.docx", "ünïcødé ✓", &"x".repeat(79)] {
            let e = c.encrypt_component(name).unwrap();
            assert_eq!(e, cipher().encrypt_component(name).unwrap());
            let Encoded::Direct(s) = &e else {
                panic!("{name} should be direct")
            };
            assert!(s.len() <= MAX_DIRECT_CHARS);
            assert!(s.chars().all(|ch| ALPHABET.contains(ch)));
            assert!(s.bytes().all(in_alphabet));
            assert_eq!(c.decrypt_b32(s).unwrap(), name);
        }
    }

    #[test]
    fn long_names_are_hashed_and_keep_ct() {
        let c = cipher();
        let long = "y".repeat(300);
        let Encoded::Hashed { name, ct_b32 } = c.encrypt_component(&long).unwrap() else {
            panic!("should be hashed")
        };
        assert!(NameCipher::is_hashed(&name));
        assert_eq!(c.decrypt_b32(&ct_b32).unwrap(), long);
        assert!(name.len() + FILE_SUFFIX.len() <= 255);
    }

    #[test]
    fn other_folder_cannot_decrypt_and_names_differ() {
        let a = cipher();
        let b = NameCipher::new([8; 16], &[9; 32]);
        let Encoded::Direct(s) = a.encrypt_component("secret.txt").unwrap() else {
            panic!()
        };
        assert!(b.decrypt_b32(&s).is_err());
        assert_ne!(b.encrypt_component("secret.txt").unwrap().stem(), s);
        assert_ne!(a.encrypt_component("Secret.txt").unwrap().stem(), s);
    }

    /// A folder member can encrypt any bytes with the name key. Found by
    /// `fuzz/` (target `names`): a name holding NUL decrypted, and so did
    /// `..` and `a/b`, which the engine joins to the local folder's path.
    #[test]
    fn decrypts_only_single_path_components() {
        let c = cipher();
        let foreign = |plain: &[u8]| {
            let pad = 16 - plain.len() % 16;
            let mut padded = plain.to_vec();
            padded.extend(std::iter::repeat_n(pad as u8, pad));
            let ct = c
                .siv()
                .unwrap()
                .encrypt([AD_LABEL, &c.folder_id[..]], &padded)
                .unwrap();
            c.b32.encode(&ct)
        };
        assert_eq!(c.decrypt_b32(&foreign(b"ok.txt")).unwrap(), "ok.txt");
        let too_long = vec![b'x'; MAX_NAME_BYTES + 1];
        for bad in [
            &b""[..],
            b".",
            b"..",
            b"../../.bashrc",
            b"a/b",
            b"/etc",
            b"\0\0\0\0.\x02..",
            &too_long,
        ] {
            assert!(
                matches!(
                    c.decrypt_b32(&foreign(bad)),
                    Err(NameError::NotEncrypted(_))
                ),
                "{bad:?}"
            );
        }
        for bad in ["", ".", "..", "a/b", "a\0"] {
            assert!(c.encrypt_component(bad).is_err(), "{bad:?}");
        }
        assert!(c.encrypt_component("...").is_ok());
    }

    #[test]
    fn sync_suffixes_split() {
        assert_eq!(split_sync_suffix("abc27"), ("abc27", ""));
        assert_eq!(
            split_sync_suffix("abc27 (conflicted copy 2024-01-01)"),
            ("abc27", " (conflicted copy 2024-01-01)")
        );
        assert_eq!(split_sync_suffix("abc-LAPTOP"), ("abc", "-LAPTOP"));
    }
}

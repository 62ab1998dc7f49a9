//! All Wycheproof vectors for C2SP chunked encryption (Cobblestone-256), run
//! through both AES-GCM backends, with the streaming rules of
//! wycheproof/doc/c2sp_chunked_encryption.md.

use std::io::{Read, Write};

use rand_core::SeedableRng;
use sha2::{Digest, Sha512};

use super::{Derived, PayloadReader, PayloadWriter, SALT_SIZE, decrypt_to_vec};
use crate::{Backend, Error, PayloadError};

// Moved here from tests/format when the payload module stopped being public
// API (issue 19): the raw C2SP vectors need the salt and derived keys.

fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::seed_from_u64(seed)
}

/// `tests/vectors` at the repository root.
fn vectors_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

struct Vector {
    id: u64,
    comment: String,
    key: Vec<u8>,
    ctx: Vec<u8>,
    ct: Vec<u8>,
    valid: bool,
    flags: Vec<String>,
    msg_len: Option<usize>,
    msg_sha512: Option<Vec<u8>>,
    aead_key: Option<Vec<u8>>,
    base_nonce: Option<Vec<u8>>,
}

fn hexfield(t: &serde_json::Value, k: &str) -> Option<Vec<u8>> {
    t.get(k)
        .and_then(|v| v.as_str())
        .map(|s| hex::decode(s).expect("hex"))
}

fn load() -> Vec<Vector> {
    let path = vectors_dir().join("wycheproof/c2sp_chunked_encryption_aes_256_gcm_test.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    let mut out = Vec::new();
    for g in doc["testGroups"].as_array().expect("groups") {
        assert_eq!(g["aead"], "AEAD_AES_256_GCM");
        assert_eq!(g["sha"], "SHA-512");
        for t in g["tests"].as_array().expect("tests") {
            let mut ct = Vec::new();
            flate2::read::ZlibDecoder::new(&hexfield(t, "ct").expect("ct")[..])
                .read_to_end(&mut ct)
                .expect("zlib");
            out.push(Vector {
                id: t["tcId"].as_u64().expect("id"),
                comment: t["comment"].as_str().unwrap_or("").to_owned(),
                key: hexfield(t, "key").expect("key"),
                ctx: hexfield(t, "ctx").expect("ctx"),
                ct,
                valid: t["result"] == "valid",
                flags: t["flags"]
                    .as_array()
                    .expect("flags")
                    .iter()
                    .map(|f| f.as_str().unwrap_or("").to_owned())
                    .collect(),
                msg_len: t
                    .get("msgLength")
                    .and_then(|v| v.as_u64())
                    .map(|v| v as usize),
                msg_sha512: hexfield(t, "msgSha512"),
                aead_key: hexfield(t, "aeadKey"),
                base_nonce: hexfield(t, "baseNonce"),
            });
        }
    }
    out
}

/// Streaming decryption of one vector, reading in odd-sized pieces. Returns
/// what was released and the final result.
fn stream_decrypt(v: &Vector, backend: Backend) -> (Vec<u8>, Result<(), Error>) {
    let mut r = match PayloadReader::new(&v.ct[..], &v.key, &v.ctx, backend) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Err(e)),
    };
    let mut out = Vec::new();
    let mut buf = [0u8; 7001];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                // The error must be sticky: further reads keep failing and
                // release nothing more.
                for _ in 0..3 {
                    assert!(
                        r.read(&mut buf).is_err(),
                        "tc {}: error was not sticky",
                        v.id
                    );
                }
                return (out, Err(Error::from_io(e)));
            }
        }
    }
}

#[test]
fn all_35_vectors_both_backends() {
    let vectors = load();
    assert_eq!(vectors.len(), 35, "expected all 35 Cobblestone-256 vectors");
    for backend in [Backend::Ring, Backend::RustCrypto] {
        for v in &vectors {
            let (released, result) = stream_decrypt(v, backend);
            let what = format!("tc {} ({}) with {backend:?}", v.id, v.comment);
            if v.valid {
                result.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(Some(released.len()), v.msg_len, "{what}: length");
                assert_eq!(
                    Some(Sha512::digest(&released).to_vec()),
                    v.msg_sha512,
                    "{what}: hash"
                );
            } else {
                let err = result.expect_err(&what);
                // Never release bytes beyond the longest valid prefix.
                let prefix = if v.flags.iter().any(|f| f == "PartialPlaintext") {
                    v.msg_len.unwrap_or(0)
                } else {
                    0
                };
                assert!(
                    released.len() <= prefix,
                    "{what}: released {} bytes, prefix is {prefix}",
                    released.len()
                );
                if released.len() == prefix && prefix > 0 {
                    assert_eq!(
                        Some(Sha512::digest(&released).to_vec()),
                        v.msg_sha512,
                        "{what}: prefix hash"
                    );
                }
                if v.flags.iter().any(|f| f == "HeaderFailure") {
                    assert!(released.is_empty(), "{what}: header failure released data");
                    let expect_kind = if v.flags.iter().any(|f| f == "InvalidKeySize") {
                        PayloadError::InvalidKeySize
                    } else if v.flags.iter().any(|f| f == "Truncation") {
                        PayloadError::TruncatedHeader
                    } else {
                        PayloadError::Commitment
                    };
                    assert!(
                        matches!(err, Error::Payload(k) if k == expect_kind),
                        "{what}: got {err:?}"
                    );
                } else {
                    assert!(matches!(err, Error::Payload(_)), "{what}: got {err:?}");
                }
            }
        }
    }
}

#[test]
fn derivation_matches_vectors() {
    for v in load().iter().filter(|v| v.aead_key.is_some()) {
        let mut salt = [0u8; SALT_SIZE];
        salt.copy_from_slice(&v.ct[..SALT_SIZE]);
        let d = Derived::new(&v.key, &salt, &v.ctx).expect("derive");
        assert_eq!(Some(d.aead_key().to_vec()), v.aead_key, "tc {}", v.id);
        assert_eq!(Some(d.base_nonce().to_vec()), v.base_nonce, "tc {}", v.id);
    }
}

/// Re-encrypting each valid message with the vector's salt must reproduce
/// the ciphertext byte for byte, with both backends.
#[test]
fn encryption_reproduces_valid_vectors() {
    for v in load().iter().filter(|v| v.valid) {
        let (msg, res) = stream_decrypt(v, Backend::Ring);
        res.expect("valid vector");
        let mut salt = [0u8; SALT_SIZE];
        salt.copy_from_slice(&v.ct[..SALT_SIZE]);
        for backend in [Backend::Ring, Backend::RustCrypto] {
            let mut w = PayloadWriter::with_salt(Vec::new(), &v.key, &v.ctx, &salt, backend)
                .expect("writer");
            // Feed in uneven pieces to exercise the batching.
            for piece in msg.chunks(9999) {
                w.write_all(piece).expect("write");
            }
            let ct = w.finish().expect("finish");
            assert!(ct == v.ct, "tc {} {backend:?}: ciphertext differs", v.id);
        }
    }
}

/// The two AES-256-GCM implementations agree byte for byte on random keys,
/// salts and lengths, and each opens the other's output.
#[test]
fn backends_cross_check() {
    use rand_core::Rng;
    let mut r = rng(7);
    for len in [
        0usize,
        1,
        15,
        16,
        16383,
        16384,
        16385,
        65536 * 17 + 3,
        2 * 1024 * 1024,
    ] {
        let mut key = [0u8; 32];
        r.fill_bytes(&mut key);
        let mut salt = [0u8; SALT_SIZE];
        r.fill_bytes(&mut salt);
        let mut msg = vec![0u8; len];
        r.fill_bytes(&mut msg);
        let ctx = b"cross-check";
        let enc = |b| {
            let mut w = PayloadWriter::with_salt(Vec::new(), &key, ctx, &salt, b).expect("writer");
            w.write_all(&msg).expect("write");
            w.finish().expect("finish")
        };
        let a = enc(Backend::Ring);
        let b = enc(Backend::RustCrypto);
        assert!(a == b, "len {len}: backends disagree");
        for backend in [Backend::Ring, Backend::RustCrypto] {
            let pt = decrypt_to_vec(&key, ctx, &a, backend).expect("decrypt");
            assert!(pt == msg, "len {len}: {backend:?} round trip");
        }
    }
}

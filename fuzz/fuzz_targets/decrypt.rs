//! Decrypting arbitrary bytes never panics and never yields plaintext for
//! bytes that were not produced for this identity. The first input byte
//! selects the path: the streaming Decryptor on the whole input, or the
//! input as the payload behind a fixed valid header (so the fuzzer reaches
//! the chunk logic directly), opened both by the streaming Decryptor and
//! chunk by chunk by the positional ChunkOpener, which must agree.
#![no_main]

use std::io::Read;
use std::sync::OnceLock;

use kluis_format::{
    Backend, ChunkOpener, Decryptor, FileKey, Header, Identity, KemChoice, Metadata,
};
use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;

fn identity() -> &'static Identity {
    static ID: OnceLock<Identity> = OnceLock::new();
    ID.get_or_init(|| Identity::from_secret_bytes(&[7u8; 64]).expect("fixed identity"))
}

/// A valid header for `identity()`, the same in every run (seeded RNG), so
/// that crashing inputs reproduce.
fn fixed_header() -> &'static (Vec<u8>, Header, FileKey) {
    static H: OnceLock<(Vec<u8>, Header, FileKey)> = OnceLock::new();
    H.get_or_init(|| {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let (h, k) = Header::new(
            &[identity().recipient().clone()],
            KemChoice::X25519,
            &Metadata::default(),
            &mut rng,
        )
        .expect("fixed header");
        (h.to_bytes(), h, k)
    })
}

/// Read to the end; `Some(plaintext)` only if everything authenticated.
fn drain(mut r: impl Read) -> Option<Vec<u8>> {
    let mut buf = [0u8; 4096];
    let mut out = Vec::new();
    // Stop at the first error; a second read must fail again (sticky).
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Some(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => {
                assert!(r.read(&mut buf).is_err(), "error was not sticky");
                return None;
            }
        }
    }
}

/// Open `payload` chunk by chunk; `Some(plaintext)` only if every chunk
/// authenticated.
fn open_positional(payload: &[u8], backend: Backend) -> Option<Vec<u8>> {
    let (_, header, key) = fixed_header();
    let opener = ChunkOpener::new(header, key, payload.len() as u64, payload, backend).ok()?;
    let layout = *opener.layout();
    let mut out = Vec::new();
    let mut ok = true;
    for i in 0..layout.chunks() {
        let r = layout.sealed_range(i);
        let mut slot = payload[r.start as usize..r.end as usize].to_vec();
        match opener.open_chunk(i, &mut slot) {
            Ok(n) => out.extend_from_slice(&slot[..n]),
            Err(_) => ok = false,
        }
    }
    ok.then_some(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let backend = if mode & 2 == 0 {
        Backend::Ring
    } else {
        Backend::RustCrypto
    };
    if mode & 1 == 0 {
        if let Ok(d) = Decryptor::with_backend(rest, identity(), backend) {
            drain(d);
        }
    } else {
        let (head, _, _) = fixed_header();
        let file = [&head[..], rest].concat();
        let streamed = Decryptor::with_backend(&file[..], identity(), backend)
            .ok()
            .and_then(drain);
        let positional = open_positional(rest, backend);
        assert_eq!(
            streamed, positional,
            "streaming and positional opening disagree"
        );
    }
});

//! Decrypting arbitrary bytes never panics and never yields plaintext for
//! bytes that were not produced for this identity. The first input byte
//! selects the path: the streaming Decryptor, or the payload reader alone
//! (with a fixed key), so the fuzzer reaches the chunk logic directly too.
#![no_main]

use std::io::Read;
use std::sync::OnceLock;

use kluis_format::payload::PayloadReader;
use kluis_format::{Backend, Decryptor, Identity};
use libfuzzer_sys::fuzz_target;

fn identity() -> &'static Identity {
    static ID: OnceLock<Identity> = OnceLock::new();
    ID.get_or_init(|| Identity::from_secret_bytes(&[7u8; 64]).expect("fixed identity"))
}

fn drain(mut r: impl Read) {
    let mut buf = [0u8; 4096];
    // Stop at the first error; a second read must fail again (sticky).
    loop {
        match r.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(_) => {
                assert!(r.read(&mut buf).is_err(), "error was not sticky");
                return;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        if let Ok(d) = Decryptor::new(rest, identity()) {
            drain(d);
        }
    } else {
        let backend = if mode & 2 == 0 { Backend::Ring } else { Backend::RustCrypto };
        if let Ok(r) = PayloadReader::new(rest, &[9u8; 32], b"fuzz", backend) {
            drain(r);
        }
    }
});

//! Identity-file parsing never panics. Inputs with valid-looking (minimum)
//! parameters would cost 64 MiB of Argon2id each, so the fuzzer only reaches
//! the parameter checks and the structural ones, which is where bugs live.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = kluis_format::identity_params(data) {
        // Never run the expensive KDF from the fuzzer; the checks above
        // have already been exercised.
        let _ = p;
    }
    let _ = std::str::from_utf8(data).ok().map(|s| s.parse::<kluis_format::Recipient>());
});

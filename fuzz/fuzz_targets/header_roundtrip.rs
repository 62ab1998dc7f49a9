//! Header parsing is total and canonical: any input either fails with an
//! error or parses to a header whose encoding is exactly the bytes consumed,
//! and which parses again to the same value.
#![no_main]

use kluis_format::Header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Header::read(data) {
        let bytes = h.to_bytes();
        assert_eq!(&data[..bytes.len()], &bytes[..], "parse∘write is not the identity");
        let again = Header::read(&bytes[..]).expect("a written header must parse");
        assert!(again == h, "re-parse differs");
    }
});

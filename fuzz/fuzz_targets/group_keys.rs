//! The group-key file (`KLSGRPK1`, FORMAT.md §8.7) parser is total: any
//! input either fails with a reason or parses to key versions, strictly
//! increasing from 1, whose encoding parses to the same keys and is a fixed
//! point. Not the input itself: an X25519 secret is stored clamped, so
//! secrets that differ only in the clamped bits are one key.
#![no_main]

use kluis_agent::share::groups::GroupKeys;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(g) = GroupKeys::decode(data) else {
        return;
    };
    assert!(!g.keys.is_empty() && g.current().is_some());
    assert!(g.keys[0].0 >= 1);
    assert!(g.keys.windows(2).all(|w| w[0].0 < w[1].0));
    let bytes = g.encode();
    assert_eq!(bytes.len(), data.len());
    let again = GroupKeys::decode(&bytes).expect("an encoded group key file parses");
    assert_eq!(again.keys.len(), g.keys.len());
    for ((v1, k1), (v2, k2)) in g.keys.iter().zip(&again.keys) {
        assert_eq!(v1, v2);
        assert_eq!(k1.recipient(), k2.recipient());
    }
    assert_eq!(
        &again.encode()[..],
        &bytes[..],
        "encoding is not a fixed point"
    );
});

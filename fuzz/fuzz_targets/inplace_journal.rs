//! The in-place rewrite journal (`kluis_sync::inplace`) parser is total and
//! canonical: any input either fails or parses to a journal whose bytes are
//! exactly the input, and whose paths all stay inside the journal's folder
//! (recovery writes to them).
#![no_main]

use std::path::{Component, Path};

use kluis_sync::inplace::Journal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(j) = Journal::parse(data) else {
        return;
    };
    assert_eq!(j.to_bytes(), data, "parse∘write is not the identity");
    for p in j.paths() {
        assert!(!p.is_empty());
        assert!(
            Path::new(p)
                .components()
                .all(|c| matches!(c, Component::Normal(_))),
            "journal path {p:?} leaves its folder"
        );
    }
});

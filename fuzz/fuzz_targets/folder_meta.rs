//! The `.kluis-folder` payload parser (FORMAT.md §8.2) is total and its
//! result can be written again: any input either fails with an error or
//! parses to metadata that `encode` accepts (so a membership change can
//! re-seal it) and that parses again to the same value. Version 1 payloads
//! are written as version 2, so the check is on values, not bytes.
#![no_main]

use kluis_sync::FolderMeta;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = FolderMeta::decode(data) else {
        return;
    };
    let bytes = m.encode().expect("parsed folder metadata must encode");
    let again = FolderMeta::decode(&bytes).expect("encoded folder metadata must parse");
    assert_eq!(again.folder_id, m.folder_id);
    assert_eq!(
        (again.epoch, &again.owner, &again.title, &again.label),
        (m.epoch, &m.owner, &m.title, &m.label)
    );
    assert_eq!(again.members, m.members);
    assert_eq!(&again.encode().expect("re-encode")[..], &bytes[..]);
    // The name key comes out the same (the secret survived the trip).
    assert_eq!(
        again.name_cipher().encrypt_component("x").ok(),
        m.name_cipher().encrypt_component("x").ok()
    );
});

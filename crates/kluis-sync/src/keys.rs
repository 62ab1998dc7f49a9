//! Opening a Kluis file with any of several keys: your own identity and the
//! keys of the groups you belong to (a folder shared with a group has one
//! stanza for the group, docs/SHARING.md).

use std::io::Read;

use kluis_format::{Backend, Decryptor, FileKey, Header, Identity};

/// Unwrap the file key of `header` with the first of `keys` that has a
/// stanza in it. `NoMatchingRecipient` when none has; the last other error
/// (tampering) otherwise.
pub fn unwrap_any(header: &Header, keys: &[&Identity]) -> Result<FileKey, kluis_format::Error> {
    let mut last = kluis_format::Error::NoMatchingRecipient;
    for k in keys {
        let kid = k.recipient().fingerprint().key_id();
        if !header.stanzas().iter().any(|s| s.key_id == kid) {
            continue;
        }
        match header.unwrap_file_key(k) {
            Ok(fk) => return Ok(fk),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A decrypting reader over `input`, opened with any of `keys`.
pub fn decryptor<R: Read>(
    mut input: R,
    keys: &[&Identity],
) -> Result<Decryptor<R>, kluis_format::Error> {
    let header = Header::read(&mut input)?;
    let fk = unwrap_any(&header, keys)?;
    Decryptor::with_file_key(input, header, &fk, Backend::default())
}

//! Opening a Kluis file with any of several keys: your own identity and the
//! keys of the groups you belong to (a folder shared with a group has one
//! stanza for the group, docs/SHARING.md).

use std::io::Read;

use kluis_format::{Backend, Decryptor, FileKey, Header, Identity};

/// Unwrap the file key of `header` with the first of `keys` that has a
/// stanza in it ([`Header::unwrap_file_key_any`]). `NoMatchingRecipient`
/// when none has; the last other error (tampering) otherwise.
pub fn unwrap_any(header: &Header, keys: &[&Identity]) -> Result<FileKey, kluis_format::Error> {
    header.unwrap_file_key_any(keys)
}

/// A decrypting reader over `input`, opened with any of `keys`
/// ([`Decryptor::with_any`]).
pub fn decryptor<R: Read>(
    input: R,
    keys: &[&Identity],
) -> Result<Decryptor<R>, kluis_format::Error> {
    Decryptor::with_any(input, keys, Backend::default())
}

//! Encrypted file metadata. FORMAT.md §4.4.
//!
//! ```text
//! present   1   bit 0 name, bit 1 size, bit 2 mtime, bit 3 label; others 0
//! name      2+n if present: u16 length (1..=1024), UTF-8, no NUL and no '/'
//! size      8   if present: u64 plaintext length
//! mtime     12  if present: i64 seconds since the Unix epoch, u32 nanoseconds (< 10^9)
//! label     1+n if present: u8 length (1..=32), ASCII [a-z0-9-]
//! padding   zero bytes up to a multiple of 256 (at least 256 bytes in all)
//! ```

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Metadata plaintext is padded to a multiple of this.
pub const META_BLOCK: usize = 256;
/// Upper bound on the padded metadata plaintext.
pub const MAX_META_PLAINTEXT: usize = 4096;
/// Longest file name accepted.
pub const MAX_NAME_LEN: usize = 1024;
/// Longest classification label accepted.
pub const MAX_LABEL_LEN: usize = 32;

const HAS_NAME: u8 = 1;
const HAS_SIZE: u8 = 2;
const HAS_MTIME: u8 = 4;
const HAS_LABEL: u8 = 8;

/// What Kluis keeps about a file, readable only with the file key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The original file name (one path component).
    pub name: Option<String>,
    /// The plaintext length; checked on decryption when present.
    pub size: Option<u64>,
    /// Modification time: seconds since the epoch and nanoseconds.
    pub mtime: Option<(i64, u32)>,
    /// Classification label, e.g. `medical`.
    pub label: Option<String>,
}

impl Metadata {
    pub(crate) fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(Vec::with_capacity(META_BLOCK));
        let mut present = 0u8;
        if self.name.is_some() {
            present |= HAS_NAME;
        }
        if self.size.is_some() {
            present |= HAS_SIZE;
        }
        if self.mtime.is_some() {
            present |= HAS_MTIME;
        }
        if self.label.is_some() {
            present |= HAS_LABEL;
        }
        out.push(present);
        if let Some(name) = &self.name {
            check_name(name)?;
            out.extend_from_slice(&(name.len() as u16).to_be_bytes());
            out.extend_from_slice(name.as_bytes());
        }
        if let Some(size) = self.size {
            out.extend_from_slice(&size.to_be_bytes());
        }
        if let Some((secs, nanos)) = self.mtime {
            if nanos >= 1_000_000_000 {
                return Err(Error::InvalidMetadata("nanoseconds must be below 10^9"));
            }
            out.extend_from_slice(&secs.to_be_bytes());
            out.extend_from_slice(&nanos.to_be_bytes());
        }
        if let Some(label) = &self.label {
            check_label(label)?;
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        let padded = out.len().div_ceil(META_BLOCK).max(1) * META_BLOCK;
        out.resize(padded, 0);
        Ok(out)
    }

    pub(crate) fn decode(pt: &[u8]) -> Result<Self> {
        let bad = |_| Error::Metadata;
        let mut r = Cursor { b: pt, at: 0 };
        let present = r.take(1).map_err(bad)?[0];
        if present & !(HAS_NAME | HAS_SIZE | HAS_MTIME | HAS_LABEL) != 0 {
            return Err(Error::Metadata);
        }
        let mut m = Metadata::default();
        if present & HAS_NAME != 0 {
            let len = usize::from(u16::from_be_bytes(r.array().map_err(bad)?));
            let name =
                std::str::from_utf8(r.take(len).map_err(bad)?).map_err(|_| Error::Metadata)?;
            check_name(name).map_err(|_| Error::Metadata)?;
            m.name = Some(name.to_owned());
        }
        if present & HAS_SIZE != 0 {
            m.size = Some(u64::from_be_bytes(r.array().map_err(bad)?));
        }
        if present & HAS_MTIME != 0 {
            let secs = i64::from_be_bytes(r.array().map_err(bad)?);
            let nanos = u32::from_be_bytes(r.array().map_err(bad)?);
            if nanos >= 1_000_000_000 {
                return Err(Error::Metadata);
            }
            m.mtime = Some((secs, nanos));
        }
        if present & HAS_LABEL != 0 {
            let len = usize::from(r.take(1).map_err(bad)?[0]);
            let label =
                std::str::from_utf8(r.take(len).map_err(bad)?).map_err(|_| Error::Metadata)?;
            check_label(label).map_err(|_| Error::Metadata)?;
            m.label = Some(label.to_owned());
        }
        // Canonical padding: exactly the zero bytes up to the next block.
        let rest = &pt[r.at..];
        if rest.iter().any(|&b| b != 0) || pt.len() != r.at.div_ceil(META_BLOCK).max(1) * META_BLOCK
        {
            return Err(Error::Metadata);
        }
        Ok(m)
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidMetadata("file name must be 1 to 1024 bytes"));
    }
    if name.contains(['\0', '/']) {
        return Err(Error::InvalidMetadata(
            "file name must not contain NUL or '/'",
        ));
    }
    Ok(())
}

fn check_label(label: &str) -> Result<()> {
    if label.is_empty() || label.len() > MAX_LABEL_LEN {
        return Err(Error::InvalidMetadata("label must be 1 to 32 characters"));
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(Error::InvalidMetadata(
            "label must be lowercase ASCII letters, digits or '-'",
        ));
    }
    Ok(())
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], ()> {
        let end = self.at.checked_add(n).ok_or(())?;
        let s = self.b.get(self.at..end).ok_or(())?;
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], ()> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_padding() {
        let m = Metadata {
            name: Some("verslag 2026.pdf".into()),
            size: Some(12345),
            mtime: Some((1_700_000_000, 5)),
            label: Some("medical".into()),
        };
        let enc = m.encode().unwrap();
        assert_eq!(enc.len(), META_BLOCK);
        assert_eq!(Metadata::decode(&enc).unwrap(), m);
        let empty = Metadata::default().encode().unwrap();
        assert_eq!(empty.len(), META_BLOCK);
        assert_eq!(Metadata::decode(&empty).unwrap(), Metadata::default());
    }

    #[test]
    fn rejects_noncanonical() {
        let m = Metadata {
            name: Some("a".into()),
            ..Default::default()
        };
        let mut enc = m.encode().unwrap().to_vec();
        enc[200] = 1; // non-zero padding
        assert!(Metadata::decode(&enc).is_err());
        let mut enc = m.encode().unwrap().to_vec();
        enc.extend_from_slice(&[0; META_BLOCK]); // over-padded
        assert!(Metadata::decode(&enc).is_err());
        let mut enc = m.encode().unwrap().to_vec();
        enc[0] |= 0x80; // unknown field bit
        assert!(Metadata::decode(&enc).is_err());
    }

    #[test]
    fn rejects_bad_names_and_labels() {
        for name in ["", "a/b", "nul\0"] {
            let m = Metadata {
                name: Some(name.into()),
                ..Default::default()
            };
            assert!(m.encode().is_err(), "{name:?}");
        }
        let m = Metadata {
            label: Some("Medical".into()),
            ..Default::default()
        };
        assert!(m.encode().is_err());
        let m = Metadata {
            name: Some("x".repeat(1025)),
            ..Default::default()
        };
        assert!(m.encode().is_err());
    }
}

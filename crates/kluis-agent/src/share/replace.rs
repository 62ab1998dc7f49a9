//! Replacing a file of a mirror atomically: the folder metadata, a group's
//! key file (here) and every header rewrite of `kluis_client::share`.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::ShareError;

/// Why [`replace_atomic`] left the target as it was.
#[derive(Debug)]
pub enum ReplaceError {
    /// Reading or writing failed.
    Io(io::Error),
    /// The new content could not be produced.
    Format(kluis_format::Error),
    /// The target changed while we worked: left alone.
    Changed,
}

impl From<io::Error> for ReplaceError {
    fn from(e: io::Error) -> Self {
        ReplaceError::Io(e)
    }
}
impl From<kluis_format::Error> for ReplaceError {
    fn from(e: kluis_format::Error) -> Self {
        ReplaceError::Format(e)
    }
}

impl From<kluis_sync::inplace::InPlaceError> for ReplaceError {
    fn from(e: kluis_sync::inplace::InPlaceError) -> Self {
        match e {
            kluis_sync::inplace::InPlaceError::Changed => ReplaceError::Changed,
            kluis_sync::inplace::InPlaceError::Io(e) => ReplaceError::Io(e),
        }
    }
}

impl ReplaceError {
    /// The [`ShareError`] for a failed write of `path`.
    pub fn for_path(self, path: &Path) -> ShareError {
        let path: PathBuf = path.to_owned();
        match self {
            ReplaceError::Io(source) => ShareError::Io {
                op: "write",
                path,
                source,
            },
            ReplaceError::Format(source) => ShareError::Format { path, source },
            ReplaceError::Changed => ShareError::Io {
                op: "write",
                path,
                source: io::Error::other("changed meanwhile"),
            },
        }
    }
}

fn stamp(p: &Path) -> Option<(u64, std::time::SystemTime)> {
    let m = fs::metadata(p).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// Write a new version of `target` through `fill` (buffered) into a temp
/// file in `target`'s directory, fsync it, check `target` did not change
/// meanwhile (same size and mtime as before), rename it over `target`,
/// fsync the directory. On any failure the temp file is removed and
/// `target` is untouched.
pub fn replace_atomic(
    target: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<(), kluis_format::Error>,
) -> Result<(), ReplaceError> {
    replace_atomic_file(target, |f| {
        let mut w = BufWriter::with_capacity(1 << 16, f);
        fill(&mut w)?;
        w.flush().map_err(kluis_format::Error::Io)
    })
}

/// [`replace_atomic`] with the temp file itself, so that a payload can be
/// copied file to file (`std::io::copy` from a `File` to a `File` uses
/// `copy_file_range` on Linux: the kernel copies, no trip through user
/// space, and on XFS or Btrfs shares the blocks when both headers are
/// block-aligned, docs/SHARING.md).
pub fn replace_atomic_file(
    target: &Path,
    fill: impl FnOnce(&mut File) -> Result<(), kluis_format::Error>,
) -> Result<(), ReplaceError> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let before = stamp(target);
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).map_err(|e| io::Error::other(e.to_string()))?;
    let tmp = dir.join(format!(
        ".kluis-tmp-share-{}",
        rnd.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ));
    let result = (|| -> Result<(), ReplaceError> {
        let mut f = File::create(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        drop(f);
        if stamp(target) != before {
            return Err(ReplaceError::Changed);
        }
        fs::rename(&tmp, target)?;
        kluis_sync::exec::fsync_dir(dir)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

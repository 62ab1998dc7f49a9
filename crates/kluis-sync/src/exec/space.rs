//! Room for a download, checked before a byte of it is written.
//!
//! A download is decrypted into a temp file beside its target. On a nearly
//! full disk that temp file used to fill the disk to its last byte before
//! failing with `ENOSPC`, at every retry, and the user's own saves on that
//! disk failed meanwhile (issue 17, point 7). Now the plaintext's size (the
//! header's recorded `size`, else the ciphertext's, which is never smaller)
//! plus a margin kept for the user must be free first; otherwise the item
//! fails with [`ItemErrorKind::NoSpace`](crate::ItemErrorKind::NoSpace) and
//! nothing is written. The agent waits for space to be freed before it
//! tries again (`crates/kluis-agent/src/pair.rs`).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;

/// Free space of a file system, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Free {
    /// What an unprivileged process may still write (`f_bavail`).
    pub available: u64,
    /// The file system's size.
    pub total: u64,
}

/// Where free-space figures come from: [`System`] in the engine, a fixed
/// figure in tests.
pub trait FreeSpace {
    /// The free space of the file system that holds `dir`; `None` where
    /// the OS gives no figure (then nothing is checked).
    fn free(&self, dir: &Path) -> io::Result<Option<Free>>;
}

/// The OS's figure: `statvfs(3)` on Unix; none elsewhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl FreeSpace for System {
    #[cfg(unix)]
    fn free(&self, dir: &Path) -> io::Result<Option<Free>> {
        let s = rustix::fs::statvfs(dir)?;
        Ok(Some(Free {
            available: s.f_bavail.saturating_mul(s.f_frsize),
            total: s.f_blocks.saturating_mul(s.f_frsize),
        }))
    }

    #[cfg(not(unix))]
    fn free(&self, _dir: &Path) -> io::Result<Option<Free>> {
        Ok(None)
    }
}

/// What a download leaves free for the user's own files: 1% of the file
/// system, at least 64 MiB, but never more than a tenth of it (a 64 MiB
/// USB stick keeps 6.4 MiB, not all of it).
pub fn margin(total: u64) -> u64 {
    (total / 100).max(64 * MIB).min(total / 10)
}

/// A download that does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    /// The file system, named by its mount point where it can be found.
    pub disk: PathBuf,
    /// The file's size.
    pub size: u64,
    /// The margin kept free ([`margin`]).
    pub keep: u64,
    /// What was available.
    pub available: u64,
}

impl fmt::Display for Shortage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not enough space on {}: need {} ({} for the file, {} kept free for your own files), {} free",
            self.disk.display(),
            human(self.size.saturating_add(self.keep)),
            human(self.size),
            human(self.keep),
            human(self.available),
        )
    }
}

/// Whether a file of `size` bytes may be written into `dir`. A file
/// system that gives no figure, or whose figure cannot be read, passes:
/// the write itself then fails cleanly if it must.
pub fn check(dir: &Path, size: u64, space: &dyn FreeSpace) -> Result<(), Shortage> {
    let Ok(Some(free)) = space.free(dir) else {
        return Ok(());
    };
    let keep = margin(free.total);
    if free.available >= size.saturating_add(keep) {
        return Ok(());
    }
    Err(Shortage {
        disk: mount_point(dir),
        size,
        keep,
        available: free.available,
    })
}

/// The mount point of the file system that holds `dir` (the highest
/// ancestor on the same device), or `dir` where that cannot be told.
pub fn mount_point(dir: &Path) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let Ok(dev) = std::fs::metadata(dir).map(|m| m.dev()) else {
            return dir.to_path_buf();
        };
        let mut at = dir;
        while let Some(parent) = at.parent() {
            match std::fs::metadata(parent) {
                Ok(m) if m.dev() == dev => at = parent,
                _ => break,
            }
        }
        at.to_path_buf()
    }
    #[cfg(not(unix))]
    {
        dir.to_path_buf()
    }
}

/// `1.5 GiB`, `12.0 MiB`, `900 KiB`, `12 bytes`.
pub fn human(n: u64) -> String {
    const GIB: u64 = 1 << 30;
    match n {
        n if n >= GIB => format!("{:.1} GiB", n as f64 / GIB as f64),
        n if n >= MIB => format!("{:.1} MiB", n as f64 / MIB as f64),
        n if n >= 1024 => format!("{} KiB", n / 1024),
        n => format!("{n} bytes"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    struct Fixed(Option<Free>);

    impl FreeSpace for Fixed {
        fn free(&self, _: &Path) -> io::Result<Option<Free>> {
            Ok(self.0)
        }
    }

    #[test]
    fn the_margin_is_one_percent_at_least_64_mib_at_most_a_tenth() {
        assert_eq!(margin(1 << 40), (1 << 40) / 100);
        assert_eq!(margin(2 << 30), 64 * MIB);
        assert_eq!(margin(64 * MIB), 64 * MIB / 10);
        assert_eq!(margin(0), 0);
    }

    #[test]
    fn a_file_that_would_eat_into_the_margin_is_refused_and_the_reason_names_the_figures() {
        let dir = tempfile::tempdir().unwrap();
        let total = 10 << 30; // 10 GiB: the margin is 102.4 MiB
        let space = Fixed(Some(Free {
            available: 200 * MIB,
            total,
        }));
        assert_eq!(check(dir.path(), 90 * MIB, &space), Ok(()));
        let short = check(dir.path(), 100 * MIB, &space).unwrap_err();
        assert_eq!(short.available, 200 * MIB);
        assert_eq!(short.keep, margin(total));
        let text = short.to_string();
        assert!(
            text.starts_with("not enough space on /")
                && text.contains("need 202.4 MiB")
                && text.ends_with(", 200.0 MiB free"),
            "{text}"
        );
    }

    #[test]
    fn no_figure_means_no_check() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check(dir.path(), u64::MAX, &Fixed(None)), Ok(()));
    }

    #[cfg(unix)]
    #[test]
    fn the_system_figure_is_read_and_the_disk_is_a_mount_point() {
        let dir = tempfile::tempdir().unwrap();
        let free = System.free(dir.path()).unwrap().unwrap();
        assert!(free.total > 0 && free.available <= free.total);
        let disk = mount_point(dir.path());
        assert!(dir.path().starts_with(&disk), "{}", disk.display());
    }
}

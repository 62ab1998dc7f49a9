//! Safe output: files are written to a temporary file in the same directory,
//! synced and renamed into place, so a failure never leaves a partial file and
//! never damages the original. Also error wording and the progress bar.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// An output destination: stdout, or a file replaced atomically on commit.
pub enum Output {
    Stdout(BufWriter<io::Stdout>),
    File {
        tmp: BufWriter<tempfile::NamedTempFile>,
        dest: PathBuf,
    },
}

impl Output {
    /// `None` or `-` means stdout.
    pub fn open(path: Option<&Path>) -> Result<Self> {
        match path {
            None => Ok(Output::Stdout(BufWriter::with_capacity(
                1 << 20,
                io::stdout(),
            ))),
            Some(p) if p.as_os_str() == "-" => Ok(Output::Stdout(BufWriter::with_capacity(
                1 << 20,
                io::stdout(),
            ))),
            Some(p) => {
                let dir = parent_dir(p);
                let tmp = tempfile::Builder::new()
                    .prefix(".kluis-tmp-")
                    .tempfile_in(&dir)
                    .with_context(|| {
                        format!("cannot create a temporary file in {}", dir.display())
                    })?;
                Ok(Output::File {
                    tmp: BufWriter::with_capacity(1 << 20, tmp),
                    dest: p.to_path_buf(),
                })
            }
        }
    }

    /// Make the output visible: flush, fsync and rename over the destination.
    pub fn commit(self) -> Result<()> {
        match self {
            Output::Stdout(mut w) => w.flush().map_err(Into::into),
            Output::File { tmp, dest } => {
                let tmp = tmp.into_inner().map_err(|e| e.into_error())?;
                // Durability matters when the rename replaces a file: after a
                // crash the destination must hold the old or the new bytes,
                // never an empty file. A brand-new output needs no fsync: if
                // it is lost in a crash, its input still exists.
                let replaces = dest.exists();
                if replaces {
                    tmp.as_file().sync_all()?;
                }
                tmp.persist(&dest)
                    .map_err(|e| e.error)
                    .with_context(|| format!("cannot write {}", dest.display()))?;
                if replaces {
                    sync_dir(&parent_dir(&dest));
                }
                Ok(())
            }
        }
    }

    /// Make the temporary file take the permissions of `like`.
    pub fn copy_permissions_from(&self, like: &Path) -> Result<()> {
        if let Output::File { tmp, .. } = self {
            let perms = std::fs::metadata(like)?.permissions();
            std::fs::set_permissions(tmp.get_ref().path(), perms)?;
        }
        Ok(())
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::File { tmp, .. } => tmp.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::File { tmp, .. } => tmp.flush(),
        }
    }
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// fsync a directory so a rename in it is durable (best effort: not every
/// platform can open directories).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// An input: a file or stdin, with its size when known.
pub fn open_input(path: Option<&Path>) -> Result<(Box<dyn Read>, Option<u64>)> {
    match path {
        None => Ok((Box::new(io::stdin().lock()), None)),
        Some(p) if p.as_os_str() == "-" => Ok((Box::new(io::stdin().lock()), None)),
        Some(p) => {
            let f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            let meta = f.metadata()?;
            if meta.is_dir() {
                anyhow::bail!("{} is a directory", p.display());
            }
            Ok((Box::new(f), Some(meta.len())))
        }
    }
}

/// A progress bar on stderr when it is a terminal and the input is large
/// enough for one to help (64 MiB).
pub fn progress_bar(len: Option<u64>) -> Option<indicatif::ProgressBar> {
    const THRESHOLD: u64 = 64 * 1024 * 1024;
    match len {
        Some(len) if len >= THRESHOLD && io::stderr().is_terminal() => {
            let bar = indicatif::ProgressBar::new(len);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            Some(bar)
        }
        _ => None,
    }
}

/// Wrap a reader with [`progress_bar`].
pub fn with_progress(r: Box<dyn Read>, len: Option<u64>) -> Box<dyn Read> {
    match progress_bar(len) {
        Some(bar) => Box::new(bar.wrap_read(r)),
        None => r,
    }
}

/// Writing to a closed pipe (`kluis decrypt f | head`) is not an error.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || matches!(c.downcast_ref::<kluis_format::Error>(), Some(kluis_format::Error::Io(io)) if io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// One line for a person: the outermost context and the root cause.
pub fn describe(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if parts.last().is_none_or(|last| !last.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

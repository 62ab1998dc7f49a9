//! Header rewrites in place, made crash-safe by a journal.
//!
//! Sharing a file with one more person changes only its header, and a padded
//! header (FORMAT.md §4.7) has room for the new stanza in the same bytes. So
//! the new header is written over the old one and the payload is not touched:
//! the cost no longer depends on the file's size.
//!
//! Overwriting in place is the one write in Kluis that is not "temp file,
//! fsync, rename", so a crash in the middle could leave a header that is half
//! old and half new. Before those writes, a journal holding both versions of
//! every header in a [`Batch`] is made durable; [`recover`] finishes (rolls
//! forward) any rewrite it finds a journal for, and only where the file
//! still holds exactly the old bytes, the new bytes, or a mix of the two,
//! with the same length and the same payload prefix. Anything else means the
//! file was replaced meanwhile: it is left alone. A batch costs one journal
//! fsync and one directory fsync, then one data fsync per file.
//!
//! Journal layout (all integers big-endian):
//!
//! ```text
//! "KLUIS-JOURNAL-2\n" (16)
//! u32 entry count, then per entry:
//!   u16 path length, path (relative to the journal's directory, `/`-separated)
//!   u64 file length
//!   u32 payload prefix length, payload prefix (the bytes right after the header)
//!   u32 header length H, old header (H), new header (H)
//! SHA-256 of everything above (32)
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::crypt::read_full;
use crate::exec::{fsync_dir, walk_files};

/// Journals of in-place rewrites that may not have finished.
pub const JOURNAL_PREFIX: &str = ".kluis-journal-";
const MAGIC: &[u8; 16] = b"KLUIS-JOURNAL-2\n";
/// The salt and commitment at the start of every payload (FORMAT.md §5.1).
const PAYLOAD_PREFIX: usize = 56;
/// Bound on what [`recover`] reads.
const MAX_JOURNAL: u64 = 256 << 20;

/// Why an in-place rewrite did not happen. In every case the file is as it
/// was.
#[derive(Debug)]
pub enum InPlaceError {
    /// The file no longer starts with the header the caller read.
    Changed,
    /// Reading, writing or syncing failed.
    Io(io::Error),
}

impl From<io::Error> for InPlaceError {
    fn from(e: io::Error) -> Self {
        InPlaceError::Io(e)
    }
}

struct Entry {
    /// Relative to the journal's directory.
    rel: String,
    len: u64,
    prefix: Vec<u8>,
    old: Vec<u8>,
    new: Vec<u8>,
}

/// Header rewrites collected, then written together under one journal.
pub struct Batch {
    dir: PathBuf,
    entries: Vec<Entry>,
}

impl Batch {
    /// A batch whose journal lives in `dir`; every staged file must be
    /// under `dir`. An empty `dir` is the current one.
    pub fn new(dir: &Path) -> Batch {
        Batch {
            dir: or_dot(dir).to_owned(),
            entries: Vec::new(),
        }
    }

    /// Files staged so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Nothing staged.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Stage the rewrite of `path`'s first `old.len()` bytes, which must be
    /// exactly `old` now, with `new` (the same length).
    pub fn stage(&mut self, path: &Path, old: Vec<u8>, new: Vec<u8>) -> Result<(), InPlaceError> {
        let invalid = |why: &str| {
            InPlaceError::Io(io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()))
        };
        if old.len() != new.len() {
            return Err(invalid("an in-place header must keep its length"));
        }
        let rel = path
            .strip_prefix(&self.dir)
            .ok()
            // A relative path is under `.` as it stands ("doc.kls").
            .or_else(|| (self.dir == Path::new(".") && path.is_relative()).then_some(path))
            .and_then(relative_text)
            .ok_or_else(|| invalid("the file is not under the journal's folder"))?;
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        let mut current = vec![0u8; old.len()];
        if read_full(&mut f, &mut current)? != current.len() || current != old {
            return Err(InPlaceError::Changed);
        }
        let mut prefix = vec![0u8; PAYLOAD_PREFIX];
        let n = read_full(&mut f, &mut prefix)?;
        prefix.truncate(n);
        self.entries.push(Entry {
            rel,
            len,
            prefix,
            old,
            new,
        });
        Ok(())
    }

    /// Write the journal and make it durable, write every new header over
    /// its old one (checking once more that the file did not change) and
    /// fsync it, then remove the journal. One result per staged file, in
    /// order. When the journal cannot be written, nothing is touched.
    pub fn commit(self) -> Vec<(PathBuf, Result<(), InPlaceError>)> {
        let paths: Vec<PathBuf> = self.entries.iter().map(|e| self.dir.join(&e.rel)).collect();
        if self.entries.is_empty() {
            return Vec::new();
        }
        let journal = encode(&self.entries);
        let tag: String = Sha256::digest(&journal)[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let jpath = self.dir.join(format!("{JOURNAL_PREFIX}{tag}"));
        let staged = (|| {
            let mut j = File::create(&jpath)?;
            j.write_all(&journal)?;
            j.sync_data()?;
            fsync_dir(&self.dir)
        })();
        if let Err(e) = staged {
            let _ = fs::remove_file(&jpath);
            return paths
                .into_iter()
                .map(|p| {
                    (
                        p,
                        Err(InPlaceError::Io(io::Error::new(e.kind(), e.to_string()))),
                    )
                })
                .collect();
        }
        let mut all_safe = true;
        let results: Vec<_> = self
            .entries
            .iter()
            .zip(paths)
            .map(|(e, p)| {
                let r = overwrite(&p, e);
                if let Err(InPlaceError::Io(_)) = r {
                    // The file may be torn: the journal must stay.
                    all_safe = false;
                }
                (p, r)
            })
            .collect();
        if all_safe {
            let _ = fs::remove_file(&jpath);
        }
        results
    }
}

/// `dir`, or `.` when it is empty: a bare file name's parent is the empty
/// path, and `read_dir("")` and [`fsync_dir`]`("")` fail.
fn or_dot(dir: &Path) -> &Path {
    if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }
}

/// The folder holding `path` (`.` for a bare name like `doc.kluis`).
fn folder_of(path: &Path) -> &Path {
    or_dot(path.parent().unwrap_or(Path::new("")))
}

fn relative_text(rel: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn overwrite(path: &Path, e: &Entry) -> Result<(), InPlaceError> {
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let mut current = vec![0u8; e.old.len()];
    if f.metadata()?.len() != e.len
        || read_full(&mut f, &mut current)? != current.len()
        || current != e.old
    {
        return Err(InPlaceError::Changed);
    }
    f.seek(SeekFrom::Start(0))?;
    let written = f.write_all(&e.new).and_then(|()| f.sync_data());
    if let Err(err) = written {
        // Put the old header back if we can; recovery finishes it otherwise.
        f.seek(SeekFrom::Start(0))
            .and_then(|_| f.write_all(&e.old))
            .and_then(|()| f.sync_data())?;
        return Err(err.into());
    }
    Ok(())
}

/// Overwrite the first `old.len()` bytes of `path`, which must be exactly
/// `old`, with `new` (the same length): a batch of one, its journal beside
/// the file.
pub fn rewrite_header(path: &Path, old: &[u8], new: &[u8]) -> Result<(), InPlaceError> {
    let mut b = Batch::new(folder_of(path));
    b.stage(path, old.to_vec(), new.to_vec())?;
    b.commit()
        .pop()
        .map_or(Err(InPlaceError::Changed), |(_, r)| r)
}

fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut j = Vec::new();
    j.extend_from_slice(MAGIC);
    // Paths are bounded by the OS, headers by MAX_HEADER_LEN, batches by
    // the caller: the casts cannot truncate.
    j.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        j.extend_from_slice(&(e.rel.len() as u16).to_be_bytes());
        j.extend_from_slice(e.rel.as_bytes());
        j.extend_from_slice(&e.len.to_be_bytes());
        j.extend_from_slice(&(e.prefix.len() as u32).to_be_bytes());
        j.extend_from_slice(&e.prefix);
        j.extend_from_slice(&(e.old.len() as u32).to_be_bytes());
        j.extend_from_slice(&e.old);
        j.extend_from_slice(&e.new);
    }
    let sum = Sha256::digest(&j);
    j.extend_from_slice(&sum);
    j
}

fn decode(j: &[u8]) -> Option<Vec<Entry>> {
    let (body, sum) = j.split_at_checked(j.len().checked_sub(32)?)?;
    if Sha256::digest(body)[..] != *sum {
        return None;
    }
    let r = body.strip_prefix(MAGIC)?;
    let mut pos = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let a = r.get(pos..pos.checked_add(n)?)?;
        pos += n;
        Some(a)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
    let mut entries = Vec::new();
    for _ in 0..count {
        let rel_len = usize::from(u16::from_be_bytes(take(2)?.try_into().ok()?));
        let rel = std::str::from_utf8(take(rel_len)?).ok()?.to_owned();
        let len = u64::from_be_bytes(take(8)?.try_into().ok()?);
        let prefix_len = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
        let prefix = take(prefix_len)?.to_vec();
        let h = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
        let old = take(h)?.to_vec();
        let new = take(h)?.to_vec();
        if relative_text(Path::new(&rel)).as_deref() != Some(rel.as_str()) {
            return None;
        }
        entries.push(Entry {
            rel,
            len,
            prefix,
            old,
            new,
        });
    }
    (pos == r.len()).then_some(entries)
}

/// A journal as [`recover`] reads it (layout above), without touching any
/// file. A journal sits in the mirror, where a sync client or another
/// process may have put any bytes, so parsing must be total; public so that
/// `fuzz/` and tools can check a journal on their own.
pub struct Journal(Vec<Entry>);

impl Journal {
    /// Parse a journal; `None` when it is damaged (checksum, layout) or
    /// names a path outside its folder. [`Journal::to_bytes`] gives the
    /// same bytes back.
    pub fn parse(bytes: &[u8]) -> Option<Journal> {
        decode(bytes).map(Journal)
    }

    /// The journal's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(&self.0)
    }

    /// The files it rewrites, relative to the journal's folder,
    /// `/`-separated.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|e| e.rel.as_str())
    }
}

/// What [`recover`] did with one journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recovered {
    /// Rewrites finished (the header is the new one).
    pub finished: usize,
    /// Files replaced since (or gone): left alone.
    pub dropped: usize,
    /// The journal itself was unreadable (removed, nothing touched).
    pub unreadable: bool,
}

/// Finish the rewrites a journal describes, then remove the journal.
pub fn recover(journal: &Path) -> io::Result<Recovered> {
    let dir = folder_of(journal);
    let mut raw = Vec::new();
    File::open(journal)?
        .take(MAX_JOURNAL + 1)
        .read_to_end(&mut raw)?;
    let mut out = Recovered::default();
    match decode(&raw) {
        None => out.unreadable = true,
        Some(entries) => {
            for e in &entries {
                if roll_forward(&dir.join(&e.rel), e)? {
                    out.finished += 1;
                } else {
                    out.dropped += 1;
                }
            }
        }
    }
    fs::remove_file(journal)?;
    Ok(out)
}

fn roll_forward(target: &Path, j: &Entry) -> io::Result<bool> {
    let mut f = match OpenOptions::new().read(true).write(true).open(target) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if f.metadata()?.len() != j.len {
        return Ok(false);
    }
    let mut head = vec![0u8; j.old.len()];
    if read_full(&mut f, &mut head)? != head.len() {
        return Ok(false);
    }
    let mut prefix = vec![0u8; j.prefix.len()];
    if read_full(&mut f, &mut prefix)? != prefix.len() || prefix != j.prefix {
        return Ok(false);
    }
    // Old, new, or torn between the two at any granularity: ours to finish.
    let ours = head
        .iter()
        .zip(j.old.iter().zip(&j.new))
        .all(|(c, (o, n))| c == o || c == n);
    if !ours {
        return Ok(false);
    }
    if head != j.new {
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&j.new)?;
        f.sync_data()?;
    }
    Ok(true)
}

/// Finish an interrupted one-file rewrite ([`rewrite_header`]): its journal
/// sits in the file's own folder. Not recursive.
pub fn recover_beside(path: &Path) {
    let Ok(rd) = fs::read_dir(folder_of(path)) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with(JOURNAL_PREFIX) {
            let _ = recover(&e.path());
        }
    }
}

/// Recover every journal under `root` (recursively, skipping the trash).
/// Returns how many journals were found.
pub fn recover_all(root: &Path) -> usize {
    let mut n = 0;
    walk_files(root, &mut |path, name| {
        if name.starts_with(JOURNAL_PREFIX) && recover(path).is_ok() {
            n += 1;
        }
    });
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, head: &[u8], payload: &[u8]) -> PathBuf {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, [head, payload].concat()).unwrap();
        p
    }

    fn journals(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".kluis-"))
            .collect()
    }

    fn entry(rel: &str, len: u64, prefix: &[u8], old: &[u8], new: &[u8]) -> Entry {
        Entry {
            rel: rel.into(),
            len,
            prefix: prefix.to_vec(),
            old: old.to_vec(),
            new: new.to_vec(),
        }
    }

    #[test]
    fn a_batch_changes_only_the_headers_and_leaves_no_journal() {
        let d = tempfile::tempdir().unwrap();
        let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let a = file(d.path(), "a.kls", &[1; 300], &payload);
        let b = file(d.path(), "sub/dir/b.kls", &[4; 300], &payload[..80]);
        let mut batch = Batch::new(d.path());
        batch.stage(&a, vec![1; 300], vec![2; 300]).unwrap();
        batch.stage(&b, vec![4; 300], vec![5; 300]).unwrap();
        // A stale view is refused at once.
        assert!(matches!(
            batch.stage(&a, vec![9; 300], vec![2; 300]),
            Err(InPlaceError::Changed)
        ));
        assert!(matches!(
            batch.stage(&a, vec![1; 300], vec![2; 299]),
            Err(InPlaceError::Io(_))
        ));
        // Changed between staging and the write: that one is left alone.
        let c = file(d.path(), "c.kls", &[6; 300], &payload[..80]);
        batch.stage(&c, vec![6; 300], vec![7; 300]).unwrap();
        fs::write(&c, [&[8u8; 300][..], &payload[..80]].concat()).unwrap();
        let results = batch.commit();
        assert_eq!(results.len(), 3);
        assert!(results[0].1.is_ok() && results[1].1.is_ok());
        assert!(matches!(results[2].1, Err(InPlaceError::Changed)));
        assert_eq!(fs::read(&a).unwrap(), [&[2u8; 300][..], &payload].concat());
        assert_eq!(
            fs::read(&b).unwrap(),
            [&[5u8; 300][..], &payload[..80]].concat()
        );
        assert_eq!(fs::read(&c).unwrap()[..300], [8; 300]);
        assert!(journals(d.path()).is_empty());
        // A file outside the journal's folder cannot be staged.
        let other = tempfile::tempdir().unwrap();
        let x = file(other.path(), "x.kls", &[1; 10], &[0; 80]);
        assert!(matches!(
            Batch::new(d.path()).stage(&x, vec![1; 10], vec![2; 10]),
            Err(InPlaceError::Io(_))
        ));
        // The one-file form.
        rewrite_header(&x, &[1; 10], &[3; 10]).unwrap();
        assert_eq!(fs::read(&x).unwrap()[..10], [3; 10]);
        assert!(journals(other.path()).is_empty());
    }

    /// A bare relative name (`doc.kls`, as a command line gives it) is in
    /// `.`: its parent, the empty path, used to make `recover_beside` find
    /// nothing (`read_dir("")` fails) and `rewrite_header` fail
    /// (`fsync_dir("")`).
    #[test]
    fn a_bare_file_name_is_in_the_current_folder() {
        let d = tempfile::tempdir().unwrap();
        let payload = vec![7u8; 100];
        let (old, new) = (vec![1u8; 300], vec![2u8; 300]);
        // A rewrite of doc.kls that a crash interrupted half way.
        let torn = [&new[..150], &old[150..]].concat();
        let p = file(d.path(), "doc.kls", &torn, &payload);
        let j = encode(&[entry("doc.kls", 400, &payload[..56], &old, &new)]);
        fs::write(d.path().join(format!("{JOURNAL_PREFIX}x")), j).unwrap();

        // The working directory is the process's: back to where it was
        // before anything can fail.
        let cwd = std::env::current_dir().unwrap();
        std::env::set_current_dir(d.path()).unwrap();
        let bare = Path::new("doc.kls");
        recover_beside(bare);
        let recovered = fs::read(&p).unwrap();
        let rewritten = rewrite_header(bare, &new, &[3; 300]);
        std::env::set_current_dir(cwd).unwrap();

        assert_eq!(recovered, [&new[..], &payload].concat());
        rewritten.unwrap();
        assert_eq!(fs::read(&p).unwrap(), [&[3u8; 300][..], &payload].concat());
        assert!(journals(d.path()).is_empty());
        assert_eq!(folder_of(bare), Path::new("."));
        assert_eq!(folder_of(Path::new("a/b.kls")), Path::new("a"));
    }

    /// A crash after the journal and anywhere in the writes: the old header,
    /// a torn one (every mix), or the new one all end as the new one.
    #[test]
    fn recovery_finishes_a_torn_rewrite() {
        let d = tempfile::tempdir().unwrap();
        let payload = vec![7u8; 5000];
        let old: Vec<u8> = (0..600u32).map(|i| (i % 251) as u8).collect();
        let new: Vec<u8> = (0..600u32).map(|i| (i % 13) as u8 + 100).collect();
        for torn_at in [0, 1, 299, 512, 599, 600] {
            let mut head = new[..torn_at].to_vec();
            head.extend_from_slice(&old[torn_at..]);
            let p = file(d.path(), "deep/a.kls", &head, &payload);
            let prefix = &payload[..PAYLOAD_PREFIX];
            let j = encode(&[entry("deep/a.kls", 5600, prefix, &old, &new)]);
            fs::write(d.path().join(format!("{JOURNAL_PREFIX}x")), j).unwrap();
            assert_eq!(recover_all(d.path()), 1);
            assert_eq!(
                fs::read(&p).unwrap(),
                [&new[..], &payload].concat(),
                "{torn_at}"
            );
            assert!(journals(d.path()).is_empty());
        }
    }

    #[test]
    fn recovery_leaves_a_file_that_was_replaced_meanwhile() {
        let d = tempfile::tempdir().unwrap();
        let old = vec![1u8; 100];
        let new = vec![2u8; 100];
        let j = encode(&[entry("a.kls", 180, &[5; 56], &old, &new)]);
        let jp = d.path().join(format!("{JOURNAL_PREFIX}x"));
        // Another header; another payload; another length.
        let cases: [(&[u8], Vec<u8>); 3] = [
            (&[3u8; 100], vec![5; 80]),
            (&old, vec![6; 80]),
            (&old, vec![5; 81]),
        ];
        for (head, payload) in cases {
            let p = file(d.path(), "a.kls", head, &payload);
            fs::write(&jp, &j).unwrap();
            let r = recover(&jp).unwrap();
            assert_eq!((r.finished, r.dropped), (0, 1));
            assert_eq!(fs::read(&p).unwrap(), [head, &payload[..]].concat());
        }
        // Gone.
        fs::remove_file(d.path().join("a.kls")).unwrap();
        fs::write(&jp, &j).unwrap();
        assert_eq!(recover(&jp).unwrap().dropped, 1);
        // A damaged journal, or one that names a path outside its folder,
        // is dropped without touching anything.
        let p = file(d.path(), "a.kls", &old, &[5; 80]);
        let mut bad = j.clone();
        bad[40] ^= 1;
        let escaping = encode(&[entry("../a.kls", 180, &[5; 56], &old, &new)]);
        for journal in [bad, escaping] {
            fs::write(&jp, &journal).unwrap();
            assert!(recover(&jp).unwrap().unreadable);
            assert_eq!(fs::read(&p).unwrap()[..100], old[..]);
        }
        assert!(journals(d.path()).is_empty());
    }
}

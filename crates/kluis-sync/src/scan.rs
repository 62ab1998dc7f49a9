//! Scanning both trees into plain snapshots. The scanner only stats; it
//! never reads file contents (except 28 header bytes of new ciphertext, for
//! rename detection, and the header of hashed long names).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use serde::{Deserialize, Serialize};

use crate::folder_meta::FOLDER_META_FILE;
use crate::names::{self, DIR_NAME_MARKER, FILE_SUFFIX, NameCipher};

/// Prefix of everything Kluis itself keeps inside the two trees (temp
/// files, the trash, the lock file); always ignored.
pub const KLUIS_PREFIX: &str = ".kluis-";
/// Prefix of temp files the executor writes (in both trees).
pub const TEMP_PREFIX: &str = ".kluis-tmp-";
/// The plaintext trash folder (its names: [`crate::copy_names`]).
pub use crate::copy_names::TRASH_DIR;
/// Where the temp files of a batch of new ciphertext are written, in the
/// mirror root, before each is renamed into its directory. The agent does
/// not watch it: every new file would otherwise cost the watcher five
/// events of our own (create, open, write, close, rename away).
pub const STAGING_DIR: &str = ".kluis-staging";
/// The user's ignore file in the plaintext root (one glob per line, `#` comments).
pub const IGNORE_FILE: &str = ".kluisignore";

/// Built-in noise: editor lock, swap and backup files, OS litter.
pub const BUILTIN_IGNORES: &[&str] = &[
    ".kluis-*",
    ".~lock.*#",
    "~$*",
    "*.swp",
    "*.swo",
    "*.swx",
    "*~",
    ".#*",
    "#*#",
    "4913",
    ".goutputstream-*",
    ".DS_Store",
    "._*",
    "desktop.ini",
    "Thumbs.db",
    ".dropbox",
    ".dropbox.attr",
    ".dropbox.cache",
    "*.crdownload",
    "*.part",
    // Microsoft Office saves through temp files: Word writes the new
    // version to `~WRL0001.tmp`, renames the document to `~WRL0002.tmp`
    // (or `~WRD….tmp`), renames the new version over it and deletes the
    // old; PowerPoint uses `ppt….tmp`, others `~DF….tmp`. Synced, each save
    // crossed to the other devices as a rename away and a deletion (a
    // trash copy there). OneDrive never uploads `*.tmp` either.
    "*.tmp",
];

/// File or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// What the scanner saw of one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    /// File or directory.
    pub kind: Kind,
    /// Length in bytes (0 for directories).
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime: i64,
    /// Status-change time, ns since the epoch (mtime where unknown).
    pub ctime: i64,
    /// Inode number (0 where unknown).
    pub ino: u64,
}

impl Stat {
    /// From file-system metadata.
    pub fn from_metadata(m: &fs::Metadata) -> Stat {
        let kind = if m.is_dir() { Kind::Dir } else { Kind::File };
        let mtime = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        #[cfg(unix)]
        let (ctime, ino) = {
            use std::os::unix::fs::MetadataExt;
            (m.ctime() * 1_000_000_000 + m.ctime_nsec(), m.ino())
        };
        #[cfg(not(unix))]
        let (ctime, ino) = (mtime, 0);
        Stat {
            kind,
            size: if m.is_dir() { 0 } else { m.len() },
            mtime,
            ctime,
            ino,
        }
    }

    /// Latest of mtime and ctime.
    pub fn last_change(&self) -> i64 {
        self.mtime.max(self.ctime)
    }
}

/// A visible, logged skip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    /// Path relative to the tree root.
    pub path: String,
    /// Why (its `Display` is the English the logs and the command line
    /// show).
    pub reason: SkipReason,
}

/// Why a path is skipped, typed (screens word it per language); `Display`
/// gives the engine's English for logs and the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum SkipReason {
    /// A plaintext directory that cannot be listed (the error).
    CannotReadDir(String),
    /// A name that is not valid UTF-8.
    NotUtf8,
    /// An entry whose metadata cannot be read (the error).
    CannotStat(String),
    /// A symbolic link.
    Symlink,
    /// The plaintext root of another folder pair nested in this one.
    OtherPair,
    /// A device, socket or pipe.
    SpecialFile,
    /// A mirror directory that cannot be listed.
    CannotReadMirrorDir,
    /// A mirror directory whose name is not an encrypted name of this folder.
    ForeignDirName,
    /// A mirror file without the `.kls` suffix.
    NotKluisFile,
    /// A mirror file whose name is not an encrypted name of this folder.
    ForeignFileName,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::CannotReadDir(e) => write!(f, "cannot read directory: {e}"),
            SkipReason::NotUtf8 => f.write_str("name is not valid UTF-8"),
            SkipReason::CannotStat(e) => write!(f, "cannot stat: {e}"),
            SkipReason::Symlink => f.write_str("symbolic link (not synced)"),
            SkipReason::OtherPair => {
                f.write_str("another folder pair (not synced into this mirror)")
            }
            SkipReason::SpecialFile => f.write_str("special file (not synced)"),
            SkipReason::CannotReadMirrorDir => f.write_str("cannot read mirror directory"),
            SkipReason::ForeignDirName => {
                f.write_str("directory is not an encrypted name of this folder")
            }
            SkipReason::NotKluisFile => f.write_str("not a Kluis file (no .kls suffix)"),
            SkipReason::ForeignFileName => {
                f.write_str("file name is not an encrypted name of this folder")
            }
        }
    }
}

/// One ciphertext entry of the mirror, keyed by its plaintext path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    /// Relative ciphertext path in the mirror.
    pub cpath: String,
    /// Its stat.
    pub stat: Stat,
    /// Kluis file id (`kluis_format::peek_file_id`), read for new or changed
    /// files.
    pub file_id: Option<[u8; 16]>,
    /// A cloud placeholder (OneDrive Files-On-Demand) not present locally:
    /// remote-only, neither decrypted nor treated as deleted.
    pub offline: bool,
}

/// A sync client's conflicted copy of a ciphertext file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConflict {
    /// The conflicted copy's ciphertext path.
    pub cpath: String,
    /// The plaintext path of the file it is a copy of.
    pub of: String,
    /// Its stat.
    pub stat: Stat,
}

/// Snapshot of the plaintext tree.
#[derive(Debug, Default, Clone)]
pub struct LocalScan {
    /// Path → stat.
    pub entries: BTreeMap<String, Stat>,
    /// Skipped paths.
    pub skips: Vec<Skip>,
}

/// Snapshot of the mirror.
#[derive(Debug, Default, Clone)]
pub struct RemoteScan {
    /// Plaintext path → entry.
    pub entries: BTreeMap<String, RemoteEntry>,
    /// Sync-client conflicted copies.
    pub conflicts: Vec<SyncConflict>,
    /// Ciphertext names that are not ours (skipped, logged).
    pub skips: Vec<Skip>,
}

/// Ignore rules: built-in patterns plus the user's `.kluisignore`.
///
/// Patterns are globs on one name in which only `*` (any run of
/// characters) and `?` (one character) are special. They are compiled once
/// into a [`globset::GlobSet`], which matches a name against all of them in
/// time linear in its length: a hand-edited pattern such as `*a*a*a*a*b`
/// cannot make a scan backtrack for minutes.
#[derive(Debug, Clone)]
pub struct Ignore {
    set: globset::GlobSet,
}

impl Default for Ignore {
    fn default() -> Self {
        Ignore::with(&[])
    }
}

impl Ignore {
    /// Built-ins plus `.kluisignore` in `root` if present.
    pub fn load(root: &Path) -> Ignore {
        let user = fs::read_to_string(root.join(IGNORE_FILE)).unwrap_or_default();
        let user: Vec<&str> = user
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        Ignore::with(&user)
    }

    /// The built-ins plus `extra` (what a `.kluisignore` would add).
    pub fn with(extra: &[&str]) -> Ignore {
        let set = compile(BUILTIN_IGNORES.iter().chain(extra))
            // Only the regex engine's size limit can refuse a set, and only
            // for huge user patterns: keep the built-ins then.
            .or_else(|_| compile(BUILTIN_IGNORES))
            .unwrap_or_else(|_| globset::GlobSet::empty());
        Ignore { set }
    }

    /// Whether a plaintext path (`a/b/c`) is ignored: any of its components.
    pub fn is_ignored_path(&self, path: &str) -> bool {
        path.split('/').any(|c| self.is_ignored(c))
    }

    /// Whether a single name component is ignored.
    pub fn is_ignored(&self, name: &str) -> bool {
        self.set.is_match(name)
    }
}

/// One glob set of `patterns`, with everything but `*` and `?` literal.
fn compile<'a>(
    patterns: impl IntoIterator<Item = &'a &'a str>,
) -> Result<globset::GlobSet, globset::Error> {
    let mut set = globset::GlobSetBuilder::new();
    for p in patterns {
        let mut glob = String::with_capacity(p.len() + 8);
        let mut buf = [0u8; 4];
        for c in p.chars() {
            match c {
                // A run of `*` is one `*` on a single name (and globset
                // gives `**` a meaning of its own).
                '*' if glob.ends_with('*') => {}
                '*' | '?' => glob.push(c),
                // `[` `]` `{` `}` become one-character classes; `\` is
                // literal, as backslash escapes are off.
                c => glob.push_str(&globset::escape(c.encode_utf8(&mut buf))),
            }
        }
        // With every other character literal nothing is left to refuse,
        // but should globset refuse one, it alone is dropped.
        if let Ok(g) = globset::GlobBuilder::new(&glob)
            .literal_separator(true)
            .backslash_escape(false)
            .build()
        {
            set.add(g);
        }
    }
    set.build()
}

/// At most this many user patterns in `.kluisignore`.
pub const MAX_USER_IGNORES: usize = 500;

/// Why a set of ignore patterns was refused.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    /// One pattern breaks a rule.
    #[error("ignore pattern {pattern:?}: {reason}")]
    Invalid {
        /// The pattern, as given.
        pattern: String,
        /// The rule.
        reason: &'static str,
    },
    /// Too many patterns.
    #[error("at most {MAX_USER_IGNORES} ignore patterns")]
    TooMany,
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// Which file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The user's own patterns in `root`'s `.kluisignore` (comments and blank
/// lines left out); none when there is no such file.
pub fn user_ignores(root: &Path) -> Result<Vec<String>, IgnoreError> {
    let path = root.join(IGNORE_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(IgnoreError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Checks one pattern: a glob (`*`, `?`) on a single name, so no `/` or
/// `\\`, no control characters, at most 255 bytes, not a comment.
pub fn check_ignore_pattern(pattern: &str) -> Result<(), IgnoreError> {
    let bad = |reason| {
        Err(IgnoreError::Invalid {
            pattern: pattern.to_owned(),
            reason,
        })
    };
    let p = pattern.trim();
    if p.is_empty() {
        return bad("empty");
    }
    if p.len() > 255 {
        return bad("longer than 255 bytes");
    }
    if p.contains(['/', '\\']) {
        return bad("a pattern matches one name, so it cannot contain / or \\");
    }
    if p.chars().any(char::is_control) {
        return bad("control characters are not allowed");
    }
    if p.starts_with('#') {
        return bad("a line starting with # is a comment");
    }
    Ok(())
}

/// Replaces the user's patterns in `root`'s `.kluisignore` (this device's
/// alone; it is not synced), atomically: a temp file in `root`, fsynced,
/// renamed over the old one, and the directory fsynced. Every pattern is
/// checked first; on any error the old file is untouched. The running
/// agent's watcher sees the change and reconciles; paths the new rules
/// match are then left alone on this device, never deleted elsewhere.
pub fn set_user_ignores(root: &Path, patterns: &[String]) -> Result<(), IgnoreError> {
    if patterns.len() > MAX_USER_IGNORES {
        return Err(IgnoreError::TooMany);
    }
    let mut text = String::from(
        "# Kluis: names this device does not sync (one glob per line; * and ? match\n\
         # within one name). Written by Kluis; lines starting with # are comments.\n",
    );
    for p in patterns {
        check_ignore_pattern(p)?;
        text.push_str(p.trim());
        text.push('\n');
    }
    let path = root.join(IGNORE_FILE);
    let io = |source| IgnoreError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = root.join(format!("{TEMP_PREFIX}ignore"));
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &path)?;
        #[cfg(unix)]
        fs::File::open(root)?.sync_all()?;
        Ok(())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io(e)
    })
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

/// The lock file every pair keeps in its plaintext root.
pub const PAIR_LOCK_FILE: &str = ".kluis-lock";

/// Scan the plaintext tree, one directory at a time on one thread per
/// core (at most four): a scan is mostly `getdents` and `statx`, and on a
/// first sync it is the only work until the plan is made.
pub fn scan_local(root: &Path, ignore: &Ignore) -> std::io::Result<LocalScan> {
    fs::metadata(root)?;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let queue = Mutex::new(DirQueue {
        dirs: vec![(root.to_path_buf(), String::new())],
        busy: 0,
    });
    let more = Condvar::new();
    let parts: Vec<std::thread::Result<LocalWalk>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| walk_queue(&queue, &more, ignore)))
            .collect();
        workers.into_iter().map(|w| w.join()).collect()
    });
    let mut entries = Vec::new();
    let mut skips = Vec::new();
    for part in parts {
        let part = part.map_err(|_| std::io::Error::other("a scan thread failed"))?;
        entries.extend(part.entries);
        skips.extend(part.skips);
    }
    // Threads finish directories in no set order: sort what is reported.
    skips.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(LocalScan {
        entries: entries.into_iter().collect(),
        skips,
    })
}

/// Directories still to read, and how many are being read.
struct DirQueue {
    dirs: Vec<(PathBuf, String)>,
    busy: usize,
}

/// What one scan thread found.
#[derive(Default)]
struct LocalWalk {
    entries: Vec<(String, Stat)>,
    skips: Vec<Skip>,
}

/// A scan thread: reads directories from `queue` until it is empty and no
/// other thread is reading one (which could add more).
fn walk_queue(queue: &Mutex<DirQueue>, more: &Condvar, ignore: &Ignore) -> LocalWalk {
    let mut out = LocalWalk::default();
    let mut found = Vec::new();
    let lock = || queue.lock().unwrap_or_else(|e| e.into_inner());
    let mut q = lock();
    loop {
        let Some((dir, prefix)) = q.dirs.pop() else {
            if q.busy == 0 {
                more.notify_all();
                return out;
            }
            q = more.wait(q).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        q.busy += 1;
        drop(q);
        read_local_dir(&dir, &prefix, ignore, &mut out, &mut found);
        q = lock();
        q.busy -= 1;
        if !found.is_empty() {
            q.dirs.append(&mut found);
            more.notify_all();
        }
    }
}

/// One directory of the plaintext tree: its entries go to `out`, its
/// subdirectories (to read next) to `subdirs`.
fn read_local_dir(
    dir: &Path,
    prefix: &str,
    ignore: &Ignore,
    out: &mut LocalWalk,
    subdirs: &mut Vec<(PathBuf, String)>,
) {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            out.skips.push(Skip {
                path: prefix.to_owned(),
                reason: SkipReason::CannotReadDir(e.to_string()),
            });
            return;
        }
    };
    for ent in rd.flatten() {
        let Some(name) = ent.file_name().to_str().map(str::to_owned) else {
            out.skips.push(Skip {
                path: join(prefix, &ent.file_name().to_string_lossy()),
                reason: SkipReason::NotUtf8,
            });
            continue;
        };
        if ignore.is_ignored(&name) || (prefix.is_empty() && name == IGNORE_FILE) {
            continue;
        }
        let rel = join(prefix, &name);
        // lstat relative to the directory being read (std uses its fd):
        // no walk of the whole path for every entry.
        let md = match ent.metadata() {
            Ok(m) => m,
            Err(e) => {
                out.skips.push(Skip {
                    path: rel,
                    reason: SkipReason::CannotStat(e.to_string()),
                });
                continue;
            }
        };
        let ft = md.file_type();
        if ft.is_symlink() {
            out.skips.push(Skip {
                path: rel,
                reason: SkipReason::Symlink,
            });
        } else if ft.is_dir() && ent.path().join(PAIR_LOCK_FILE).exists() {
            // The plaintext root of another pair nested in this one (a
            // folder shared with you under "Shared with me"): that pair's
            // engine owns it, this one must not mirror it.
            out.skips.push(Skip {
                path: rel,
                reason: SkipReason::OtherPair,
            });
        } else if ft.is_dir() {
            out.entries.push((rel.clone(), Stat::from_metadata(&md)));
            subdirs.push((ent.path(), rel));
        } else if ft.is_file() {
            out.entries.push((rel, Stat::from_metadata(&md)));
        } else {
            out.skips.push(Skip {
                path: rel,
                reason: SkipReason::SpecialFile,
            });
        }
    }
}

#[cfg(windows)]
fn is_offline(md: &fs::Metadata) -> bool {
    use std::os::windows::fs::MetadataExt;
    // FILE_ATTRIBUTE_RECALL_ON_OPEN | FILE_ATTRIBUTE_RECALL_ON_DATA_ACCESS | FILE_ATTRIBUTE_OFFLINE
    md.file_attributes() & (0x0004_0000 | 0x0040_0000 | 0x1000) != 0
}
#[cfg(not(windows))]
fn is_offline(_md: &fs::Metadata) -> bool {
    false
}

/// Read the 16-byte Kluis file id from the start of the file's header
/// ([`kluis_format::peek_file_id`]); `None` when it cannot be read or is not
/// a Kluis file.
pub fn read_file_id(path: &Path) -> Option<[u8; 16]> {
    use std::io::Read;
    let mut f = fs::File::open(path).ok()?;
    let mut b = [0u8; kluis_format::FILE_ID_PEEK_LEN];
    f.read_exact(&mut b).ok()?;
    kluis_format::peek_file_id(&b).ok()
}

/// Scan the mirror. `resolve_hashed` gives the plaintext name of a hashed
/// long file name (from the index, or by opening the header).
pub fn scan_remote(
    root: &Path,
    names: &NameCipher,
    resolve_hashed: &mut dyn FnMut(&str, &Path) -> Option<String>,
) -> std::io::Result<RemoteScan> {
    let mut out = RemoteScan::default();
    fs::metadata(root)?;
    walk_remote(root, "", "", names, resolve_hashed, &mut out);
    Ok(out)
}

fn decode_dir(names: &NameCipher, stem: &str, dir: &Path) -> Option<String> {
    if NameCipher::is_hashed(stem) {
        let ct = fs::read_to_string(dir.join(DIR_NAME_MARKER)).ok()?;
        let name = names.decrypt_b32(ct.trim()).ok()?;
        (names.encrypt_component(&name).ok()?.stem() == stem).then_some(name)
    } else {
        names.decrypt_b32(stem).ok()
    }
}

fn walk_remote(
    dir: &Path,
    cprefix: &str,
    pprefix: &str,
    names: &NameCipher,
    resolve_hashed: &mut dyn FnMut(&str, &Path) -> Option<String>,
    out: &mut RemoteScan,
) {
    let Ok(rd) = fs::read_dir(dir) else {
        out.skips.push(Skip {
            path: cprefix.to_owned(),
            reason: SkipReason::CannotReadMirrorDir,
        });
        return;
    };
    for ent in rd.flatten() {
        let Some(cname) = ent.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if cname.starts_with(KLUIS_PREFIX) || cname == FOLDER_META_FILE {
            continue;
        }
        let crel = join(cprefix, &cname);
        let Ok(md) = ent.metadata() else {
            continue;
        };
        let stat = Stat::from_metadata(&md);
        if md.is_dir() {
            match decode_dir(names, &cname, &ent.path()) {
                Some(pname) => {
                    let prel = join(pprefix, &pname);
                    out.entries.insert(
                        prel.clone(),
                        RemoteEntry {
                            cpath: crel.clone(),
                            stat,
                            file_id: None,
                            offline: false,
                        },
                    );
                    walk_remote(&ent.path(), &crel, &prel, names, resolve_hashed, out);
                }
                None => out.skips.push(Skip {
                    path: crel,
                    reason: SkipReason::ForeignDirName,
                }),
            }
            continue;
        }
        if !md.is_file() {
            continue;
        }
        let Some(base) = cname.strip_suffix(FILE_SUFFIX) else {
            out.skips.push(Skip {
                path: crel,
                reason: SkipReason::NotKluisFile,
            });
            continue;
        };
        let (stem, extra) = names::split_sync_suffix(base);
        let pname = if NameCipher::is_hashed(stem) {
            resolve_hashed(&crel, &ent.path())
                .filter(|n| names.encrypt_component(n).is_ok_and(|e| e.stem() == stem))
        } else {
            names.decrypt_b32(stem).ok()
        };
        let Some(pname) = pname else {
            out.skips.push(Skip {
                path: crel,
                reason: SkipReason::ForeignFileName,
            });
            continue;
        };
        let prel = join(pprefix, &pname);
        if extra.is_empty() {
            out.entries.insert(
                prel,
                RemoteEntry {
                    cpath: crel,
                    stat,
                    file_id: None,
                    offline: is_offline(&md),
                },
            );
        } else {
            out.conflicts.push(SyncConflict {
                cpath: crel,
                of: prel,
                stat,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kluis's own files in the mirror root (FORMAT.md §8.1; the group key
    /// files of §8.7 in `.kluis-groups/`) are neither entries, conflicts
    /// nor skipped foreign names.
    #[test]
    fn kluis_own_files_in_the_mirror_are_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let groups = dir.path().join(".kluis-groups");
        fs::create_dir(&groups).unwrap();
        fs::write(groups.join("0123456789abcdef0123456789abcdef"), b"x").unwrap();
        fs::write(groups.join("0123456789abcdef0123456789abcdef (1)"), b"x").unwrap();
        fs::write(dir.path().join(FOLDER_META_FILE), b"x").unwrap();
        let names = NameCipher::new([1; 16], &[2; 32]);
        let s = scan_remote(dir.path(), &names, &mut |_, _| None).unwrap();
        assert!(s.entries.is_empty() && s.conflicts.is_empty() && s.skips.is_empty());
    }

    /// The scan threads share out directories as they find them: a deep
    /// chain and a wide level are both seen whole, and what is reported
    /// does not depend on which thread read what.
    #[test]
    fn a_threaded_scan_sees_every_entry_of_deep_and_wide_trees() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let mut want = std::collections::BTreeSet::new();
        let mut deep = String::new();
        for d in 0..12 {
            deep = join(&deep, &format!("d{d}"));
            fs::create_dir(root.join(&deep)).unwrap();
            want.insert(deep.clone());
            let f = join(&deep, "f.txt");
            fs::write(root.join(&f), b"x").unwrap();
            want.insert(f);
        }
        for w in 0..40 {
            let dir = format!("w{w:02}");
            fs::create_dir(root.join(&dir)).unwrap();
            want.insert(dir.clone());
            for i in 0..5 {
                let f = format!("{dir}/n{i}");
                fs::write(root.join(&f), b"y").unwrap();
                want.insert(f);
            }
            // Noise and a symlink in every directory.
            fs::write(root.join(&dir).join(".DS_Store"), b"").unwrap();
            #[cfg(unix)]
            std::os::unix::fs::symlink("n0", root.join(&dir).join("link")).unwrap();
        }
        let first = scan_local(root, &Ignore::default()).unwrap();
        let got: std::collections::BTreeSet<String> = first.entries.keys().cloned().collect();
        assert_eq!(got, want);
        assert_eq!(first.entries["w07/n3"].kind, Kind::File);
        assert_eq!(first.entries["d0/d1/d2"].kind, Kind::Dir);
        #[cfg(unix)]
        {
            let skipped: Vec<&str> = first.skips.iter().map(|s| s.path.as_str()).collect();
            let expect: Vec<String> = (0..40).map(|w| format!("w{w:02}/link")).collect();
            assert_eq!(skipped, expect, "every symlink, in path order");
        }
        for _ in 0..5 {
            let again = scan_local(root, &Ignore::default()).unwrap();
            assert_eq!(again.entries, first.entries);
            assert_eq!(again.skips, first.skips);
        }
    }

    #[test]
    fn a_missing_root_is_an_error_not_an_empty_tree() {
        let t = tempfile::tempdir().unwrap();
        assert!(scan_local(&t.path().join("gone"), &Ignore::default()).is_err());
    }

    #[test]
    fn globs() {
        let ig = Ignore::load(Path::new("/nonexistent"));
        for n in [
            ".~lock.report.odt#",
            "~$report.docx",
            ".notes.txt.swp",
            "a~",
            ".DS_Store",
            "4913",
            ".kluis-tmp-1",
            "~WRL0001.tmp",
            "~WRD0002.tmp",
            "ppt7A3F.tmp",
        ] {
            assert!(ig.is_ignored(n), "{n}");
        }
        for n in ["report.odt", "notes.txt", "a~b", "x.swpx"] {
            assert!(!ig.is_ignored(n), "{n}");
        }
    }

    #[test]
    fn only_star_and_question_mark_are_special() {
        let ig = Ignore::with(&["[ab].txt", "{x,y}", "a\\b", "c**d", "e?f"]);
        for n in ["[ab].txt", "{x,y}", "a\\b", "cd", "c-anything-d", "eXf"] {
            assert!(ig.is_ignored(n), "{n}");
        }
        for n in ["a.txt", "x", "y", "ab", "c", "ef", "eXYf"] {
            assert!(!ig.is_ignored(n), "{n}");
        }
        assert!(Ignore::with(&["**"]).is_ignored("anything"));
    }

    #[test]
    fn a_pathological_pattern_is_matched_in_linear_time() {
        // A backtracking matcher tries every way to place the twenty `a`s
        // among the name's 200 letters (about 10^27): it would never end.
        let pattern = format!("{}b", "*a".repeat(20));
        let ig = Ignore::with(&[&pattern]);
        assert!(!ig.is_ignored(&"a".repeat(200)));
        assert!(ig.is_ignored(&format!("{}b", "a".repeat(200))));
    }

    #[test]
    fn user_ignores_round_trip_and_a_bad_pattern_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert!(user_ignores(root).unwrap().is_empty(), "no file: no rules");
        set_user_ignores(root, &["*.log".into(), " build ".into()]).unwrap();
        assert_eq!(user_ignores(root).unwrap(), ["*.log", "build"]);
        let ig = Ignore::load(root);
        assert!(ig.is_ignored_path("a/build/x.txt") && ig.is_ignored("x.log"));
        assert!(!ig.is_ignored("x.txt"));
        for bad in ["", "a/b", "a\\b", "#x", "x\ny", &"x".repeat(256)] {
            let e = set_user_ignores(root, &["ok".into(), bad.to_owned()]).unwrap_err();
            assert!(matches!(e, IgnoreError::Invalid { .. }), "{bad:?}: {e}");
        }
        let many = vec!["x".to_owned(); MAX_USER_IGNORES + 1];
        assert!(matches!(
            set_user_ignores(root, &many),
            Err(IgnoreError::TooMany)
        ));
        assert_eq!(user_ignores(root).unwrap(), ["*.log", "build"], "unchanged");
        let leftovers = fs::read_dir(root)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
            .count();
        assert_eq!(leftovers, 0);
        set_user_ignores(root, &[]).unwrap();
        assert!(user_ignores(root).unwrap().is_empty());
    }
}

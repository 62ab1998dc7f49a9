//! The transactional index of the last synced state: SQLite in WAL mode.
//! One row per synced path records what both sides looked like right after
//! the last sync, so the planner can tell who changed what.
//!
//! `synchronous=NORMAL` in WAL mode survives a killed process (the case the
//! crash test drives); after a power loss the last commits may be lost, which
//! the planner recovers from (both sides "changed" with equal content is
//! merely recorded).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::SyncError;
use crate::scan::{Kind, Stat};

/// One synced path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// File or directory.
    pub kind: Kind,
    /// Plaintext side at the last sync.
    pub l_size: u64,
    /// Plaintext mtime (ns).
    pub l_mtime: i64,
    /// Plaintext inode.
    pub l_ino: u64,
    /// SHA-256 of the plaintext (files).
    pub hash: Vec<u8>,
    /// Ciphertext path.
    pub cpath: String,
    /// Ciphertext size.
    pub r_size: u64,
    /// Ciphertext mtime (ns).
    pub r_mtime: i64,
    /// Kluis file id (files).
    pub file_id: Option<[u8; 16]>,
}

impl IndexEntry {
    /// A file synced just now: the plaintext as stated (`local`) and the
    /// SHA-256 of its content, and its ciphertext at `cpath` as stated
    /// (`remote`) with the file id in its header. The one place an entry
    /// is made from what the executor wrote or read.
    pub fn file(
        local: &Stat,
        hash: Vec<u8>,
        cpath: String,
        remote: &Stat,
        file_id: Option<[u8; 16]>,
    ) -> Self {
        IndexEntry {
            kind: Kind::File,
            l_size: local.size,
            l_mtime: local.mtime,
            l_ino: local.ino,
            hash,
            cpath,
            r_size: remote.size,
            r_mtime: remote.mtime,
            file_id,
        }
    }

    /// A directory that exists on both sides; only the plaintext's mtime
    /// and inode are kept.
    pub fn dir(local: &Stat, cpath: String) -> Self {
        IndexEntry {
            kind: Kind::Dir,
            l_size: 0,
            l_mtime: local.mtime,
            l_ino: local.ino,
            hash: Vec::new(),
            cpath,
            r_size: 0,
            r_mtime: 0,
            file_id: None,
        }
    }
}

/// The index database.
pub struct Index {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries(
  path TEXT PRIMARY KEY NOT NULL,
  is_dir INTEGER NOT NULL,
  l_size INTEGER NOT NULL, l_mtime INTEGER NOT NULL, l_ino INTEGER NOT NULL,
  hash BLOB NOT NULL,
  cpath TEXT NOT NULL, r_size INTEGER NOT NULL, r_mtime INTEGER NOT NULL,
  file_id BLOB
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv(k TEXT PRIMARY KEY NOT NULL, v BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS superseded(file_id BLOB PRIMARY KEY NOT NULL, path TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS superseded_path ON superseded(path);
";

impl Index {
    /// Open or create.
    pub fn open(path: &Path) -> Result<Index, SyncError> {
        let err = |source| SyncError::Index {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Index {
            conn,
            path: path.to_owned(),
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> SyncError + '_ {
        move |source| SyncError::Index {
            path: self.path.clone(),
            source,
        }
    }

    /// Everything, sorted by path.
    pub fn load(&self) -> Result<BTreeMap<String, IndexEntry>, SyncError> {
        self.query("SELECT path,is_dir,l_size,l_mtime,l_ino,hash,cpath,r_size,r_mtime,file_id FROM entries WHERE ?1 = ?1", "")
    }

    fn query(&self, sql: &str, arg: &str) -> Result<BTreeMap<String, IndexEntry>, SyncError> {
        let mut st = self.conn.prepare_cached(sql).map_err(self.err())?;
        let rows = st
            .query_map([arg], |r| {
                let fid: Option<Vec<u8>> = r.get(9)?;
                Ok((
                    r.get::<_, String>(0)?,
                    IndexEntry {
                        kind: if r.get::<_, i64>(1)? != 0 {
                            Kind::Dir
                        } else {
                            Kind::File
                        },
                        l_size: r.get::<_, i64>(2)? as u64,
                        l_mtime: r.get(3)?,
                        l_ino: r.get::<_, i64>(4)? as u64,
                        hash: r.get(5)?,
                        cpath: r.get(6)?,
                        r_size: r.get::<_, i64>(7)? as u64,
                        r_mtime: r.get(8)?,
                        file_id: fid.and_then(|v| v.try_into().ok()),
                    },
                ))
            })
            .map_err(self.err())?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (p, e) = row.map_err(self.err())?;
            out.insert(p, e);
        }
        Ok(out)
    }

    /// How many files (not directories) are synced.
    pub fn count_files(&self) -> Result<usize, SyncError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM entries WHERE is_dir = 0")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(self.err())?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Insert or replace one entry.
    pub fn put(&self, path: &str, e: &IndexEntry) -> Result<(), SyncError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO entries VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    path,
                    i64::from(e.kind == Kind::Dir),
                    e.l_size as i64,
                    e.l_mtime,
                    e.l_ino as i64,
                    e.hash,
                    e.cpath,
                    e.r_size as i64,
                    e.r_mtime,
                    e.file_id.map(|f| f.to_vec()),
                ])
            })
            .map_err(self.err())?;
        Ok(())
    }

    /// Insert or replace many entries in one transaction.
    pub fn put_many(&mut self, entries: &[(String, IndexEntry)]) -> Result<(), SyncError> {
        let path = self.path.clone();
        let err = |source| SyncError::Index {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO entries VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                )
                .map_err(err)?;
            for (p, e) in entries {
                st.execute(params![
                    p,
                    i64::from(e.kind == Kind::Dir),
                    e.l_size as i64,
                    e.l_mtime,
                    e.l_ino as i64,
                    e.hash,
                    e.cpath,
                    e.r_size as i64,
                    e.r_mtime,
                    e.file_id.map(|f| f.to_vec()),
                ])
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// One entry.
    pub fn get(&self, path: &str) -> Result<Option<IndexEntry>, SyncError> {
        Ok(self
            .query("SELECT path,is_dir,l_size,l_mtime,l_ino,hash,cpath,r_size,r_mtime,file_id FROM entries WHERE path = ?1", path)?
            .remove(path))
    }

    /// `path` and everything below it ('0' sorts right after '/').
    pub fn load_prefix(&self, path: &str) -> Result<BTreeMap<String, IndexEntry>, SyncError> {
        self.query(
            "SELECT path,is_dir,l_size,l_mtime,l_ino,hash,cpath,r_size,r_mtime,file_id FROM entries \
             WHERE path = ?1 OR (path >= ?1 || '/' AND path < ?1 || '0')",
            path,
        )
    }

    /// Remove one entry.
    pub fn remove(&self, path: &str) -> Result<(), SyncError> {
        self.conn
            .execute("DELETE FROM entries WHERE path = ?1", [path])
            .map_err(self.err())?;
        self.conn
            .execute("DELETE FROM superseded WHERE path = ?1", [path])
            .map_err(self.err())?;
        Ok(())
    }

    /// This device replaced the version of `path` whose file id was `old`
    /// with one of its own: remembered (one per path) so that the old
    /// version, moved elsewhere by another device, is known for what it is
    /// ([`crate::Operation::FollowRename`]).
    pub fn set_superseded(&self, old: [u8; 16], path: &str) -> Result<(), SyncError> {
        self.conn
            .execute("DELETE FROM superseded WHERE path = ?1", [path])
            .and_then(|_| {
                self.conn.execute(
                    "INSERT OR REPLACE INTO superseded VALUES (?1, ?2)",
                    params![old.to_vec(), path],
                )
            })
            .map_err(self.err())?;
        Ok(())
    }

    /// Of `ids`, those this device superseded, with the path of the version
    /// that replaced each. (No query per id while nothing was superseded,
    /// as on a first sync.)
    pub fn superseded(
        &self,
        ids: &[[u8; 16]],
    ) -> Result<std::collections::HashMap<[u8; 16], String>, SyncError> {
        let any: bool = self
            .conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM superseded)")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(self.err())?;
        if !any || ids.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let mut st = self
            .conn
            .prepare_cached("SELECT path FROM superseded WHERE file_id = ?1")
            .map_err(self.err())?;
        let mut out = std::collections::HashMap::new();
        for id in ids {
            let p: Option<String> = st
                .query_row([id.to_vec()], |r| r.get(0))
                .optional()
                .map_err(self.err())?;
            if let Some(p) = p {
                out.insert(*id, p);
            }
        }
        Ok(out)
    }

    /// Move `from` and everything below it to `to`, in one transaction.
    /// `cpath_of` gives the new ciphertext path of a moved entry.
    pub fn rename_tree(
        &mut self,
        from: &str,
        to: &str,
        mut fix: impl FnMut(&str, &mut IndexEntry),
    ) -> Result<(), SyncError> {
        let moved = self.load_prefix(from)?;
        let path = self.path.clone();
        let err = |source| SyncError::Index {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        for (p, mut e) in moved {
            let np = format!("{to}{}", &p[from.len()..]);
            fix(&np, &mut e);
            tx.execute("DELETE FROM entries WHERE path = ?1", [&p])
                .map_err(err)?;
            tx.execute(
                "INSERT OR REPLACE INTO entries VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                params![
                    np,
                    i64::from(e.kind == Kind::Dir),
                    e.l_size as i64,
                    e.l_mtime,
                    e.l_ino as i64,
                    e.hash,
                    e.cpath,
                    e.r_size as i64,
                    e.r_mtime,
                    e.file_id.map(|f| f.to_vec()),
                ],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(())
    }

    /// A small key-value store (device settings, state).
    pub fn get_kv(&self, k: &str) -> Result<Option<Vec<u8>>, SyncError> {
        self.conn
            .query_row("SELECT v FROM kv WHERE k = ?1", [k], |r| r.get(0))
            .optional()
            .map_err(self.err())
    }

    /// Set a key.
    pub fn set_kv(&self, k: &str, v: &[u8]) -> Result<(), SyncError> {
        self.conn
            .execute("INSERT OR REPLACE INTO kv VALUES (?1, ?2)", params![k, v])
            .map_err(self.err())?;
        Ok(())
    }
}

//! Directories: made on either side (one at a time, or a run of new mirror
//! directories together), recorded, removed once empty, forgotten.

use super::*;

impl<R: rand_core::CryptoRng> Exec<'_, R> {
    /// Create the encrypted directory `path` and its parents (with name
    /// markers for hashed names). Returns its ciphertext path. With
    /// [`Durability::Batch`] nothing is fsynced: the caller covers the new
    /// directories (see [`Exec::mkdir_remote_batch`]) or a syncfs does.
    pub(super) fn ensure_remote_dir(
        &mut self,
        path: &str,
        durability: Durability,
    ) -> Result<String, ItemError> {
        let mut cpath = String::new();
        if path.is_empty() {
            return Ok(cpath);
        }
        for comp in path.split('/') {
            let enc = self
                .names
                .encrypt_component(comp)
                .map_err(|e| fail(path, ItemErrorKind::Failed, e))?;
            if !cpath.is_empty() {
                cpath.push('/');
            }
            cpath.push_str(enc.stem());
            let full = self.mirror.join(&cpath);
            if !full.is_dir() {
                fs::create_dir(&full)
                    .or_else(|e| if full.is_dir() { Ok(()) } else { Err(e) })
                    .map_err(io_fail(path))?;
                if let Encoded::Hashed { ct_b32, .. } = &enc {
                    self.write_marker(&full, ct_b32.as_bytes(), durability)
                        .map_err(|e| write_fail(path, e, "name marker changed"))?;
                }
                if let Some(parent) = full.parent() {
                    self.sync_dir(parent, durability)?;
                }
            }
        }
        Ok(cpath)
    }

    /// The name marker of a directory with a hashed name, through the one
    /// write path. Its bytes follow from the name, so whoever wrote one
    /// already wrote the same: it is simply replaced.
    pub(super) fn write_marker(
        &mut self,
        dir: &Path,
        bytes: &[u8],
        durability: Durability,
    ) -> Result<(), WriteError> {
        let mut temp = Temp::create(dir, &mut *self.rng)?;
        temp.file()?.write_all(bytes)?;
        write::commit(
            temp,
            &dir.join(DIR_NAME_MARKER),
            Expect::Any,
            durability,
            || true,
        )?;
        Ok(())
    }

    /// The `MkdirRemote` operations of `paths`, together: the directories
    /// are made first, then each parent that received one is fsynced once
    /// (not once per directory), and only then are they recorded.
    pub(super) fn mkdir_remote_batch(&mut self, paths: &[String]) -> Vec<ItemResult> {
        let made: Vec<Result<String, ItemError>> = paths
            .iter()
            .map(|p| self.ensure_remote_dir(p, Durability::Batch))
            .collect();
        let durable = self.durability == Durability::Each;
        let mut parents = std::collections::BTreeSet::new();
        for c in made.iter().flatten() {
            let mut d = self.mirror.join(c);
            // A hashed name's marker file (rare: long names) goes to disk
            // with its directory.
            let marker = d.join(DIR_NAME_MARKER);
            if durable && marker.is_file() {
                parents.insert(d.clone());
                if let Err(e) = File::open(&marker).and_then(|f| f.sync_all()) {
                    return paths
                        .iter()
                        .map(|p| Err(fail(p, ItemErrorKind::Failed, &e)))
                        .collect();
                }
            }
            while d.pop() && d.starts_with(self.mirror) {
                if !parents.insert(d.clone()) {
                    break;
                }
            }
        }
        let failed = write::sync_dirs(&parents, self.durability)
            .err()
            .map(|(d, e)| fail(&d.display().to_string(), ItemErrorKind::Failed, e));
        paths
            .iter()
            .zip(made)
            .map(|(path, m)| {
                m?;
                if let Some(e) = &failed {
                    return Err(e.clone());
                }
                self.record_dir(path)?;
                Ok(self.activity("mkdir", path, None))
            })
            .collect()
    }

    pub(super) fn ensure_local_dir(&self, path: &str) -> Result<(), ItemError> {
        if !path.is_empty() {
            fs::create_dir_all(self.plain.join(path)).map_err(io_fail(path))?;
        }
        Ok(())
    }

    pub(super) fn record_dir(&mut self, path: &str) -> Result<(), ItemError> {
        let l = stat_of(&self.plain.join(path)).map_err(io_fail(path))?;
        let cpath = self.cpath(path, Kind::Dir)?;
        self.index_put(path, &IndexEntry::dir(&l, cpath))
    }

    pub(super) fn mkdir_remote(&mut self, path: &str) -> ItemResult {
        self.ensure_remote_dir(path, self.durability)?;
        self.record_dir(path)?;
        Ok(self.activity("mkdir", path, None))
    }

    pub(super) fn mkdir_local(&mut self, path: &str) -> ItemResult {
        self.ensure_local_dir(path)?;
        self.record_dir(path)?;
        Ok(self.activity("mkdir", path, None))
    }

    pub(super) fn record(&mut self, path: &str) -> ItemResult {
        self.record_dir(path)?;
        Ok(self.activity("recorded", path, None))
    }

    pub(super) fn rmdir_remote(&mut self, path: &str) -> ItemResult {
        let cfull = self.mirror.join(self.cpath(path, Kind::Dir)?);
        let _ = fs::remove_file(cfull.join(DIR_NAME_MARKER));
        match fs::remove_dir(&cfull) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(path, ItemErrorKind::Failed, e)),
        }
        self.index_remove(path)?;
        Ok(self.activity("rmdir", path, None))
    }

    pub(super) fn rmdir_local(&mut self, path: &str) -> ItemResult {
        match fs::remove_dir(self.plain.join(path)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(path, ItemErrorKind::Failed, e)),
        }
        self.index_remove(path)?;
        Ok(self.activity("rmdir", path, None))
    }

    pub(super) fn forget(&mut self, path: &str) -> ItemResult {
        self.index_remove(path)?;
        Ok(self.activity("forgotten", path, None))
    }
}

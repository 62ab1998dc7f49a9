//! Deletions: a ciphertext deleted, a plaintext moved to the Kluis trash
//! (each only if it is still what the index says), and the trash's upkeep.

use super::*;

impl<R: rand_core::CryptoRng> Exec<'_, R> {
    pub(super) fn delete_remote(&mut self, path: &str) -> ItemResult {
        let idx = self
            .index
            .get(path)
            .map_err(|e| fail(path, ItemErrorKind::Failed, e))?;
        let cfull = self.mirror.join(self.cpath(path, Kind::File)?);
        if !matches(&cfull, idx.as_ref().map(|i| (i.r_size, i.r_mtime))) {
            return Err(Self::changed(path, "ciphertext changed before deleting"));
        }
        fs::remove_file(&cfull).map_err(io_fail(path))?;
        if let Some(d) = cfull.parent() {
            self.sync_dir(d, self.durability)?;
        }
        self.index_remove(path)?;
        Ok(self.activity("deleted", path, None))
    }

    pub(super) fn trash_local(&mut self, path: &str) -> ItemResult {
        let idx = self
            .index
            .get(path)
            .map_err(|e| fail(path, ItemErrorKind::Failed, e))?;
        let lp = self.plain.join(path);
        if !matches(&lp, idx.as_ref().map(|i| (i.l_size, i.l_mtime))) {
            return Err(Self::changed(path, "plaintext changed before trashing"));
        }
        let dest = self.trash_dest(path)?;
        fs::rename(&lp, &dest).map_err(io_fail(path))?;
        if let Some(d) = lp.parent() {
            self.sync_dir(d, self.durability)?;
        }
        self.index_remove(path)?;
        Ok(self.activity("trashed", path, None))
    }

    /// A free path for `rel` in today's Kluis trash, its directory made.
    pub(super) fn trash_dest(&self, rel: &str) -> Result<PathBuf, ItemError> {
        let day = copy_names::trash_day(self.now);
        let mut n = 1;
        let mut dest = self.plain.join(copy_names::trash_path(&day, rel, n));
        while fs::symlink_metadata(&dest).is_ok() {
            n += 1;
            dest = self.plain.join(copy_names::trash_path(&day, rel, n));
        }
        if let Some(d) = dest.parent() {
            fs::create_dir_all(d).map_err(io_fail(rel))?;
        }
        Ok(dest)
    }
}

/// Remove trash days older than `days` (by folder name `YYYY-MM-DD`).
pub fn purge_trash(plain: &Path, now: i64, days: u32) {
    let Ok(rd) = fs::read_dir(plain.join(TRASH_DIR)) else {
        return;
    };
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if copy_names::is_expired_trash_day(&name, now, days) {
            let _ = fs::remove_dir_all(ent.path());
        }
    }
}

//! An edit follows a rename made on another device (issue 17, point 11):
//! see [`crate::Operation::FollowRename`].

use super::*;

impl<R: rand_core::CryptoRng> Exec<'_, R> {
    /// Move the plaintext of `from` to `to`, encrypt it over the older
    /// version another device moved there, then drop `from` from the index
    /// and this device's ciphertext under the old name (if it is still the
    /// one this device wrote). Each step leaves a state the planner
    /// finishes without loss: after the move alone, `to` is a merge of
    /// different contents (the edit becomes a conflict copy), and after the
    /// upload, the old name is a plain deletion of a synced file.
    pub(super) fn follow_rename(&mut self, from: &str, to: &str) -> ItemResult {
        let idx = self
            .index
            .get(from)
            .map_err(|e| fail(from, ItemErrorKind::Failed, e))?
            .ok_or_else(|| Self::changed(from, "no longer synced"))?;
        let lf = self.plain.join(from);
        let lt = self.plain.join(to);
        let cto = self.mirror.join(self.cpath(to, Kind::File)?);
        let moved = stat_of(&cto).map_err(io_fail(to))?;
        let (tparent, _) = split_parent(to);
        self.ensure_local_dir(tparent)?;
        match write::rename_new(&lf, &lt) {
            Ok(true) => {}
            Ok(false) => return Err(Self::changed(to, "plaintext appeared before moving")),
            Err(e) => return Err(fail(from, ItemErrorKind::Failed, e)),
        }
        self.sync_dir(&self.plain.join(tparent), self.durability)?;
        let (fparent, _) = split_parent(from);
        if fparent != tparent {
            self.sync_dir(&self.plain.join(fparent), self.durability)?;
        }
        self.upload_over(to, Some((moved.size, moved.mtime)))?;
        self.index_remove(from)?;
        let cfrom = self.mirror.join(&idx.cpath);
        if matches(&cfrom, Some((idx.r_size, idx.r_mtime))) {
            fs::remove_file(&cfrom).map_err(io_fail(from))?;
            if let Some(d) = cfrom.parent() {
                self.sync_dir(d, self.durability)?;
            }
        }
        Ok(self.activity(
            "renamed",
            from,
            Some(format!(
                "{to} (the edit followed a rename on another device)"
            )),
        ))
    }
}

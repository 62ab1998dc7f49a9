//! Renames on either side: a file or directory moved in the plaintext
//! folder or in the mirror is moved on the other side, never re-encrypted
//! (but for a file that gets a hashed name, whose real name is in its
//! header).

use super::*;

impl<R: rand_core::CryptoRng> Exec<'_, R> {
    pub(super) fn rename_remote(&mut self, from: &str, to: &str, kind: Kind) -> ItemResult {
        let (_, to_name) = split_parent(to);
        let to_hashed = matches!(
            self.names.encrypt_component(to_name),
            Ok(Encoded::Hashed { .. })
        );
        if kind == Kind::File && to_hashed {
            // A hashed file name needs the real name in the header: encrypt
            // anew, then delete the old ciphertext.
            let a = self.upload(to)?;
            self.delete_remote(from)?;
            return Ok(a);
        }
        let cfrom = self.mirror.join(self.cpath(from, kind)?);
        let (tparent, _) = split_parent(to);
        let cparent = self.ensure_remote_dir(tparent, self.durability)?;
        let ctpath = self.cpath(to, kind)?;
        let cto = self.mirror.join(&ctpath);
        if fs::symlink_metadata(&cto).is_ok() {
            return Err(Self::changed(to, "rename target exists in the mirror"));
        }
        fs::rename(&cfrom, &cto).map_err(io_fail(from))?;
        if kind == Kind::Dir {
            let _ = fs::remove_file(cto.join(DIR_NAME_MARKER));
            if let Ok(Encoded::Hashed { ct_b32, .. }) = self.names.encrypt_component(to_name) {
                self.write_marker(&cto, ct_b32.as_bytes(), self.durability)
                    .map_err(|e| write_fail(to, e, "name marker changed"))?;
            }
        }
        self.sync_dir(&self.mirror.join(cparent), self.durability)?;
        if let Some(d) = cfrom.parent() {
            self.sync_dir(d, self.durability)?;
        }
        self.rename_index_tree(from, to)?;
        Ok(self.activity("renamed", from, Some(to.to_owned())))
    }

    pub(super) fn rename_local(&mut self, from: &str, to: &str) -> ItemResult {
        let lf = self.plain.join(from);
        let lt = self.plain.join(to);
        let idx = self
            .index
            .get(from)
            .map_err(|e| fail(from, ItemErrorKind::Failed, e))?;
        if !matches(&lf, idx.as_ref().map(|i| (i.l_size, i.l_mtime)))
            || fs::symlink_metadata(&lt).is_ok()
        {
            return Err(Self::changed(from, "plaintext changed before renaming"));
        }
        let (tparent, _) = split_parent(to);
        self.ensure_local_dir(tparent)?;
        fs::rename(&lf, &lt).map_err(io_fail(from))?;
        self.sync_dir(&self.plain.join(tparent), self.durability)?;
        self.rename_index_tree(from, to)?;
        Ok(self.activity("renamed", from, Some(to.to_owned())))
    }

    /// The whole plaintext directory moves at once, whatever it holds: a
    /// file edited meanwhile moves with it, and the next round sees the
    /// edit at its new path (nothing is lost either way).
    pub(super) fn rename_local_dir(&mut self, from: &str, to: &str) -> ItemResult {
        let lf = self.plain.join(from);
        let lt = self.plain.join(to);
        let is_dir = fs::symlink_metadata(&lf).is_ok_and(|m| m.file_type().is_dir());
        if !is_dir || fs::symlink_metadata(&lt).is_ok() {
            return Err(Self::changed(from, "plaintext changed before renaming"));
        }
        let (tparent, _) = split_parent(to);
        self.ensure_local_dir(tparent)?;
        fs::rename(&lf, &lt).map_err(io_fail(from))?;
        self.sync_dir(&self.plain.join(tparent), self.durability)?;
        let (fparent, _) = split_parent(from);
        if fparent != tparent {
            self.sync_dir(&self.plain.join(fparent), self.durability)?;
        }
        self.rename_index_tree(from, to)?;
        Ok(self.activity("renamed", from, Some(to.to_owned())))
    }

    /// Moves the index entries under `from` to `to`, with their new
    /// ciphertext paths and the mirror's current stat of each.
    fn rename_index_tree(&mut self, from: &str, to: &str) -> Result<(), ItemError> {
        let (names, mirror) = (self.names, self.mirror);
        self.index
            .rename_tree(from, to, |np, e| {
                if let Ok(c) = names.encrypt_path(np, e.kind == Kind::File) {
                    if let Ok(r) = stat_of(&mirror.join(&c)) {
                        e.r_mtime = r.mtime;
                        e.r_size = r.size;
                    }
                    e.cpath = c;
                }
            })
            .map_err(|e| fail(from, ItemErrorKind::Failed, e))
    }
}

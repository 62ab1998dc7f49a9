//! Plaintext to ciphertext and back, one file at a time, never clobbering.

use super::*;

impl<R: rand_core::CryptoRng> Exec<'_, R> {
    pub(super) fn upload(&mut self, path: &str) -> ItemResult {
        self.upload_over(path, None)
    }

    /// [`Exec::upload`]; with `expect`, over a ciphertext that must still
    /// have that size and mtime rather than the index's (a damaged one, or
    /// one another device moved here).
    pub(super) fn upload_over(&mut self, path: &str, expect: Option<(u64, i64)>) -> ItemResult {
        let lp = self.plain.join(path);
        let s0 = stat_of(&lp).map_err(io_fail(path))?;
        if s0.kind != Kind::File {
            return Err(Self::changed(path, "no longer a file"));
        }
        let idx = self
            .index
            .get(path)
            .map_err(|e| fail(path, ItemErrorKind::Failed, e))?;
        let (parent, _) = split_parent(path);
        let cparent = self.ensure_remote_dir(parent)?;
        let cpath = self.cpath(path, Kind::File)?;
        let cfull = self.mirror.join(&cpath);
        let cdir = self.mirror.join(&cparent);
        let tmp = self.temp_path(&cdir);
        let cleanup = |e| {
            let _ = fs::remove_file(&tmp);
            e
        };
        let enc = encrypt_to_temp(
            &lp,
            path,
            &s0,
            crate::crypt::To::Recipients(self.recipients),
            &tmp,
            self.rng,
        )
        .map_err(cleanup)?;
        if self.fsync {
            enc.file
                .sync_all()
                .map_err(|e| cleanup(fail(path, ItemErrorKind::Failed, e)))?;
        }
        drop(enc.file);
        let (hash, file_id) = (enc.hash, enc.file_id);
        // Never clobber: the plaintext must not have changed while we read
        // it, and the ciphertext must still be what the index says.
        if !matches(&lp, Some((s0.size, s0.mtime))) {
            return Err(cleanup(Self::changed(
                path,
                "plaintext changed while encrypting",
            )));
        }
        let expect_remote = expect.or(idx.as_ref().map(|i| (i.r_size, i.r_mtime)));
        if !(matches(&cfull, expect_remote) || (expect_remote.is_some() && matches(&cfull, None))) {
            return Err(cleanup(Self::changed(
                path,
                "ciphertext changed before replacing it",
            )));
        }
        fs::rename(&tmp, &cfull).map_err(|e| cleanup(fail(path, ItemErrorKind::Failed, e)))?;
        self.sync_dir(&cdir)?;
        let entry = IndexEntry {
            kind: Kind::File,
            l_size: s0.size,
            l_mtime: s0.mtime,
            l_ino: s0.ino,
            hash,
            cpath,
            r_size: enc.stat.size,
            r_mtime: enc.stat.mtime,
            file_id: Some(file_id),
        };
        self.index_put(path, &entry)?;
        if let Some(old) = idx.and_then(|i| i.file_id).filter(|old| *old != file_id) {
            self.index
                .set_superseded(old, path)
                .map_err(|e| fail(path, ItemErrorKind::Failed, e))?;
        }
        Ok(self.activity("encrypted", path, None))
    }

    pub(super) fn download(&mut self, path: &str) -> ItemResult {
        let cpath = self.cpath(path, Kind::File)?;
        let cfull = self.mirror.join(&cpath);
        let r0 = stat_of(&cfull).map_err(io_fail(path))?;
        let idx = self
            .index
            .get(path)
            .map_err(|e| fail(path, ItemErrorKind::Failed, e))?;
        let (parent, _) = split_parent(path);
        self.ensure_local_dir(parent)?;
        let ldir = self.plain.join(parent);
        let lp = self.plain.join(path);
        let (tmp, hash, _) = self.decrypt_to_temp(path, &cfull, &ldir)?;
        let cleanup = |e| {
            let _ = fs::remove_file(&tmp);
            e
        };
        if !matches(&cfull, Some((r0.size, r0.mtime))) {
            return Err(cleanup(Self::changed(
                path,
                "ciphertext changed while decrypting",
            )));
        }
        let expect_local = idx.as_ref().map(|i| (i.l_size, i.l_mtime));
        if !(matches(&lp, expect_local) || (expect_local.is_some() && matches(&lp, None))) {
            return Err(cleanup(Self::changed(
                path,
                "plaintext changed before replacing it",
            )));
        }
        // What we wrote, stated before it gets its name: a save by the user
        // right after the rename then differs from the index and is synced.
        let l = stat_of(&tmp).map_err(|e| cleanup(io_fail(path)(e)))?;
        fs::rename(&tmp, &lp).map_err(|e| cleanup(fail(path, ItemErrorKind::Failed, e)))?;
        self.sync_dir(&ldir)?;
        let entry = IndexEntry {
            kind: Kind::File,
            l_size: l.size,
            l_mtime: l.mtime,
            l_ino: l.ino,
            hash,
            cpath,
            r_size: r0.size,
            r_mtime: r0.mtime,
            file_id: scan::read_file_id(&cfull),
        };
        self.index_put(path, &entry)?;
        Ok(self.activity("decrypted", path, None))
    }
}

//! Plaintext to ciphertext and back, one file at a time, through the one
//! never-clobber write path ([`super::write`]).

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
        let cparent = self.ensure_remote_dir(parent, self.durability)?;
        let cpath = self.cpath(path, Kind::File)?;
        let cfull = self.mirror.join(&cpath);
        let cdir = self.mirror.join(&cparent);
        let tmp = write::temp_path(&cdir, &mut *self.rng);
        let enc = encrypt_to_temp(
            &lp,
            path,
            &s0,
            crate::crypt::To::Recipients(&self.recipients[..]),
            &tmp,
            self.rng,
        )
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })?;
        let (hash, file_id, written) = (enc.hash, enc.file_id, enc.stat);
        // Never clobber: the plaintext must not have changed while we read
        // it, and the ciphertext must still be what the index says.
        let expect_remote = expect.or(idx.as_ref().map(|i| (i.r_size, i.r_mtime)));
        write::commit(
            Temp::adopt(tmp, Some(enc.file)),
            &cfull,
            Expect::Unchanged(expect_remote),
            self.durability,
            || matches(&lp, Some((s0.size, s0.mtime))),
        )
        .map_err(|e| match e {
            WriteError::SourceChanged => Self::changed(path, "plaintext changed while encrypting"),
            e => write_fail(path, e, "ciphertext changed before replacing it"),
        })?;
        let entry = IndexEntry::file(&s0, hash, cpath, &written, Some(file_id));
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
        let (temp, hash, _) = self.decrypt_to_temp(path, &cfull, &ldir)?;
        // What we wrote, stated before it gets its name: a save by the user
        // right after the rename then differs from the index and is synced.
        let l = temp.stat().map_err(io_fail(path))?;
        let expect_local = idx.as_ref().map(|i| (i.l_size, i.l_mtime));
        write::commit(
            temp,
            &lp,
            Expect::Unchanged(expect_local),
            self.durability,
            || matches(&cfull, Some((r0.size, r0.mtime))),
        )
        .map_err(|e| match e {
            WriteError::SourceChanged => Self::changed(path, "ciphertext changed while decrypting"),
            e => write_fail(path, e, "plaintext changed before replacing it"),
        })?;
        let entry = IndexEntry::file(&l, hash, cpath, &r0, scan::read_file_id(&cfull));
        self.index_put(path, &entry)?;
        Ok(self.activity("decrypted", path, None))
    }
}

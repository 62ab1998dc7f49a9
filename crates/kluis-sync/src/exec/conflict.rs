//! Both sides changed: Kluis conflict copies, and sync clients' conflicted
//! copies of ciphertext (FORMAT.md §8.5, §8.6).

use super::*;

impl<R: rand_core::CryptoRng> Exec<'_, R> {
    /// A free conflict-copy path next to `path`.
    fn conflict_path(&self, path: &str, device: &str) -> String {
        let date = format_date(self.now);
        ConflictName::candidate_paths(path, device, &date)
            .find(|cp| !self.plain.join(cp).exists())
            .unwrap_or_else(|| unreachable_path(path))
    }

    pub(super) fn merge(&mut self, path: &str) -> ItemResult {
        let lp = self.plain.join(path);
        let l0 = stat_of(&lp).map_err(io_fail(path))?;
        let cpath = self.cpath(path, Kind::File)?;
        let cfull = self.mirror.join(&cpath);
        let r_is_file = fs::symlink_metadata(&cfull).is_ok_and(|m| m.is_file());
        if l0.kind != Kind::File || !r_is_file {
            // File against directory: move the local one aside; the next
            // round brings the other in.
            let cp = self.conflict_path(path, self.device);
            fs::rename(&lp, self.plain.join(&cp)).map_err(io_fail(path))?;
            self.index_remove(path)?;
            return Ok(self.activity("conflict", path, Some(cp)));
        }
        let r0 = stat_of(&cfull).map_err(io_fail(path))?;
        let (parent, _) = split_parent(path);
        let ldir = self.plain.join(parent);
        let (temp, rhash, _) = self.decrypt_to_temp(path, &cfull, &ldir)?;
        let lhash = Self::hash_file(path, &lp)?;
        if !matches(&lp, Some((l0.size, l0.mtime))) {
            return Err(Self::changed(path, "plaintext changed while comparing"));
        }
        let mut detail = None;
        // The stat the index keeps is the one of the content just compared
        // or written, never a later one (a save right after would be missed).
        let l;
        if lhash == rhash {
            drop(temp);
            l = l0;
        } else {
            l = temp.stat().map_err(io_fail(path))?;
            let cp = self.conflict_path(path, self.device);
            fs::rename(&lp, self.plain.join(&cp)).map_err(io_fail(path))?;
            // The plaintext just moved aside: its name is free, and only
            // the decrypted version may take it.
            if let Err(e) = write::commit(temp, &lp, Expect::Absent, self.durability, || true) {
                if !matches!(e, WriteError::TargetChanged) {
                    let _ = fs::rename(self.plain.join(&cp), &lp);
                }
                return Err(write_fail(
                    path,
                    e,
                    "plaintext appeared before replacing it",
                ));
            }
            detail = Some(cp);
        }
        let entry = IndexEntry::file(&l, rhash, cpath, &r0, scan::read_file_id(&cfull));
        self.index_put(path, &entry)?;
        Ok(match detail {
            Some(cp) => self.activity("conflict", path, Some(cp)),
            None => self.activity("merged", path, None),
        })
    }

    /// The SHA-256 of what the ciphertext at `cfull` decrypts to, if it
    /// opens and authenticates whole; `None` if it is missing, not ours,
    /// incomplete or damaged.
    fn content_hash(&self, cfull: &Path) -> Option<Vec<u8>> {
        let f = File::open(cfull).ok()?;
        let mut keys = vec![self.identity];
        keys.extend(self.group_keys.iter());
        let d = crate::keys::decryptor(BufReader::with_capacity(1 << 16, f), &keys).ok()?;
        let mut r = HashingReader {
            inner: d,
            hash: Sha256::new(),
        };
        io::copy(&mut r, &mut io::sink()).ok()?;
        Some(r.hash.finalize().to_vec())
    }

    /// Where a sync client's copy of `of` (content `hash`, written at
    /// `date`) goes: the first Kluis conflict name for device `sync` and
    /// `date` that is free on both sides, or one that holds the same
    /// content already. The date is the copy's own (its header's mtime),
    /// so every device that adopts the same copy picks the same name.
    fn adopt_target(&self, of: &str, date: &str, hash: &[u8]) -> Result<AdoptTarget, ItemError> {
        for cp in ConflictName::candidate_paths(of, "sync", date).take(999) {
            let cfull = self.mirror.join(self.cpath(&cp, Kind::File)?);
            if fs::symlink_metadata(&cfull).is_ok() {
                if self.content_hash(&cfull).as_deref() == Some(hash) {
                    return Ok(AdoptTarget::Holds(cp));
                }
                continue;
            }
            let lp = self.plain.join(&cp);
            if fs::symlink_metadata(&lp).is_ok() {
                // Our own earlier adoption, cut short before its ciphertext
                // moved: finish it.
                let same = Self::hash_file(&cp, &lp).is_ok_and(|h| h == hash);
                if same && self.index.get(&cp).ok().flatten().is_none() {
                    return Ok(AdoptTarget::PlainOnly(cp));
                }
                continue;
            }
            return Ok(AdoptTarget::Free(cp));
        }
        Err(fail(
            of,
            ItemErrorKind::Failed,
            "no free conflict-copy name",
        ))
    }

    /// A sync client's conflicted copy of the ciphertext of `of` (FORMAT.md
    /// §8.5). It is deleted only when its content provably survives: the
    /// ciphertext under `of`, or under the Kluis conflict name it would
    /// get, authenticates and decrypts to the same bytes. Anything else
    /// becomes a Kluis conflict copy, in the plaintext folder and in the
    /// mirror. (Comparing with the index's last-synced content is not
    /// enough: when both devices changed a file, the sync client makes the
    /// *losing device's own* upload the copy, and downloads the winner
    /// over its name later; issue 17.)
    pub(super) fn adopt(&mut self, ccopy: &str, of: &str) -> ItemResult {
        let cfull = self.mirror.join(ccopy);
        let r0 = stat_of(&cfull).map_err(io_fail(ccopy))?;
        let (parent, _) = split_parent(of);
        self.ensure_local_dir(parent)?;
        let ldir = self.plain.join(parent);
        let (temp, hash, meta) = self.decrypt_to_temp(of, &cfull, &ldir)?;
        let of_cfull = self.mirror.join(self.cpath(of, Kind::File)?);
        let date = format_date(match meta.mtime {
            Some((s, ns)) => s
                .saturating_mul(1_000_000_000)
                .saturating_add(i64::from(ns)),
            None => r0.mtime,
        });
        let target = if self.content_hash(&of_cfull).as_deref() == Some(&hash[..]) {
            AdoptTarget::Holds(of.to_owned())
        } else {
            self.adopt_target(of, &date, &hash)?
        };
        if !matches(&cfull, Some((r0.size, r0.mtime))) {
            return Err(Self::changed(of, "sync-client copy changed meanwhile"));
        }
        let target = match target {
            AdoptTarget::Holds(kept) => {
                drop(temp);
                fs::remove_file(&cfull).map_err(io_fail(ccopy))?;
                return Ok(self.activity(
                    "deleted",
                    ccopy,
                    Some(format!("sync-client copy; the same content is in {kept}")),
                ));
            }
            AdoptTarget::PlainOnly(target) => {
                drop(temp);
                target
            }
            AdoptTarget::Free(target) => {
                let lt = self.plain.join(&target);
                write::commit(temp, &lt, Expect::Absent, self.durability, || true)
                    .map_err(|e| write_fail(of, e, "conflict copy name taken"))?;
                target
            }
        };
        let (_, tname) = split_parent(&target);
        if matches!(
            self.names.encrypt_component(tname),
            Ok(Encoded::Hashed { .. })
        ) {
            // A hashed name is checked against the name in the header
            // (§8.4), which still names the original: encrypt the conflict
            // copy anew under its own name, then drop the sync client's.
            self.upload(&target)?;
            fs::remove_file(&cfull).map_err(io_fail(ccopy))?;
            if let Some(d) = cfull.parent() {
                self.sync_dir(d, self.durability)?;
            }
            return Ok(self.activity("conflict", of, Some(target)));
        }
        // Otherwise the ciphertext keeps its bytes and moves to the
        // encrypted name of the conflict copy: the entry's name is the
        // file's name (§8.5); the header's still names the original.
        let tcpath = self.cpath(&target, Kind::File)?;
        let tcfull = self.mirror.join(&tcpath);
        match write::rename_new(&cfull, &tcfull) {
            Ok(true) => {}
            Ok(false) => return Err(Self::changed(of, "conflict copy name taken in the mirror")),
            Err(e) => return Err(fail(of, ItemErrorKind::Failed, e)),
        }
        if let Some(d) = tcfull.parent() {
            self.sync_dir(d, self.durability)?;
        }
        let l = stat_of(&self.plain.join(&target)).map_err(io_fail(of))?;
        // A rename keeps size and mtime: the stats from before it.
        let entry = IndexEntry::file(&l, hash, tcpath, &r0, scan::read_file_id(&tcfull));
        self.index_put(&target, &entry)?;
        Ok(self.activity("conflict", of, Some(target)))
    }
}

/// Where [`Exec::adopt`] puts a sync client's copy.
enum AdoptTarget {
    /// This path's ciphertext holds the same content: the copy goes.
    Holds(String),
    /// A free conflict-copy path.
    Free(String),
    /// The plaintext of an earlier, interrupted adoption is here already.
    PlainOnly(String),
}

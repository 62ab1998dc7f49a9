//! Damaged ciphertext (issue 17, point 4): a file in the mirror that has
//! failed to authenticate, unchanged, for longer than a sync client takes to
//! finish writing one. It never blocks a newer version: where the plaintext
//! changed, the plaintext replaces it, and its bytes are kept in the Kluis
//! trash for whoever wants to look at them.

use super::*;

/// The advice that goes with a damaged file, for the status.
pub(crate) fn advice(cpath: &str, plaintext_here: bool, why: &str) -> String {
    if plaintext_here {
        format!(
            "the encrypted copy in the sync folder ({cpath}) is damaged: {why}. \
             Your copy here is intact and was left alone. Edit or save the file to \
             replace the damaged copy (its bytes are kept in .kluis-trash), or restore \
             the encrypted file from the sync service's version history."
        )
    } else {
        format!(
            "arrived damaged: the encrypted file {cpath} cannot be opened ({why}). \
             Restore it from the sync service's version history, or ask whoever \
             changed it last to save it again."
        )
    }
}

impl<R: rand_core::CryptoRng> Exec<'_, R> {
    /// The plaintext replaces a damaged ciphertext. The damaged bytes go
    /// to the trash as `<path>.damaged.kls` first; the upload then checks
    /// that the ciphertext is still the damaged one it copied (never
    /// clobbering a version that arrived meanwhile).
    pub(super) fn replace_damaged(&mut self, path: &str) -> ItemResult {
        let cpath = self.cpath(path, Kind::File)?;
        let cfull = self.mirror.join(&cpath);
        let r0 = stat_of(&cfull).map_err(io_fail(path))?;
        let kept = self.trash_dest(&copy_names::damaged_name(path))?;
        fs::copy(&cfull, &kept).map_err(io_fail(path))?;
        if !matches(&cfull, Some((r0.size, r0.mtime))) {
            let _ = fs::remove_file(&kept);
            return Err(Self::changed(path, "damaged ciphertext changed meanwhile"));
        }
        let a = self.upload_over(path, Some((r0.size, r0.mtime)))?;
        Ok(Activity {
            action: "replaced_damaged".into(),
            detail: Some(format!(
                "the damaged encrypted copy is kept in {}",
                kept.strip_prefix(self.plain).unwrap_or(&kept).display()
            )),
            ..a
        })
    }
}

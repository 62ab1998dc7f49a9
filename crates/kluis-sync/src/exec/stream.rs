//! Reading: plaintext through a SHA-256 into an encrypted temp file, and
//! ciphertext through a SHA-256 into a plaintext temp file. What the temp
//! file then becomes is [`super::write`]'s business.

use super::*;

/// Opens a plaintext file to read it, without updating its access time
/// where the system allows (Linux `O_NOATIME`, for files the user owns), as
/// backup tools do: the agent reading a file to encrypt it is not the user
/// opening it, and under `relatime` the first read after a change would
/// otherwise dirty the inode, a journal write per file on ext4.
pub(super) fn open_plain(p: &Path) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Never through a symlink, and never blocking on a FIFO: the path
        // was a regular file when scanned, but may not be any more (the
        // caller checks what was opened). O_NONBLOCK changes nothing for
        // regular files.
        let open = |flags| {
            fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | flags)
                .open(p)
        };
        match open(libc::O_NOATIME) {
            // Not the file's owner: no O_NOATIME then.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0),
            r => r,
        }
    }
    #[cfg(not(target_os = "linux"))]
    File::open(p)
}

pub(super) fn stat_of(p: &Path) -> io::Result<Stat> {
    fs::symlink_metadata(p).map(|m| Stat::from_metadata(&m))
}

pub(super) struct HashingReader<R> {
    pub(super) inner: R,
    pub(super) hash: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// A freshly written ciphertext temp file.
pub(super) struct Encrypted {
    /// SHA-256 of the plaintext that was read.
    pub(super) hash: Vec<u8>,
    /// The Kluis file id in its header.
    pub(super) file_id: [u8; 16],
    /// Size and mtime of the temp file; a rename keeps both.
    pub(super) stat: Stat,
    /// Still open, for the fsync.
    pub(super) file: File,
}

/// Encrypt the plaintext `lp` (stat `s0`) into `tmp` (not yet fsynced).
pub(super) fn encrypt_to_temp(
    lp: &Path,
    path: &str,
    s0: &Stat,
    to: crate::crypt::To<'_>,
    tmp: &Path,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Encrypted, ItemError> {
    let (_, name) = split_parent(path);
    let meta = Metadata {
        name: Some(name.to_owned()),
        size: Some(s0.size),
        mtime: Some((
            s0.mtime.div_euclid(1_000_000_000),
            s0.mtime.rem_euclid(1_000_000_000) as u32,
        )),
        label: None,
    };
    let input = open_plain(lp).map_err(io_fail(path))?;
    if !input.metadata().is_ok_and(|m| m.is_file()) {
        return Err(fail(
            path,
            ItemErrorKind::ChangedDuringSync,
            "no longer a regular file",
        ));
    }
    let mut reader = HashingReader {
        inner: input,
        hash: Sha256::new(),
    };
    let out = File::create(tmp).map_err(io_fail(path))?;
    // Small files fit the buffer whole: one write(2) per file.
    let cap = usize::try_from(s0.size)
        .unwrap_or(usize::MAX)
        .saturating_add(8 << 10)
        .min(1 << 16);
    let mut w = BufWriter::with_capacity(cap, out);
    let (_, file_id) =
        crate::crypt::encrypt_stream(&mut reader, &mut w, to, &meta, rng).map_err(|e| match e {
            kluis_format::Error::SizeMismatch { .. } => fail(
                path,
                ItemErrorKind::ChangedDuringSync,
                "size changed while reading",
            ),
            e => fail(path, ItemErrorKind::Failed, e),
        })?;
    let file = w
        .into_inner()
        .map_err(|e| fail(path, ItemErrorKind::Failed, e.error()))?;
    let stat = file
        .metadata()
        .map(|m| Stat::from_metadata(&m))
        .map_err(io_fail(path))?;
    Ok(Encrypted {
        hash: reader.hash.finalize().to_vec(),
        file_id,
        stat,
        file,
    })
}

impl<R: rand_core::CryptoRng> Exec<'_, R> {
    /// Decrypt `cfull` into a temp file in `dir`. Returns (temp, hash,
    /// metadata); the temp file goes when dropped unless committed.
    pub(super) fn decrypt_to_temp(
        &mut self,
        path: &str,
        cfull: &Path,
        dir: &Path,
    ) -> Result<(Temp, Vec<u8>, Metadata), ItemError> {
        let f = File::open(cfull).map_err(io_fail(path))?;
        let mut keys = vec![self.identity];
        keys.extend(self.group_keys.iter());
        let mut d = crate::keys::decryptor(BufReader::with_capacity(1 << 16, f), &keys)
            .map_err(|e| crypt_fail(path, e))?;
        let meta = d.metadata().clone();
        // Room for it first: nothing is written to a disk it would fill.
        let size = meta
            .size
            .unwrap_or_else(|| fs::metadata(cfull).map_or(0, |m| m.len()));
        space::check(dir, size, &space::System)
            .map_err(|s| fail(path, ItemErrorKind::NoSpace, s))?;
        let mut temp = Temp::create(dir, &mut *self.rng).map_err(io_fail(path))?;
        let out = temp
            .take_file()
            .ok_or_else(|| fail(path, ItemErrorKind::Failed, "no temp file"))?;
        let mut w = BufWriter::with_capacity(1 << 16, out);
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match d.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(crypt_fail(path, kluis_format::Error::from_io(e))),
            };
            hash.update(&buf[..n]);
            w.write_all(&buf[..n]).map_err(io_fail(path))?;
        }
        let f = w
            .into_inner()
            .map_err(|e| fail(path, ItemErrorKind::Failed, e.error()))?;
        if let Some((s, ns)) = meta.mtime
            && s >= 0
        {
            let t = std::time::UNIX_EPOCH + std::time::Duration::new(s as u64, ns);
            let _ = f.set_modified(t);
        }
        // Not fsynced yet: `write::commit` does, right before the rename.
        temp.set_file(f);
        Ok((temp, hash.finalize().to_vec(), meta))
    }

    pub(super) fn hash_file(path: &str, p: &Path) -> Result<Vec<u8>, ItemError> {
        let mut r = HashingReader {
            inner: BufReader::with_capacity(1 << 16, open_plain(p).map_err(io_fail(path))?),
            hash: Sha256::new(),
        };
        io::copy(&mut r, &mut io::sink()).map_err(io_fail(path))?;
        Ok(r.hash.finalize().to_vec())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod open_plain_tests {
    use std::fs::{self, FileTimes};
    use std::io::Read as _;
    use std::time::{Duration, SystemTime};

    fn atime_after_read(p: &std::path::Path, open: impl Fn() -> fs::File) -> SystemTime {
        let t = SystemTime::UNIX_EPOCH;
        let f = fs::File::options().write(true).open(p).expect("open");
        // atime before mtime: under relatime the next read updates atime.
        f.set_times(
            FileTimes::new()
                .set_accessed(t + Duration::from_secs(1_000))
                .set_modified(t + Duration::from_secs(2_000)),
        )
        .expect("set times");
        drop(f);
        let mut s = String::new();
        open().read_to_string(&mut s).expect("read");
        fs::metadata(p).expect("stat").accessed().expect("atime")
    }

    #[test]
    fn reading_plaintext_leaves_its_access_time_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.txt");
        fs::write(&p, "hello").expect("write");
        let before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        if atime_after_read(&p, || fs::File::open(&p).expect("open")) == before {
            eprintln!("this mount never updates access times; nothing to check");
            return;
        }
        assert_eq!(
            atime_after_read(&p, || super::open_plain(&p).expect("open")),
            before
        );
    }

    #[test]
    fn a_fifo_or_symlink_in_place_of_the_file_neither_blocks_nor_is_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("was-a-file");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        // Without O_NONBLOCK this open would wait for a writer for ever.
        let f = super::open_plain(&fifo).expect("opens at once");
        assert!(!f.metadata().expect("fstat").is_file());

        let target = dir.path().join("target.txt");
        fs::write(&target, "secret elsewhere").expect("write");
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(
            super::open_plain(&link).is_err(),
            "a symlink is not followed"
        );
    }
}

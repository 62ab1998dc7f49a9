//! Per-file work: header-only recipient changes and re-encryption, each
//! replacing the file atomically, and sharing single Kluis files.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use kluis_format::{EncryptOptions, Header, KeyId, Recipient, Refit};
use kluis_sync::folder_meta::FOLDER_META_FILE;
use kluis_sync::inplace::Batch;
use kluis_sync::keys::unwrap_any;

use kluis_agent::share::replace::{ReplaceError, replace_atomic, replace_atomic_file};

use super::{FileProblem, Keys, Member, Progress, ShareError, ShareReport};

/// Every Kluis file of a mirror (not `.kluis-*` names), sorted.
fn mirror_files(mirror: &Path) -> Result<Vec<PathBuf>, ShareError> {
    let mut out = Vec::new();
    let mut stack = vec![mirror.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).map_err(ShareError::io("read", &d))? {
            let e = e.map_err(ShareError::io("read", &d))?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".kluis-") {
                continue;
            }
            let ft = e.file_type().map_err(ShareError::io("stat", e.path()))?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() && name.ends_with(kluis_sync::names::FILE_SUFFIX) {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Outcome of one file.
pub(crate) enum Done {
    Updated,
    Unchanged,
    /// The new header fits the old one's bytes: to be written over it in
    /// place (by the caller, in a journaled batch).
    InPlace {
        old: Vec<u8>,
        new: Vec<u8>,
    },
}

/// In-place rewrites per journal: one journal fsync and one directory fsync
/// for this many files.
const BATCH: usize = 512;

fn failure(e: ReplaceError) -> FileProblem {
    FileProblem::from(e)
}

fn commit(batch: Batch, report: &mut ShareReport) {
    for (path, r) in batch.commit() {
        match r {
            Ok(()) => report.files_updated += 1,
            Err(e) => report.files_failed.push((path, failure(e.into()))),
        }
    }
}

/// Run `each` on every file of the mirror, collecting per-file results.
pub(crate) fn for_each_file(
    mirror: &Path,
    progress: &mut dyn FnMut(&Progress),
    mut each: impl FnMut(&Path) -> Result<Done, ReplaceError>,
    report: &mut ShareReport,
) -> Result<(), ShareError> {
    // A rewrite a crash interrupted is finished before anything is read.
    kluis_sync::inplace::recover_all(mirror);
    let files = mirror_files(mirror)?;
    let total = files.len();
    let mut batch = Batch::new(mirror);
    for (i, path) in files.into_iter().enumerate() {
        match each(&path) {
            Ok(Done::Updated) => report.files_updated += 1,
            Ok(Done::Unchanged) => report.files_unchanged += 1,
            Ok(Done::InPlace { old, new }) => {
                if let Err(e) = batch.stage(&path, old, new) {
                    report.files_failed.push((path.clone(), failure(e.into())));
                }
                if batch.len() >= BATCH {
                    commit(std::mem::replace(&mut batch, Batch::new(mirror)), report);
                }
            }
            Err(e) => report.files_failed.push((path.clone(), failure(e))),
        }
        progress(&Progress {
            done: i + 1,
            total,
            path,
        });
    }
    commit(batch, report);
    Ok(())
}

/// Up to this size a header-only rewrite copies the payload through one
/// buffer and one write; above it, file to file.
const SMALL_FILE: u64 = 1 << 18;

/// Rewrite only the header: `edit` gets the parsed header and file key and
/// returns whether it changed anything (FORMAT.md §6: the payload does not
/// depend on the recipients). The changed header is refitted to the old
/// one's length by the format's one rule ([`Header::refit`], FORMAT.md
/// §4.7, as `kluis recipients` does): when it fits, it is written over the
/// old header in place, journaled in a batch ([`kluis_sync::inplace`]), and
/// the payload is not touched at all. Otherwise the file is replaced by a
/// copy with the freshly padded header.
fn edit_header(
    path: &Path,
    keys: Keys<'_>,
    edit: impl FnOnce(&mut Header, &kluis_format::FileKey) -> Result<bool, kluis_format::Error>,
) -> Result<Done, ReplaceError> {
    let mut input = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut header = Header::read(&mut input)?;
    // Parsing is canonical: these are the bytes on disk.
    let old = header.to_bytes();
    let fk = unwrap_any(&header, &keys.all())?;
    if !edit(&mut header, &fk)? {
        return Ok(Done::Unchanged);
    }
    if header.refit(&fk, old.len())? == Refit::SameLength {
        let new = header.to_bytes();
        return Ok(Done::InPlace { old, new });
    }
    let small = input.get_ref().metadata()?.len() <= SMALL_FILE;
    let mut head = header.to_bytes();
    replace_atomic_file(path, |f| {
        if small {
            // One write for header and payload.
            input.read_to_end(&mut head)?;
            f.write_all(&head)?;
        } else {
            f.write_all(&head)?;
            // BufReader<File> to File: the buffered part first, then
            // copy_file_range from the file's position.
            io::copy(&mut input, f)?;
        }
        Ok(())
    })?;
    Ok(Done::Updated)
}

/// New stanzas use the file's own KEM ([`Header::reshare_kem`]): a
/// `--classical` file stays classical, with its small header.
pub(crate) fn add_recipients(
    path: &Path,
    keys: Keys<'_>,
    add: &[Recipient],
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Done, ReplaceError> {
    edit_header(path, keys, |h, fk| {
        let kem = h.reshare_kem();
        let mut changed = false;
        for r in add {
            changed |= h.add_recipient(fk, r, kem, rng)?;
        }
        Ok(changed)
    })
}

pub(crate) fn remove_recipients(
    path: &Path,
    keys: Keys<'_>,
    gone: &[KeyId],
) -> Result<Done, ReplaceError> {
    edit_header(path, keys, |h, fk| {
        let mut n = 0;
        for k in gone {
            if h.stanzas().iter().any(|s| s.key_id == *k) {
                n += h.remove_recipient(fk, k)?;
            }
        }
        Ok(n > 0)
    })
}

/// Decrypt and encrypt again under a fresh file key (and file id) to
/// `recipients`, keeping the metadata and the file's KEM
/// ([`Header::reshare_kem`]). Plaintext only ever streams through memory;
/// the old file stays until the new one is complete and synced.
pub(crate) fn reencrypt(
    path: &Path,
    keys: Keys<'_>,
    recipients: &[Recipient],
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Done, ReplaceError> {
    let input = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut d = kluis_sync::keys::decryptor(input, &keys.all())?;
    let meta = d.metadata().clone();
    let opts = EncryptOptions {
        kem: d.header().reshare_kem(),
        ..EncryptOptions::default()
    };
    replace_atomic(path, |w| {
        kluis_format::encrypt(&mut d as &mut dyn Read, w, recipients, &meta, opts, rng)?;
        Ok(())
    })?;
    Ok(Done::Updated)
}

/// Who can open a single Kluis file: the key ids of its stanzas.
#[derive(Debug, Clone)]
pub struct FileShares {
    /// The file.
    pub path: PathBuf,
    /// Key id of each stanza, in order.
    pub key_ids: Vec<KeyId>,
}

fn refuse_in_mirror(path: &Path) -> Result<(), ShareError> {
    if path
        .ancestors()
        .skip(1)
        .any(|d| d.join(FOLDER_META_FILE).exists())
    {
        return Err(ShareError::Io {
            op: "share",
            path: path.to_owned(),
            source: io::Error::other(
                "this file is in a synced folder, whose files are shared with the folder's members: share the folder instead",
            ),
        });
    }
    Ok(())
}

fn one(path: &Path, r: Result<Done, ReplaceError>) -> Result<bool, ShareError> {
    let r = match r {
        Ok(Done::InPlace { old, new }) => kluis_sync::inplace::rewrite_header(path, &old, &new)
            .map(|()| true)
            .map_err(ReplaceError::from),
        Ok(Done::Updated) => Ok(true),
        Ok(Done::Unchanged) => Ok(false),
        Err(e) => Err(e),
    };
    match r {
        Ok(changed) => Ok(changed),
        Err(ReplaceError::Format(kluis_format::Error::NoMatchingRecipient)) => {
            Err(ShareError::NotShared(path.to_owned()))
        }
        Err(ReplaceError::Format(source)) => Err(ShareError::Format {
            path: path.to_owned(),
            source,
        }),
        Err(ReplaceError::Io(source)) => Err(ShareError::Io {
            op: "rewrite",
            path: path.to_owned(),
            source,
        }),
        Err(ReplaceError::Changed) => Err(ShareError::Io {
            op: "rewrite",
            path: path.to_owned(),
            source: io::Error::other("the file changed while sharing; it was left as it was"),
        }),
    }
}

/// Give `add` access to one Kluis file (outside synced folders): header
/// only, atomic. Returns whether the file changed.
pub fn share_file(
    path: &Path,
    keys: Keys<'_>,
    add: &[Member],
    rng: &mut impl rand_core::CryptoRng,
) -> Result<bool, ShareError> {
    refuse_in_mirror(path)?;
    kluis_sync::inplace::recover_beside(path);
    let recipients: Vec<_> = add.iter().map(|m| m.recipient.clone()).collect();
    one(path, add_recipients(path, keys, &recipients, rng))
}

/// Take access away from `remove` on one Kluis file (header only, or a new
/// file key with `rekey`, to `keep`).
pub fn unshare_file(
    path: &Path,
    keys: Keys<'_>,
    remove: &[Recipient],
    rekey_to: Option<&[Recipient]>,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<bool, ShareError> {
    refuse_in_mirror(path)?;
    kluis_sync::inplace::recover_beside(path);
    let ids: Vec<_> = remove.iter().map(|r| r.fingerprint().key_id()).collect();
    let r = one(path, remove_recipients(path, keys, &ids))?;
    if let Some(to) = rekey_to {
        return one(path, reencrypt(path, keys, to, rng));
    }
    Ok(r)
}

/// The stanzas of one Kluis file (readable without any key).
pub fn list_file(path: &Path) -> Result<FileShares, ShareError> {
    let mut input = BufReader::new(File::open(path).map_err(ShareError::io("open", path))?);
    let header = Header::read(&mut input).map_err(|source| ShareError::Format {
        path: path.to_owned(),
        source,
    })?;
    Ok(FileShares {
        path: path.to_owned(),
        key_ids: header.stanzas().iter().map(|s| s.key_id).collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use kluis_format::{Identity, KEM_X25519, KemChoice, Metadata};

    use super::*;

    fn rng() -> impl rand_core::CryptoRng {
        rand_core::UnwrapErr(getrandom::SysRng)
    }

    fn header(path: &Path) -> Header {
        Header::read(&fs::read(path).unwrap()[..]).unwrap()
    }

    fn opens(path: &Path, who: &Identity) -> Vec<u8> {
        let mut out = Vec::new();
        kluis_sync::keys::decryptor(File::open(path).unwrap(), &[who])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// A `--classical` file (X25519 only) shared with more people, and then
    /// re-keyed for one person only, stays classical (FORMAT.md §4.7, the
    /// rule of `kluis recipients add`): no X-Wing stanza is added; a share
    /// that its padding has room for keeps the header's length and is
    /// written in place, one that does not grows it by a small header's
    /// 256-byte step (it used to become an X-Wing header of 1700 bytes).
    #[test]
    fn sharing_a_classical_file_keeps_it_classical_and_its_header_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc.kluis");
        let [alice, bob, carol] = [(); 3].map(|()| Identity::generate(&mut rng()));
        let text = b"classical on purpose";
        let mut bytes = Vec::new();
        kluis_format::encrypt(
            &text[..],
            &mut bytes,
            &[alice.recipient().clone()],
            &Metadata::default(),
            EncryptOptions {
                kem: KemChoice::X25519,
                ..EncryptOptions::default()
            },
            &mut rng(),
        )
        .unwrap();
        fs::write(&path, &bytes).unwrap();
        let classical = |h: &Header| h.stanzas().iter().all(|s| s.kem == KEM_X25519);
        let fresh = header(&path);
        assert!(classical(&fresh));
        let share = |who: &Identity, email: &str| {
            let m = Member::user(email, who.recipient().clone());
            assert!(share_file(&path, Keys::own(&alice), &[m], &mut rng()).unwrap());
        };

        // A fresh header's padding has no room for a stanza.
        share(&bob, "bob@example.org");
        let before = header(&path);
        assert!(classical(&before), "{:?}", before.stanzas());
        assert_eq!(
            before.byte_len(),
            fresh.byte_len() + kluis_format::SMALL_HEADER_BLOCK
        );
        let bytes = fs::read(&path).unwrap();
        let ino = fs::metadata(&path).unwrap().ino();

        // The grown one's has: same length, in place, payload untouched.
        share(&carol, "carol@example.org");
        let after = header(&path);
        assert_eq!(after.stanzas().len(), 3);
        assert!(classical(&after), "{:?}", after.stanzas());
        assert_eq!(after.byte_len(), before.byte_len(), "the header's length");
        assert_eq!(
            fs::metadata(&path).unwrap().ino(),
            ino,
            "rewritten in place"
        );
        let payload = |b: &[u8], h: &Header| b[h.byte_len()..].to_vec();
        assert_eq!(
            payload(&fs::read(&path).unwrap(), &after),
            payload(&bytes, &before)
        );
        assert_eq!(opens(&path, &bob), text);
        assert_eq!(opens(&path, &carol), text);

        // Bob's access taken away with a new file key: still classical.
        let to = [alice.recipient().clone()];
        assert!(
            unshare_file(
                &path,
                Keys::own(&alice),
                &[bob.recipient().clone(), carol.recipient().clone()],
                Some(&to),
                &mut rng()
            )
            .unwrap()
        );
        let rekeyed = header(&path);
        assert_eq!(rekeyed.stanzas().len(), 1);
        assert!(classical(&rekeyed), "{:?}", rekeyed.stanzas());
        assert_eq!(opens(&path, &alice), text);
    }
}

//! The user of the two devices, and the ledger of every version they wrote.
//!
//! Every save is a temp file exchanged with the target
//! (`renameat2(RENAME_EXCHANGE)`), and every deletion a rename away from
//! the target before the bytes are read: so the test knows exactly which
//! version each save or deletion replaced, even when the agent changed the
//! file a moment before. Such a version is *superseded*: the user replaced
//! it on that device. Every other version must survive, under its name or
//! as a conflict copy.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use rustix::fs::{CWD, RenameFlags, renameat_with};
use sha2::{Digest, Sha256};

/// Every plaintext version starts with this: it must never appear in a
/// sync folder.
pub const MARKER: &[u8] = b"HOSTILE-PLAINTEXT ";
/// Every plaintext file and directory name contains this.
pub const NAME_MARKER: &str = "geheim";

pub type Hash = [u8; 32];

pub fn hash(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

pub struct Version {
    pub id: u64,
    pub device: &'static str,
    pub path: String,
    pub len: usize,
    pub at: Duration,
}

#[derive(Default)]
pub struct Ledger {
    pub versions: Vec<Version>,
    pub by_hash: HashMap<Hash, usize>,
    /// Versions a later save or deletion replaced (by the device it was
    /// replaced on).
    pub superseded: HashMap<Hash, &'static str>,
}

impl Ledger {
    pub fn known(&self, data: &[u8]) -> bool {
        self.by_hash.contains_key(&hash(data))
    }
}

pub struct User {
    pub rng: ChaCha8Rng,
    pub t0: Instant,
    pub next: u64,
    pub ledger: Ledger,
    pub saves: u64,
    pub deletes: u64,
    pub renames: u64,
    pub both_sides: u64,
}

/// Files the user works on: their own, not conflict copies.
fn own_files(plain: &Path) -> Vec<String> {
    crate::common::plain_tree(plain)
        .into_keys()
        .filter(|k| k.contains(NAME_MARKER) && !k.contains("(conflict"))
        .collect()
}

impl User {
    pub fn new(seed: u64) -> User {
        User {
            rng: rand_core::SeedableRng::seed_from_u64(seed),
            t0: Instant::now(),
            next: 0,
            ledger: Ledger::default(),
            saves: 0,
            deletes: 0,
            renames: 0,
            both_sides: 0,
        }
    }

    fn content(&mut self, device: &'static str, rel: &str) -> Vec<u8> {
        self.next += 1;
        let id = self.next;
        let len = if self.rng.next_u32() % 6 == 0 {
            20_000 + self.rng.next_u32() as usize % 100_000
        } else {
            60 + self.rng.next_u32() as usize % 3000
        };
        let mut v = MARKER.to_vec();
        v.extend_from_slice(format!("v{id} written on {device} to {rel}\n").as_bytes());
        v.resize(len.max(v.len()), b'a' + (id % 26) as u8);
        let h = hash(&v);
        self.ledger.by_hash.insert(h, self.ledger.versions.len());
        self.ledger.versions.push(Version {
            id,
            device,
            path: rel.to_owned(),
            len: v.len(),
            at: self.t0.elapsed(),
        });
        v
    }

    fn supersede(&mut self, device: &'static str, old: &[u8]) {
        self.ledger.superseded.insert(hash(old), device);
    }

    /// An atomic save (temp file + rename, as editors do).
    pub fn save(&mut self, device: &'static str, plain: &Path, rel: &str) {
        let data = self.content(device, rel);
        let target = plain.join(rel);
        let dir = target.parent().expect("a file has a parent").to_path_buf();
        fs::create_dir_all(&dir).expect("mkdir");
        let tmp = dir.join(format!(".save-{}.swp", self.next));
        fs::write(&tmp, &data).expect("write the temp file");
        self.saves += 1;
        if renameat_with(CWD, &tmp, CWD, &target, RenameFlags::NOREPLACE).is_ok() {
            return;
        }
        // The target exists: exchange, then read what was replaced.
        if renameat_with(CWD, &tmp, CWD, &target, RenameFlags::EXCHANGE).is_ok() {
            if let Ok(old) = fs::read(&tmp) {
                self.supersede(device, &old);
            }
        }
        let _ = fs::remove_file(&tmp);
    }

    fn delete(&mut self, device: &'static str, plain: &Path, rel: &str) {
        let target = plain.join(rel);
        let away = target.with_file_name(format!(".del-{}.swp", self.next));
        self.next += 1;
        if fs::rename(&target, &away).is_ok() {
            if let Ok(old) = fs::read(&away) {
                self.supersede(device, &old);
            }
            let _ = fs::remove_file(&away);
            self.deletes += 1;
        }
    }

    fn new_name(&mut self) -> String {
        self.next += 1;
        match self.rng.next_u32() % 3 {
            0 => format!("{NAME_MARKER}-{}.txt", self.next),
            n => format!("{NAME_MARKER}-map-{n}/{NAME_MARKER}-{}.txt", self.next),
        }
    }

    fn pick(&mut self, files: &[String]) -> Option<String> {
        (!files.is_empty()).then(|| files[self.rng.next_u32() as usize % files.len()].clone())
    }

    /// One seeded action on device `d` of `devices` (name, plaintext root).
    pub fn act(&mut self, devices: &[(&'static str, PathBuf)], d: usize) {
        let (dev, plain) = (devices[d].0, devices[d].1.clone());
        let files = own_files(&plain);
        match self.rng.next_u32() % 20 {
            0..=6 => {
                if let Some(f) = self.pick(&files) {
                    self.save(dev, &plain, &f);
                } else {
                    let n = self.new_name();
                    self.save(dev, &plain, &n);
                }
            }
            7..=10 => {
                let n = self.new_name();
                self.save(dev, &plain, &n);
            }
            11 if files.len() > 8 => {
                let f = self.pick(&files).expect("not empty");
                self.delete(dev, &plain, &f);
            }
            12 => {
                if let Some(f) = self.pick(&files) {
                    let to = self.new_name();
                    let _ = fs::create_dir_all(plain.join(&to).parent().expect("parent"));
                    let r = renameat_with(
                        CWD,
                        &plain.join(&f),
                        CWD,
                        &plain.join(&to),
                        RenameFlags::NOREPLACE,
                    );
                    self.renames += u64::from(r.is_ok());
                }
            }
            13..=16 => {
                // Both devices edit the same file before either syncs.
                let (other, oplain) = (devices[1 - d].0, devices[1 - d].1.clone());
                let theirs: HashSet<String> = own_files(&oplain).into_iter().collect();
                let common: Vec<String> = files
                    .iter()
                    .filter(|f| theirs.contains(*f))
                    .cloned()
                    .collect();
                if let Some(f) = self.pick(&common) {
                    self.both_sides += 1;
                    self.save(dev, &plain, &f);
                    self.save(other, &oplain, &f);
                }
            }
            17 => {
                // The same new name on both devices.
                let (other, oplain) = (devices[1 - d].0, devices[1 - d].1.clone());
                let n = self.new_name();
                self.both_sides += 1;
                self.save(dev, &plain, &n);
                self.save(other, &oplain, &n);
            }
            _ => {
                if let Some(f) = self.pick(&files) {
                    self.save(dev, &plain, &f);
                }
            }
        }
    }
}

//! What must hold: no plaintext in the sync folders, nothing in either
//! tree that no user wrote, and no version lost.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use kluis_format::Identity;

use crate::common::{kls_files, plain_tree};
use crate::user::{Hash, Ledger, MARKER, NAME_MARKER, hash};

fn all_files(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// No plaintext name or content anywhere in a sync folder (temp files and
/// the client's partial downloads included).
pub fn no_plaintext_in(mirror: &Path) -> Result<(), String> {
    for p in all_files(mirror) {
        let rel = p
            .strip_prefix(mirror)
            .unwrap_or(&p)
            .to_string_lossy()
            .into_owned();
        if rel.contains(NAME_MARKER) {
            return Err(format!("a plaintext name in the sync folder: {rel}"));
        }
        if p.is_file()
            && let Ok(data) = fs::read(&p)
            && contains(&data, MARKER)
        {
            return Err(format!("plaintext content in the sync folder: {rel}"));
        }
    }
    Ok(())
}

/// Every plaintext file holds a version some user wrote.
pub fn plain_is_known(plain: &Path, ledger: &Ledger, ctx: &str) -> Result<(), String> {
    for (k, v) in plain_tree(plain) {
        if !ledger.known(&v) {
            return Err(format!(
                "{ctx}: plaintext {k} holds content no user wrote ({} bytes)",
                v.len()
            ));
        }
    }
    Ok(())
}

/// Every ciphertext authenticates and holds a version some user wrote.
pub fn mirror_is_known(
    mirror: &Path,
    id: &Identity,
    ledger: &Ledger,
    ctx: &str,
) -> Result<(), String> {
    for p in kls_files(mirror) {
        let Ok(f) = fs::File::open(&p) else { continue };
        let rel = p.strip_prefix(mirror).unwrap_or(&p).display().to_string();
        let mut d = kluis_format::Decryptor::new(f, id)
            .map_err(|e| format!("{ctx}: {rel} does not authenticate: {e}"))?;
        let mut out = vec![];
        d.read_to_end(&mut out)
            .map_err(|e| format!("{ctx}: {rel} does not authenticate: {e}"))?;
        if !ledger.known(&out) {
            return Err(format!("{ctx}: {rel} decrypts to content no user wrote"));
        }
    }
    Ok(())
}

/// Hashes of every file under a device's trash.
fn trash(plain: &Path) -> HashSet<Hash> {
    all_files(&plain.join(".kluis-trash"))
        .into_iter()
        .filter(|p| p.is_file())
        .filter_map(|p| fs::read(p).ok())
        .map(|d| hash(&d))
        .collect()
}

/// The versions that are neither current (under any name, conflict copies
/// included) nor superseded, one line each; `final_tree` is the converged
/// plaintext, `devices` (name, plaintext root) for the trash.
pub fn lost_versions(
    ledger: &Ledger,
    final_tree: &BTreeMap<String, Vec<u8>>,
    devices: &[(&str, &Path)],
) -> Vec<String> {
    let present: HashSet<Hash> = final_tree.values().map(|v| hash(v)).collect();
    let trashes: Vec<(&str, HashSet<Hash>)> = devices.iter().map(|(n, p)| (*n, trash(p))).collect();
    let mut out = vec![];
    for (h, &i) in &ledger.by_hash {
        if present.contains(h) || ledger.superseded.contains_key(h) {
            continue;
        }
        let v = &ledger.versions[i];
        let where_: Vec<&str> = trashes
            .iter()
            .filter(|(_, t)| t.contains(h))
            .map(|(n, _)| *n)
            .collect();
        let found = if where_.is_empty() {
            "nowhere (no plaintext, no trash, no conflict copy)".to_owned()
        } else {
            format!("only in the .kluis-trash of {}", where_.join(" and "))
        };
        out.push((
            v.id,
            format!(
                "v{} written on {} to {} at {:.1} s ({} bytes): {found}",
                v.id,
                v.device,
                v.path,
                v.at.as_secs_f64(),
                v.len
            ),
        ));
    }
    out.sort();
    out.into_iter().map(|(_, s)| s).collect()
}

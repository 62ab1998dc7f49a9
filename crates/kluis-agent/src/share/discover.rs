//! The other side of a share: a mirror folder that arrived in your sync
//! folder (through the provider's folder sharing) is recognised from the
//! folder metadata you can open — with your key or a group key — and paired
//! to `<Shared with me>/<Owner> - <Folder>`.

use std::path::{Path, PathBuf};

use kluis_sync::folder_meta::{FOLDER_META_FILE, FolderMeta, FolderMetaError};

use super::Keys;
use crate::config::Config;
use crate::error::AgentError;

/// What was found in one candidate mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryOutcome {
    /// Shared with you and newly paired to `plain`.
    Added {
        /// Where its plaintext appears.
        plain: PathBuf,
    },
    /// Already one of your pairs.
    AlreadyPaired,
    /// Your own folder (you created it), not paired on this device: left
    /// for `kluis folders add`.
    Own,
    /// Its metadata is not encrypted to you or your groups: left alone as
    /// ciphertext, shown as "not shared with you".
    NotSharedWithYou,
    /// The metadata could not be read (still syncing in, damaged).
    Unreadable(String),
}

/// One candidate mirror.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The mirror folder.
    pub mirror: PathBuf,
    /// Owner and title from the metadata, when it opened.
    pub owner: String,
    /// Display name of the folder.
    pub title: String,
    /// What happened.
    pub outcome: DiscoveryOutcome,
}

/// `<Owner> - <Folder>`: the owner's address up to the `@`, capitalised,
/// and the folder title, with characters no file system accepts replaced.
pub fn shared_plain_name(owner: &str, title: &str) -> String {
    let who = owner.split('@').next().unwrap_or(owner);
    let mut c = who.chars();
    let who: String = match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => "Unknown".into(),
    };
    let title = if title.is_empty() {
        "Shared folder"
    } else {
        title
    };
    format!("{who} - {title}")
        .chars()
        .map(|ch| {
            if ch.is_control() || "/\\:*?\"<>|".contains(ch) {
                '_'
            } else {
                ch
            }
        })
        .collect::<String>()
        .trim_matches(|c: char| c == '.' || c == ' ')
        .to_owned()
}

fn candidates(root: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if root.join(FOLDER_META_FILE).is_file() {
        out.push(root.to_owned());
        return;
    }
    if depth == 0 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| {
            e.file_type().is_ok_and(|t| t.is_dir())
                && !e.file_name().to_string_lossy().starts_with('.')
        })
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for d in dirs {
        candidates(&d, depth - 1, out);
    }
}

/// Look for mirrors in `config.shared_search_roots()` (two levels deep),
/// pair every one shared with you under `shared_dir`, and report the rest.
/// The caller saves the configuration and (re)starts the agent's pairs.
pub fn discover_shared(
    config: &mut Config,
    keys: Keys<'_>,
    shared_dir: &Path,
) -> Result<Vec<Discovered>, AgentError> {
    let mut mirrors = Vec::new();
    for root in config.shared_search_roots() {
        candidates(&root, 2, &mut mirrors);
    }
    mirrors.sort();
    mirrors.dedup();
    let mut out = Vec::new();
    for mirror in mirrors {
        let mut d = Discovered {
            mirror: mirror.clone(),
            owner: String::new(),
            title: String::new(),
            outcome: DiscoveryOutcome::AlreadyPaired,
        };
        if config.pairs.iter().any(|p| mirror.starts_with(&p.mirror)) {
            out.push(d);
            continue;
        }
        let bytes = match std::fs::read(mirror.join(FOLDER_META_FILE)) {
            Ok(b) => b,
            Err(e) => {
                d.outcome = DiscoveryOutcome::Unreadable(e.to_string());
                out.push(d);
                continue;
            }
        };
        match FolderMeta::open_any(&bytes, &keys.all()) {
            Ok(meta) => {
                d.owner = meta.owner.clone();
                d.title = meta.title.clone();
                let mine = meta
                    .members
                    .iter()
                    .any(|m| m.name == meta.owner && &m.recipient == keys.identity.recipient())
                    || meta.owner.is_empty()
                        && meta.members.len() == 1
                        && &meta.members[0].recipient == keys.identity.recipient();
                if mine {
                    d.outcome = DiscoveryOutcome::Own;
                } else {
                    let plain = shared_dir.join(shared_plain_name(&meta.owner, &meta.title));
                    config.add_shared_pair(&plain, &mirror)?;
                    d.outcome = DiscoveryOutcome::Added { plain };
                }
            }
            Err(FolderMetaError::Format(kluis_format::Error::NoMatchingRecipient)) => {
                d.outcome = DiscoveryOutcome::NotSharedWithYou
            }
            Err(e) => d.outcome = DiscoveryOutcome::Unreadable(e.to_string()),
        }
        out.push(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_safe() {
        assert_eq!(
            shared_plain_name("alice@example.org", "Projects"),
            "Alice - Projects"
        );
        assert_eq!(shared_plain_name("", ""), "Unknown - Shared folder");
        assert_eq!(shared_plain_name("bob@x", "a/b:c"), "Bob - a_b_c");
    }
}

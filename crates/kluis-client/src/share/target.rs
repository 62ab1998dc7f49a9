//! What a path given to share, unshare or list names: a paired folder (by
//! its plaintext or mirror side), an unpaired mirror someone shared, or a
//! single Kluis file. A path inside a paired folder is refused: its files
//! are shared with the folder's members.

use std::path::{Path, PathBuf};

use kluis_agent::Config;
use kluis_sync::folder_meta::FOLDER_META_FILE;

/// What is shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A folder: its mirror, and its name (the plaintext folder's, or the
    /// mirror's when it is not paired here).
    Folder {
        /// The encrypted side, where `.kluis-folder` lives.
        mirror: PathBuf,
        /// The folder's name.
        title: String,
    },
    /// A single Kluis file (absolute path).
    File(PathBuf),
}

/// Why a path names nothing that can be shared.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The path is inside a paired folder: share the folder instead.
    #[error("{} is inside the synced folder {}", path.display(), pair.display())]
    InsidePair {
        /// The path as given.
        path: PathBuf,
        /// The pair's plaintext folder.
        pair: PathBuf,
    },
    /// Neither a paired folder nor a file nor a shared mirror.
    #[error("{} is neither a paired folder nor a Kluis file", .0.display())]
    NotShareable(PathBuf),
    /// The current directory could not be read to make the path absolute.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path as given.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What `path` names, given this device's folder pairs.
pub fn target(config: &Config, path: &Path) -> Result<Target, TargetError> {
    let abs = std::path::absolute(path).map_err(|source| TargetError::Io {
        path: path.to_owned(),
        source,
    })?;
    for p in &config.pairs {
        if abs == p.plain || abs == p.mirror {
            return Ok(Target::Folder {
                mirror: p.mirror.clone(),
                title: name_of(&p.plain),
            });
        }
        if abs.starts_with(&p.plain) || abs.starts_with(&p.mirror) {
            return Err(TargetError::InsidePair {
                path: path.to_owned(),
                pair: p.plain.clone(),
            });
        }
    }
    if abs.is_file() {
        return Ok(Target::File(abs));
    }
    if abs.join(FOLDER_META_FILE).is_file() {
        let title = name_of(&abs);
        return Ok(Target::Folder { mirror: abs, title });
    }
    Err(TargetError::NotShareable(path.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn pairs_files_and_paths_inside_a_pair() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, mirror) = (dir.path().join("Work"), dir.path().join("Mirror"));
        let mut config = Config::default();
        config.add_pair(&plain, &mirror).unwrap();
        let folder = Target::Folder {
            mirror: config.pairs[0].mirror.clone(),
            title: "Work".into(),
        };
        assert_eq!(target(&config, &plain).unwrap(), folder);
        assert_eq!(target(&config, &mirror).unwrap(), folder);
        assert!(matches!(
            target(&config, &plain.join("a.txt")),
            Err(TargetError::InsidePair { pair, .. }) if pair == config.pairs[0].plain
        ));
        let file = dir.path().join("report.kluis");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(target(&config, &file).unwrap(), Target::File(file));
        assert!(matches!(
            target(&config, &dir.path().join("nothing")),
            Err(TargetError::NotShareable(_))
        ));
    }
}

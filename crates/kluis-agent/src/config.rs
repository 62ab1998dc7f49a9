//! Folder pairs, stored as JSON in the config directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::AgentError;
use crate::home::AgentHome;

/// One plaintext folder and its encrypted mirror.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairConfig {
    /// Stable id (hash of both paths), names the index.
    pub id: String,
    /// The plaintext folder.
    pub plain: PathBuf,
    /// The mirror folder inside the sync folder.
    pub mirror: PathBuf,
}

/// The agent configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// This device's name, used in conflict-copy names.
    #[serde(default)]
    pub device: Option<String>,
    /// The folder pairs.
    #[serde(default)]
    pub pairs: Vec<PairConfig>,
    /// Where folders shared with you appear, as `<Owner> - <Folder>`
    /// (default `~/Kluis/Shared with me`). docs/SHARING.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_with_me: Option<PathBuf>,
    /// Extra folders to look in for mirrors shared with you (the parents of
    /// every pair's mirror are always looked in).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_roots: Vec<PathBuf>,
}

fn absolute(p: &Path) -> Result<PathBuf, AgentError> {
    std::path::absolute(p).map_err(AgentError::io("resolve", p))
}

fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

impl Config {
    /// Load (a missing file is an empty configuration).
    pub fn load(home: &AgentHome) -> Result<Config, AgentError> {
        let path = home.config_file();
        match std::fs::read(&path) {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|source| AgentError::Config { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(AgentError::io("read", path)(e)),
        }
    }

    /// Save atomically.
    pub fn save(&self, home: &AgentHome) -> Result<(), AgentError> {
        std::fs::create_dir_all(&home.config).map_err(AgentError::io("create", &home.config))?;
        let path = home.config_file();
        let tmp = home.config.join(".sync.json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(|source| AgentError::Config {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&tmp, text).map_err(AgentError::io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(AgentError::io("rename", &path))
    }

    /// The device name: configured, else the host name.
    pub fn device_name(&self) -> String {
        self.device.clone().unwrap_or_else(host_name)
    }

    /// Add a pair (both folders are created if missing). Refuses nested or
    /// overlapping folders.
    pub fn add_pair(&mut self, plain: &Path, mirror: &Path) -> Result<PairConfig, AgentError> {
        let plain = absolute(plain)?;
        let mirror = absolute(mirror)?;
        if overlaps(&plain, &mirror) {
            return Err(AgentError::Pair(format!(
                "the plaintext folder {} and the mirror {} must not contain each other",
                plain.display(),
                mirror.display()
            )));
        }
        for p in &self.pairs {
            for new in [&plain, &mirror] {
                for old in [&p.plain, &p.mirror] {
                    if overlaps(new, old) {
                        return Err(AgentError::Pair(format!(
                            "{} overlaps the existing pair {} ({})",
                            new.display(),
                            p.id,
                            old.display()
                        )));
                    }
                }
            }
        }
        for d in [&plain, &mirror] {
            std::fs::create_dir_all(d).map_err(AgentError::io("create", d.as_path()))?;
        }
        let h = Sha256::digest(format!("{}\0{}", plain.display(), mirror.display()).as_bytes());
        let id: String = h[..6].iter().map(|b| format!("{b:02x}")).collect();
        let pair = PairConfig { id, plain, mirror };
        self.pairs.push(pair.clone());
        Ok(pair)
    }

    /// Add the pair of a folder shared with you: `mirror` arrived through
    /// the sync client, `plain` is under the "Shared with me" folder. The
    /// plaintext folder may sit inside another pair's plaintext folder (the
    /// outer pair skips any directory holding a pair lock, which is created
    /// here); mirrors must not overlap.
    pub fn add_shared_pair(
        &mut self,
        plain: &Path,
        mirror: &Path,
    ) -> Result<PairConfig, AgentError> {
        let plain = absolute(plain)?;
        let mirror = absolute(mirror)?;
        if overlaps(&plain, &mirror) {
            return Err(AgentError::Pair(format!(
                "{} and {} must not contain each other",
                plain.display(),
                mirror.display()
            )));
        }
        for p in &self.pairs {
            if overlaps(&mirror, &p.mirror)
                || overlaps(&mirror, &p.plain)
                || overlaps(&plain, &p.mirror)
                || plain == p.plain
            {
                return Err(AgentError::Pair(format!(
                    "{} overlaps the existing pair {}",
                    mirror.display(),
                    p.id
                )));
            }
        }
        std::fs::create_dir_all(&plain).map_err(AgentError::io("create", plain.as_path()))?;
        let lock = plain.join(kluis_sync::scan::PAIR_LOCK_FILE);
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(AgentError::io("create", lock.as_path()))?;
        let h = Sha256::digest(format!("{}\0{}", plain.display(), mirror.display()).as_bytes());
        let id: String = h[..6].iter().map(|b| format!("{b:02x}")).collect();
        let pair = PairConfig { id, plain, mirror };
        self.pairs.push(pair.clone());
        Ok(pair)
    }

    /// Where folders shared with you go: configured, else
    /// `~/Kluis/Shared with me`.
    pub fn shared_with_me_dir(&self) -> Option<PathBuf> {
        self.shared_with_me.clone().or_else(|| {
            directories::UserDirs::new().map(|u| u.home_dir().join("Kluis").join("Shared with me"))
        })
    }

    /// Folders to look in for mirrors shared with you.
    pub fn shared_search_roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = self.shared_roots.clone();
        for p in &self.pairs {
            if let Some(parent) = p.mirror.parent()
                && !roots.iter().any(|r| r == parent)
            {
                roots.push(parent.to_owned());
            }
        }
        roots
    }

    /// Remove a pair by id or by either folder. Files are left alone.
    pub fn remove_pair(&mut self, key: &str) -> Result<PairConfig, AgentError> {
        let as_path = absolute(Path::new(key)).ok();
        let pos = self
            .pairs
            .iter()
            .position(|p| {
                p.id == key
                    || Some(&p.plain) == as_path.as_ref()
                    || Some(&p.mirror) == as_path.as_ref()
            })
            .ok_or_else(|| AgentError::Pair(format!("no folder pair {key}")))?;
        Ok(self.pairs.remove(pos))
    }
}

/// The host name, or "device".
pub fn host_name() -> String {
    for var in ["KLUIS_DEVICE", "COMPUTERNAME", "HOSTNAME"] {
        if let Ok(v) = std::env::var(var)
            && !v.trim().is_empty()
        {
            return sanitize(&v);
        }
    }
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| sanitize(&s))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "device".to_owned())
}

fn sanitize(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_list_remove_and_overlap() {
        let d = tempfile::tempdir().unwrap();
        let home = AgentHome::in_dir(d.path());
        let mut c = Config::load(&home).unwrap();
        let p = c
            .add_pair(&d.path().join("plain"), &d.path().join("sync/Kluis"))
            .unwrap();
        assert!(
            c.add_pair(&d.path().join("plain/sub"), &d.path().join("x"))
                .is_err()
        );
        assert!(
            c.add_pair(&d.path().join("a"), &d.path().join("a/b"))
                .is_err()
        );
        c.save(&home).unwrap();
        let mut c2 = Config::load(&home).unwrap();
        assert_eq!(c2.pairs, vec![p.clone()]);
        assert_eq!(c2.remove_pair(&p.id).unwrap(), p);
        assert!(c2.remove_pair("nope").is_err());
    }
}

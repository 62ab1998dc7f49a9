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
            Ok(b) => serde_json::from_slice(&b).map_err(|source| AgentError::Config { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(AgentError::io("read", path)(e)),
        }
    }

    /// Save atomically.
    pub fn save(&self, home: &AgentHome) -> Result<(), AgentError> {
        std::fs::create_dir_all(&home.config).map_err(AgentError::io("create", &home.config))?;
        let path = home.config_file();
        let tmp = home.config.join(".sync.json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(|source| AgentError::Config { path: path.clone(), source })?;
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

    /// Remove a pair by id or by either folder. Files are left alone.
    pub fn remove_pair(&mut self, key: &str) -> Result<PairConfig, AgentError> {
        let as_path = absolute(Path::new(key)).ok();
        let pos = self
            .pairs
            .iter()
            .position(|p| p.id == key || Some(&p.plain) == as_path.as_ref() || Some(&p.mirror) == as_path.as_ref())
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
        let p = c.add_pair(&d.path().join("plain"), &d.path().join("sync/Kluis")).unwrap();
        assert!(c.add_pair(&d.path().join("plain/sub"), &d.path().join("x")).is_err());
        assert!(c.add_pair(&d.path().join("a"), &d.path().join("a/b")).is_err());
        c.save(&home).unwrap();
        let mut c2 = Config::load(&home).unwrap();
        assert_eq!(c2.pairs, vec![p.clone()]);
        assert_eq!(c2.remove_pair(&p.id).unwrap(), p);
        assert!(c2.remove_pair("nope").is_err());
    }
}

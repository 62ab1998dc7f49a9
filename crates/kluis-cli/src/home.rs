//! Where Kluis keeps its files. `KLUIS_HOME` overrides everything with one
//! directory (like `GNUPGHOME`), so scripts and tests can run isolated users.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// The directories Kluis uses.
#[derive(Debug, Clone)]
pub struct Home {
    /// Configuration (folder pairs, pinned keys).
    #[allow(dead_code, reason = "read by the agent commands that pair folders")]
    pub config: PathBuf,
    /// Data (the identity, indexes).
    pub data: PathBuf,
}

impl Home {
    /// Resolve from `KLUIS_HOME` or the platform defaults.
    pub fn resolve() -> Result<Self> {
        if let Some(dir) = std::env::var_os("KLUIS_HOME").filter(|d| !d.is_empty()) {
            let dir = PathBuf::from(dir);
            return Ok(Home {
                config: dir.clone(),
                data: dir,
            });
        }
        let dirs = directories::ProjectDirs::from("org", "Kluis", "kluis")
            .context("cannot determine a home directory; set KLUIS_HOME")?;
        Ok(Home {
            config: dirs.config_dir().to_path_buf(),
            data: dirs.data_dir().to_path_buf(),
        })
    }

    /// The default identity file.
    pub fn identity(&self) -> PathBuf {
        self.data.join("identity.kluiskey")
    }
}

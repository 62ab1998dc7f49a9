//! Folder pairs on this device: pairing a plaintext folder with its
//! encrypted mirror, and unpairing (no file is touched). `kluis folders`
//! and the tray's settings call these; a running agent picks the change up
//! when it restarts (the tray restarts its engine itself).

use std::path::Path;

use kluis_agent::{AgentHome, Config, PairConfig};

use crate::Error;

/// Pair `plain` (where you work) with `mirror` (where the ciphertext
/// appears) in this home's configuration; both are created if missing.
pub fn add_pair(home: &AgentHome, plain: &Path, mirror: &Path) -> Result<PairConfig, Error> {
    let mut cfg = Config::load(home)?;
    let pair = cfg.add_pair(plain, mirror)?;
    cfg.save(home)?;
    Ok(pair)
}

/// Forget the pair named by `key` (its id or either folder).
pub fn remove_pair(home: &AgentHome, key: &str) -> Result<PairConfig, Error> {
    let mut cfg = Config::load(home)?;
    let pair = cfg.remove_pair(key)?;
    cfg.save(home)?;
    Ok(pair)
}

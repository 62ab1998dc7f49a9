//! Find the Dropbox and OneDrive folders on this machine, to offer them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A sync folder we found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncFolderCandidate {
    /// "Dropbox", "OneDrive", "OneDrive (work)".
    pub provider: String,
    /// The folder.
    pub path: PathBuf,
}

/// Dropbox's `info.json`: `{"personal": {"path": ...}, "business": {...}}`.
fn dropbox_info(file: &Path, out: &mut Vec<SyncFolderCandidate>) {
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return;
    };
    for (key, label) in [("personal", "Dropbox"), ("business", "Dropbox (work)")] {
        if let Some(p) = v
            .get(key)
            .and_then(|x| x.get("path"))
            .and_then(|x| x.as_str())
        {
            push(out, label, PathBuf::from(p));
        }
    }
}

fn push(out: &mut Vec<SyncFolderCandidate>, provider: &str, path: PathBuf) {
    if path.is_dir() && !out.iter().any(|c| c.path == path) {
        out.push(SyncFolderCandidate {
            provider: provider.to_owned(),
            path,
        });
    }
}

/// The folder pair to offer on a new device, as `kluis start` and the
/// tray's first-run wizard both pick it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuggestedPair {
    /// `Kluis/` in `KLUIS_HOME`, else `~/Kluis`.
    pub plain: PathBuf,
    /// `Kluis/` in the first sync folder found, else `Kluis-encrypted`
    /// beside the plaintext folder.
    pub mirror: PathBuf,
    /// The sync folders found on this machine ([`detect_sync_folders`]).
    pub found: Vec<SyncFolderCandidate>,
}

/// The folder pair to offer ([`SuggestedPair`]); `None` when there is
/// neither `KLUIS_HOME` nor a home folder.
pub fn suggest_pair() -> Option<SuggestedPair> {
    let base = std::env::var_os("KLUIS_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()))?;
    let found = detect_sync_folders();
    let mirror = found
        .first()
        .map_or_else(|| base.join("Kluis-encrypted"), |c| c.path.join("Kluis"));
    Some(SuggestedPair {
        plain: base.join("Kluis"),
        mirror,
        found,
    })
}

/// Look in the usual places (Linux and Windows).
pub fn detect_sync_folders() -> Vec<SyncFolderCandidate> {
    let mut out = Vec::new();
    let home = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf());
    if cfg!(windows) {
        for (var, label) in [
            ("OneDrive", "OneDrive"),
            ("OneDriveConsumer", "OneDrive"),
            ("OneDriveCommercial", "OneDrive (work)"),
        ] {
            if let Some(p) = std::env::var_os(var) {
                push(&mut out, label, PathBuf::from(p));
            }
        }
        for var in ["LOCALAPPDATA", "APPDATA"] {
            if let Some(p) = std::env::var_os(var) {
                dropbox_info(
                    &PathBuf::from(p).join("Dropbox").join("info.json"),
                    &mut out,
                );
            }
        }
    }
    if let Some(home) = home {
        dropbox_info(&home.join(".dropbox").join("info.json"), &mut out);
        push(&mut out, "Dropbox", home.join("Dropbox"));
        push(&mut out, "OneDrive", home.join("OneDrive"));
        // abraunegg/onedrive's config may move the folder: `sync_dir = "..."`.
        if let Ok(cfg) = std::fs::read_to_string(home.join(".config/onedrive/config")) {
            for line in cfg.lines() {
                let line = line.trim();
                if let Some(rest) = line.strip_prefix("sync_dir") {
                    let v = rest.trim_start_matches([' ', '=']).trim().trim_matches('"');
                    let p = v
                        .strip_prefix("~/")
                        .map_or_else(|| PathBuf::from(v), |r| home.join(r));
                    push(&mut out, "OneDrive", p);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropbox_info_json_is_read() {
        let d = tempfile::tempdir().unwrap();
        let dbx = d.path().join("Dropbox (Org)");
        std::fs::create_dir(&dbx).unwrap();
        let info = d.path().join("info.json");
        std::fs::write(
            &info,
            format!(
                r#"{{"business":{{"path":{:?},"host":1}}}}"#,
                dbx.display().to_string()
            ),
        )
        .unwrap();
        let mut out = Vec::new();
        dropbox_info(&info, &mut out);
        assert_eq!(
            out,
            vec![SyncFolderCandidate {
                provider: "Dropbox (work)".into(),
                path: dbx
            }]
        );
    }
}

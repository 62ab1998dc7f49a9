//! The commands the window calls. Each parses its input and delegates to
//! the engine (through [`crate::engine::Engine::call`]) or to
//! `kluis_client`; errors reach the UI as `{code, message}` ([`UiError`]).

use std::path::{Path, PathBuf};

use kluis_agent::{Action, Alert, Config, ItemProblem, PairState, Skip};
use serde::Serialize;
use tauri::State;

use crate::error::{ErrorCode, UiError};
use crate::i18n;
pub use crate::shell::{AutostartFn, Settings, Shell};
use crate::state::{TrayView, tray_view};

/// One folder pair, for the status window.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct PairView {
    /// Pair id.
    pub id: String,
    /// Plaintext folder.
    pub plain: String,
    /// Encrypted mirror.
    pub mirror: String,
    /// What the pair is doing.
    pub state: PairState,
    /// Why it needs attention (the UI words it).
    pub alert: Option<Alert>,
    /// Files in sync.
    pub synced_files: u32,
    /// Files waiting.
    pub pending: u32,
    /// Failed items, each with its path and why.
    pub errors: Vec<ItemProblem>,
    /// Skipped on purpose (symlinks, special files), each with why.
    pub skipped: Vec<Skip>,
    /// Ciphertext files not encrypted to you or your groups (left alone).
    pub not_shared: Vec<String>,
    /// End of the last reconcile, ms since the epoch.
    pub last_sync_ms: Option<f64>,
}

/// The status window's data.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct StatusView {
    /// Tray state and counts.
    pub tray: TrayView,
    /// This device's name.
    pub device: String,
    /// Whether the engine runs in this app (else: a `kluis agent`).
    pub in_process: bool,
    /// Whether this device has an identity (else the wizard runs).
    pub has_identity: bool,
    /// Folder pairs.
    pub pairs: Vec<PairView>,
}

fn ms(ns: i64) -> f64 {
    (ns / 1_000_000) as f64
}

/// One activity line.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct ActivityView {
    /// Pair id.
    pub pair: String,
    /// What happened (the UI words it).
    pub action: Action,
    /// Plaintext path.
    pub path: String,
    /// Detail (rename target, conflict copy).
    pub detail: Option<String>,
    /// When, ms since the epoch.
    pub at_ms: f64,
}

/// A conflict copy and the file it conflicts with.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct ConflictView {
    /// Pair id.
    pub pair: String,
    /// The conflict copy (relative to the plaintext folder).
    pub copy: String,
    /// The file it is a copy of.
    pub original: String,
}

/// `a/b (conflict dev 2026-01-01).txt` → `a/b.txt`; `None` when `copy` is
/// not a conflict copy (the format is [`kluis_agent::copy_names`]'s).
pub fn conflict_original(copy: &str) -> Option<String> {
    kluis_agent::copy_names::original_path(copy)
}

/// A Dropbox/OneDrive folder found on this machine.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct FolderCandidate {
    /// "Dropbox", "OneDrive", …
    pub provider: String,
    /// The folder.
    pub path: String,
}

fn show(p: &Path) -> String {
    p.display().to_string()
}

/// The status window's data.
#[tauri::command]
#[specta::specta]
pub fn get_status(shell: State<'_, Shell>) -> Result<StatusView, UiError> {
    let s = shell.status()?;
    let conflicts = if s.locked {
        0
    } else {
        shell.conflicts()?.len()
    };
    let tray = tray_view(&s, conflicts);
    Ok(StatusView {
        tray,
        device: s.device.clone(),
        in_process: shell.engine.in_process(),
        has_identity: shell.engine.home().identity_file().exists(),
        pairs: s
            .pairs
            .iter()
            .map(|p| PairView {
                id: p.id.clone(),
                plain: show(&p.plain),
                mirror: show(&p.mirror),
                state: p.state,
                alert: p.alert.clone(),
                synced_files: u32::try_from(p.synced_files).unwrap_or(u32::MAX),
                pending: u32::try_from(p.deferred).unwrap_or(u32::MAX),
                errors: p.errors.clone(),
                skipped: p.skips.clone(),
                not_shared: p.not_shared.clone(),
                last_sync_ms: p.last_sync.map(ms),
            })
            .collect(),
    })
}

/// Recent activity, newest first.
#[tauri::command]
#[specta::specta]
pub fn get_activity(shell: State<'_, Shell>, limit: u32) -> Result<Vec<ActivityView>, UiError> {
    let mut v: Vec<ActivityView> = shell
        .activity(limit.min(1000) as usize)?
        .into_iter()
        .map(|a| ActivityView {
            pair: a.pair,
            action: a.action,
            path: a.path,
            detail: a.detail,
            at_ms: ms(a.at),
        })
        .collect();
    v.reverse();
    Ok(v)
}

/// Conflict copies with their originals.
#[tauri::command]
#[specta::specta]
pub fn get_conflicts(shell: State<'_, Shell>) -> Result<Vec<ConflictView>, UiError> {
    Ok(shell
        .conflicts()?
        .into_iter()
        .map(|c| ConflictView {
            original: conflict_original(&c.path).unwrap_or_else(|| c.path.clone()),
            pair: c.pair,
            copy: c.path,
        })
        .collect())
}

/// Pause syncing.
#[tauri::command]
#[specta::specta]
pub fn pause_sync(shell: State<'_, Shell>) -> Result<(), UiError> {
    shell.pause()
}

/// Resume syncing; `allow_deletions` lets a guarded mass deletion through once.
#[tauri::command]
#[specta::specta]
pub fn resume_sync(shell: State<'_, Shell>, allow_deletions: bool) -> Result<(), UiError> {
    shell.resume(allow_deletions)
}

/// Lock the identity.
#[tauri::command]
#[specta::specta]
pub fn lock_identity(shell: State<'_, Shell>) -> Result<(), UiError> {
    shell.lock()
}

/// Unlock the identity (rate-limited).
#[tauri::command]
#[specta::specta]
pub fn unlock_identity(shell: State<'_, Shell>, password: String) -> Result<(), UiError> {
    shell.unlock(password)
}

fn pair_root(shell: &Shell, pair: &str, mirror: bool) -> Result<PathBuf, UiError> {
    let s = shell.status()?;
    let p = s
        .pairs
        .iter()
        .find(|p| p.id == pair)
        .ok_or_else(|| UiError::new(ErrorCode::Pair, format!("no folder pair {pair}")))?;
    Ok(if mirror {
        p.mirror.clone()
    } else {
        p.plain.clone()
    })
}

/// A path inside a pair, refusing `..` and absolute paths.
fn inside(root: &Path, rel: &str) -> Result<PathBuf, UiError> {
    let p = Path::new(rel);
    if rel.is_empty()
        || p.components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(UiError::new(
            ErrorCode::BadPath,
            format!("{rel} is not a path inside the folder"),
        ));
    }
    Ok(root.join(p))
}

fn open(p: &Path) -> Result<(), UiError> {
    tauri_plugin_opener::open_path(p, None::<&str>)
        .map_err(|e| UiError::new(ErrorCode::Open, format!("{}: {e}", p.display())))
}

/// Open a pair's plaintext (`which = "plain"`) or encrypted (`"mirror"`) folder.
#[tauri::command]
#[specta::specta]
pub fn open_folder(shell: State<'_, Shell>, pair: String, which: String) -> Result<(), UiError> {
    let mirror = match which.as_str() {
        "plain" => false,
        "mirror" => true,
        _ => {
            return Err(UiError::new(
                ErrorCode::BadRequest,
                format!("unknown folder kind {which}"),
            ));
        }
    };
    open(&pair_root(&shell, &pair, mirror)?)
}

/// Open a conflict copy and its original side by side.
#[tauri::command]
#[specta::specta]
pub fn open_conflict(shell: State<'_, Shell>, pair: String, copy: String) -> Result<(), UiError> {
    let root = pair_root(&shell, &pair, false)?;
    let original = conflict_original(&copy).ok_or_else(|| {
        UiError::new(ErrorCode::BadPath, format!("{copy} is not a conflict copy"))
    })?;
    open(&inside(&root, &original)?)?;
    open(&inside(&root, &copy)?)
}

/// Settings, with the language in effect.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct SettingsView {
    /// Stored settings.
    pub settings: Settings,
    /// The language in use.
    pub language: String,
    /// Languages offered.
    pub languages: Vec<String>,
}

/// The settings.
#[tauri::command]
#[specta::specta]
pub fn get_settings(shell: State<'_, Shell>) -> SettingsView {
    SettingsView {
        settings: shell.settings(),
        language: shell.language(),
        languages: i18n::LANGUAGES.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// Override the language (`None`: follow the OS).
#[tauri::command]
#[specta::specta]
pub fn set_language(shell: State<'_, Shell>, language: Option<String>) -> Result<(), UiError> {
    if let Some(l) = &language
        && !i18n::LANGUAGES.contains(&l.as_str())
    {
        return Err(UiError::new(
            ErrorCode::BadRequest,
            format!("unknown language {l}"),
        ));
    }
    let mut s = shell.settings();
    s.language = language;
    shell.save_settings(s)
}

/// Start at login, or not.
#[tauri::command]
#[specta::specta]
pub fn set_autostart(shell: State<'_, Shell>, enabled: bool) -> Result<(), UiError> {
    shell
        .set_autostart(enabled)
        .map_err(|e| UiError::new(ErrorCode::Autostart, e))?;
    let mut s = shell.settings();
    s.autostart = enabled;
    shell.save_settings(s)
}

/// Where the wizard suggests to put the folders.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct FolderSuggestion {
    /// Dropbox and OneDrive folders found on this machine.
    pub found: Vec<FolderCandidate>,
    /// Suggested plaintext folder (`~/Kluis`, or `Kluis/` in `KLUIS_HOME`).
    pub plain: String,
    /// Suggested mirror: `Kluis/` in the first sync folder found, else `~/Kluis-encrypted`.
    pub mirror: String,
}

/// The folders found on this machine and the suggested pair (as `kluis start` picks them).
#[tauri::command]
#[specta::specta]
pub fn suggest_folders() -> Result<FolderSuggestion, UiError> {
    let s = kluis_client::suggest_pair()
        .ok_or_else(|| UiError::new(ErrorCode::NoHome, "cannot find your home folder"))?;
    Ok(FolderSuggestion {
        plain: show(&s.plain),
        mirror: show(&s.mirror),
        found: s
            .found
            .into_iter()
            .map(|c| FolderCandidate {
                provider: c.provider,
                path: show(&c.path),
            })
            .collect(),
    })
}

/// Create this device's identity (a new key pair), sealed with `password`
/// in the identity file, as `kluis keygen` does. Refuses to overwrite one.
#[tauri::command]
#[specta::specta]
pub fn create_identity(shell: State<'_, Shell>, password: String) -> Result<(), UiError> {
    let password = zeroize::Zeroizing::new(password);
    kluis_client::account::create_local_identity(shell.engine.home(), &password)?;
    Ok(())
}

/// Pair a plaintext folder with a mirror folder and restart the engine on
/// the new configuration (it starts locked).
#[tauri::command]
#[specta::specta]
pub fn add_folder_pair(
    shell: State<'_, Shell>,
    plain: String,
    mirror: String,
) -> Result<(), UiError> {
    if plain.trim().is_empty() || mirror.trim().is_empty() {
        return Err(UiError::new(
            ErrorCode::BadRequest,
            "both folders are needed",
        ));
    }
    kluis_client::folders::add_pair(
        shell.engine.home(),
        Path::new(plain.trim()),
        Path::new(mirror.trim()),
    )?;
    shell.engine.reload().map_err(UiError::from)
}

/// Stop syncing a pair (files are left alone) and restart the engine.
#[tauri::command]
#[specta::specta]
pub fn remove_folder_pair(shell: State<'_, Shell>, pair: String) -> Result<(), UiError> {
    kluis_client::folders::remove_pair(shell.engine.home(), &pair)?;
    shell.engine.reload().map_err(UiError::from)
}

/// A pair's ignore rules: the built-in ones (always on) and this
/// device's own (`.kluisignore` in the plaintext folder, never synced).
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct IgnoreView {
    /// Always ignored (editor lock and swap files, OS litter, Kluis's own).
    pub builtin: Vec<String>,
    /// This device's own patterns, one name glob (`*`, `?`) each.
    pub user: Vec<String>,
}

fn pair_plain(shell: &Shell, pair: &str) -> Result<PathBuf, UiError> {
    let cfg = Config::load(shell.engine.home())?;
    cfg.pairs
        .into_iter()
        .find(|p| p.id == pair)
        .map(|p| p.plain)
        .ok_or_else(|| UiError::new(ErrorCode::NoSuchPair, format!("no folder pair {pair}")))
}

fn ignore_error(e: kluis_agent::ignore::IgnoreError) -> UiError {
    let code = match e {
        kluis_agent::ignore::IgnoreError::Io { .. } => ErrorCode::Io,
        _ => ErrorCode::BadPattern,
    };
    UiError::new(code, e.to_string())
}

/// The ignore rules of a folder pair.
#[tauri::command]
#[specta::specta]
pub fn get_ignore_patterns(shell: State<'_, Shell>, pair: String) -> Result<IgnoreView, UiError> {
    let plain = pair_plain(&shell, &pair)?;
    Ok(IgnoreView {
        builtin: kluis_agent::ignore::BUILTIN_IGNORES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        user: kluis_agent::ignore::user_ignores(&plain).map_err(ignore_error)?,
    })
}

/// Replace this device's ignore rules for a pair (blank lines dropped).
/// Paths they match are left alone from then on, on this device only:
/// nothing is deleted anywhere.
#[tauri::command]
#[specta::specta]
pub fn set_ignore_patterns(
    shell: State<'_, Shell>,
    pair: String,
    patterns: Vec<String>,
) -> Result<(), UiError> {
    let plain = pair_plain(&shell, &pair)?;
    let patterns: Vec<String> = patterns
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .collect();
    kluis_agent::ignore::set_user_ignores(&plain, &patterns).map_err(ignore_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_copies_map_to_their_originals() {
        assert_eq!(
            conflict_original("a/b (conflict dev 2026-01-01).txt").as_deref(),
            Some("a/b.txt")
        );
        assert_eq!(
            conflict_original("notes (conflict x 2026-01-01)").as_deref(),
            Some("notes")
        );
        assert_eq!(conflict_original("plain.txt"), None);
    }

    #[test]
    fn paths_stay_inside_the_folder() {
        let root = Path::new("/r");
        assert!(inside(root, "../etc/passwd").is_err());
        assert!(inside(root, "/etc/passwd").is_err());
        assert!(inside(root, "").is_err());
        assert_eq!(inside(root, "a/b.txt").unwrap(), Path::new("/r/a/b.txt"));
    }
}

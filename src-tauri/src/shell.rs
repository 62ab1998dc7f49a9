//! The state the commands, the share dialog and the tray share: the
//! engine, the app's settings, the unlock rate limit and the running
//! share's progress. Its own module, so that `commands` and `share` each
//! depend on it and not on each other.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kluis_agent::{Request, Response, Status};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{ErrorCode, UiError};
use crate::i18n;
use crate::limiter::Limiter;
use crate::state::{TrayView, tray_view};

/// Progress of the running share, for the dialog's bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, specta::Type)]
pub struct ShareProgressView {
    /// Files handled.
    pub done: u32,
    /// Files in all (0 until counted).
    pub total: u32,
    /// Whether a share is running.
    pub running: bool,
}

/// The share in progress (one at a time), shared with the dialog's poll.
pub type ShareProgress = Arc<Mutex<ShareProgressView>>;

/// The app's own preferences (`tray.json` in the config directory).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct Settings {
    /// Language override (`en`, `nl`, `fr`); the OS language when absent.
    pub language: Option<String>,
    /// Start at login (on unless the user opted out).
    #[serde(default = "yes")]
    pub autostart: bool,
}

fn yes() -> bool {
    true
}

/// Turns the OS login item on or off (tauri-plugin-autostart in the app;
/// a recorder in tests).
pub type AutostartFn = Box<dyn Fn(bool) -> Result<(), String> + Send + Sync>;

/// State shared by the commands and the tray.
pub struct Shell {
    /// The sync engine.
    pub engine: Engine,
    unlock_attempts: Mutex<Limiter>,
    settings: Mutex<Settings>,
    autostart: AutostartFn,
    /// The share dialog's running share.
    pub share_progress: ShareProgress,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl Shell {
    /// A shell over `engine`, with settings loaded from its config directory.
    pub fn new(engine: Engine, autostart: AutostartFn) -> Shell {
        let settings = std::fs::read(Self::settings_path(&engine))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Settings {
                language: None,
                autostart: true,
            });
        Shell {
            engine,
            unlock_attempts: Mutex::new(Limiter::default()),
            settings: Mutex::new(settings),
            autostart,
            share_progress: Default::default(),
        }
    }

    fn settings_path(engine: &Engine) -> PathBuf {
        engine.home().config.join("tray.json")
    }

    /// Current settings.
    pub fn settings(&self) -> Settings {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Save and apply new settings (`tray.json`, atomically).
    pub fn save_settings(&self, s: Settings) -> Result<(), UiError> {
        let path = Self::settings_path(&self.engine);
        let io =
            |e: std::io::Error| UiError::new(ErrorCode::Io, format!("{}: {e}", path.display()));
        std::fs::create_dir_all(&self.engine.home().config).map_err(io)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&s).unwrap_or_default()).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = s;
        Ok(())
    }

    /// Turn the OS login item on or off.
    pub fn set_autostart(&self, enabled: bool) -> Result<(), String> {
        (self.autostart)(enabled)
    }

    /// The language in use: the override, else the OS language.
    pub fn language(&self) -> String {
        self.settings()
            .language
            .unwrap_or_else(|| i18n::os_language().to_owned())
    }

    /// The agent's status.
    pub fn status(&self) -> Result<Status, UiError> {
        match self.engine.call(&Request::Status)? {
            Response::Status(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// Conflict copies.
    pub fn conflicts(&self) -> Result<Vec<kluis_agent::ConflictEntry>, UiError> {
        match self.engine.call(&Request::Conflicts)? {
            Response::Conflicts { entries } => Ok(entries),
            other => Err(unexpected(&other)),
        }
    }

    /// Recent activity.
    pub fn activity(&self, limit: usize) -> Result<Vec<kluis_agent::ActivityEntry>, UiError> {
        match self.engine.call(&Request::Activity { limit })? {
            Response::Activity { entries } => Ok(entries),
            other => Err(unexpected(&other)),
        }
    }

    /// The tray view now.
    pub fn tray_view(&self) -> Result<TrayView, UiError> {
        let s = self.status()?;
        let c = if s.locked { 0 } else { self.conflicts()?.len() };
        Ok(tray_view(&s, c))
    }

    fn ok(&self, req: &Request) -> Result<(), UiError> {
        self.engine.call(req).map(|_| ()).map_err(UiError::from)
    }

    /// Pause every pair.
    pub fn pause(&self) -> Result<(), UiError> {
        self.ok(&Request::Pause { pair: None })
    }

    /// Resume every pair.
    pub fn resume(&self, allow_deletions: bool) -> Result<(), UiError> {
        self.ok(&Request::Resume {
            pair: None,
            allow_deletions,
            restore: false,
        })
    }

    /// Lock the identity.
    pub fn lock(&self) -> Result<(), UiError> {
        self.ok(&Request::Lock)
    }

    /// Unlock, rate-limited.
    pub fn unlock(&self, password: String) -> Result<(), UiError> {
        let password = zeroize::Zeroizing::new(password);
        let now = Instant::now();
        let mut limiter = self
            .unlock_attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Err(wait) = limiter.check(now) {
            return Err(UiError::new(
                ErrorCode::TooManyAttempts,
                format!(
                    "too many wrong passwords; try again in {} s",
                    wait.as_secs().max(1)
                ),
            ));
        }
        if !self.engine.home().identity_file().exists() {
            return Err(UiError::new(
                ErrorCode::NoIdentity,
                "this device has no Kluis identity yet",
            ));
        }
        let r = self.ok(&Request::Unlock {
            passphrase: password.to_string(),
        });
        match &r {
            Ok(()) => limiter.succeeded(),
            Err(e) if e.code == ErrorCode::WrongPassword => limiter.failed(now),
            Err(_) => {}
        }
        r
    }
}

fn unexpected(r: &Response) -> UiError {
    UiError::new(
        ErrorCode::AgentProtocol,
        format!("unexpected answer from the agent: {r:?}"),
    )
}

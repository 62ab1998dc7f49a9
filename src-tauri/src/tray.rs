//! The tray icon and its menu, kept in step with the agent: a loop polls
//! the status every 250 ms and swaps the icon and the menu labels when the
//! view changes, so a state change shows within a second.

use std::time::{Duration, Instant};

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;

use crate::i18n::t;
use crate::notify::{NoteKind, Notifier};
use crate::shell::Shell;
use crate::state::{TrayKind, TrayView};

const POLL: Duration = Duration::from_millis(250);

struct Items<R: Runtime> {
    status: MenuItem<R>,
    open_plain: MenuItem<R>,
    open_mirror: MenuItem<R>,
    pause: MenuItem<R>,
    lock: MenuItem<R>,
    share: MenuItem<R>,
    settings: MenuItem<R>,
    show: MenuItem<R>,
    quit: MenuItem<R>,
}

/// The menu's status line for a view.
pub fn status_line(lang: &str, v: &TrayView) -> String {
    let n = |key: &str, x: u32| crate::i18n::plural(lang, key, u64::from(x), &[]);
    t(
        lang,
        &format!("tray.status.{}", v.kind.name()),
        &[
            ("pending", n("tray.count.pending", v.pending)),
            ("conflicts", n("status.conflict_count", v.conflicts)),
            ("errors", n("tray.count.errors", v.errors)),
        ],
    )
}

fn label<R: Runtime>(items: &Items<R>, lang: &str, v: Option<&TrayView>) {
    let s = |k: &str| t(lang, k, &[]);
    let _ = items
        .status
        .set_text(v.map_or_else(|| s("tray.status.unavailable"), |v| status_line(lang, v)));
    let paused = v.is_some_and(|v| v.paused);
    let locked = v.is_none_or(|v| v.locked);
    let _ = items.pause.set_text(s(if paused {
        "tray.menu.resume"
    } else {
        "tray.menu.pause"
    }));
    let _ = items.lock.set_text(s(if locked {
        "tray.menu.unlock"
    } else {
        "tray.menu.lock"
    }));
    let _ = items.open_plain.set_text(s("tray.menu.open_kluis"));
    let _ = items.open_mirror.set_text(s("tray.menu.open_sync"));
    let _ = items.share.set_text(s("tray.menu.share"));
    let _ = items.settings.set_text(s("tray.menu.settings"));
    let _ = items.show.set_text(s("tray.menu.show"));
    let _ = items.quit.set_text(s("tray.menu.quit"));
}

fn first_pair_folder<R: Runtime>(app: &AppHandle<R>, mirror: bool) {
    let shell = app.state::<Shell>();
    if let Ok(s) = shell.status()
        && let Some(p) = s.pairs.first()
    {
        let dir = if mirror { &p.mirror } else { &p.plain };
        let _ = tauri_plugin_opener::open_path(dir, None::<&str>);
    } else {
        crate::show_main(app, Some("wizard"));
    }
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let shell = app.state::<Shell>();
    match id {
        "open_plain" => first_pair_folder(app, false),
        "open_mirror" => first_pair_folder(app, true),
        "pause" => {
            let paused = shell.tray_view().is_ok_and(|v| v.paused);
            let _ = if paused {
                shell.resume(false)
            } else {
                shell.pause()
            };
        }
        "lock" => {
            if shell.status().is_ok_and(|s| s.locked) {
                crate::show_main(app, Some("unlock"));
            } else {
                let _ = shell.lock();
            }
        }
        "share" => crate::show_main(app, Some("share")),
        "settings" => crate::show_main(app, Some("settings")),
        "show" => crate::show_main(app, Some("status")),
        "quit" => app.exit(0),
        _ => {}
    }
}

/// Create the tray icon and start the loop that keeps it current.
pub fn install<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let shell = app.state::<Shell>();
    let lang = shell.language();
    let item = |id: &str, enabled: bool| MenuItem::with_id(app, id, id, enabled, None::<&str>);
    let items = Items {
        status: item("status", false)?,
        open_plain: item("open_plain", true)?,
        open_mirror: item("open_mirror", true)?,
        pause: item("pause", true)?,
        lock: item("lock", true)?,
        share: item("share", true)?,
        settings: item("settings", true)?,
        show: item("show", true)?,
        quit: item("quit", true)?,
    };
    let view = shell.tray_view().ok();
    label(&items, &lang, view.as_ref());
    let menu = Menu::with_items(
        app,
        &[
            &items.status,
            &PredefinedMenuItem::separator(app)?,
            &items.show,
            &items.open_plain,
            &items.open_mirror,
            &PredefinedMenuItem::separator(app)?,
            &items.pause,
            &items.lock,
            &items.share,
            &items.settings,
            &PredefinedMenuItem::separator(app)?,
            &items.quit,
        ],
    )?;
    let kind = view.as_ref().map_or(TrayKind::Attention, |v| v.kind);
    let mut builder = TrayIconBuilder::with_id("kluis")
        .icon(Image::from_bytes(kind.icon_png())?)
        .tooltip("Kluis")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| on_menu(app, event.id().as_ref()));
    // Where tray-icon writes the icon files the StatusNotifierItem points at
    // (the D-Bus tray test reads them back from here).
    if let Some(dir) = std::env::var_os("KLUIS_TRAY_ICON_DIR") {
        builder = builder.temp_dir_path(std::path::PathBuf::from(dir));
    }
    let tray = builder.build(app)?;
    watch_recoveries(app.clone())?;
    let app = app.clone();
    std::thread::Builder::new()
        .name("kluis-tray-loop".into())
        .spawn(move || {
            let mut shown = (view, kind, lang);
            let mut notifier = Notifier::new(Duration::from_secs(30));
            loop {
                std::thread::sleep(POLL);
                let shell = app.state::<Shell>();
                let lang = shell.language();
                let view = shell.tray_view().ok();
                let kind = view.as_ref().map_or(TrayKind::Attention, |v| v.kind);
                if (&view, kind, &lang) != (&shown.0, shown.1, &shown.2) {
                    if kind != shown.1
                        && let Ok(img) = Image::from_bytes(kind.icon_png())
                    {
                        let _ = tray.set_icon(Some(img));
                    }
                    label(&items, &lang, view.as_ref());
                    let _ = app.emit("status-changed", &view);
                    shown = (view, kind, lang.clone());
                }
                notifier.set_language(&lang);
                if let (Ok(status), Ok(activity)) = (shell.status(), shell.activity(200)) {
                    for note in notifier.observe(Instant::now(), &activity, &status) {
                        let (title, body) = match note.kind {
                            NoteKind::Conflict => ("notify.conflict.title", "notify.conflict.body"),
                            NoteKind::NeedsAction => ("notify.action.title", "notify.action.body"),
                            NoteKind::SharedWithYou => {
                                ("notify.shared.title", "notify.shared.body")
                            }
                        };
                        let args = [("example", note.example.clone())];
                        let count = note.count as u64;
                        let _ = app
                            .notification()
                            .builder()
                            .title(t(&lang, title, &args))
                            .body(crate::i18n::plural(&lang, body, count, &args))
                            .show();
                    }
                }
            }
        })?;
    Ok(())
}

/// How often the broker is asked whether IT recovered this key.
const RECOVERY_POLL: Duration = Duration::from_secs(300);

/// Tell the person, once per recovery and device, when IT recovered their
/// key: who approved, who re-sealed it, when
/// (`kluis_client::account::new_recoveries`). Asked shortly after start,
/// then every five minutes; without an organisation account, never.
fn watch_recoveries<R: Runtime>(app: AppHandle<R>) -> tauri::Result<()> {
    std::thread::Builder::new()
        .name("kluis-recovery-watch".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            std::thread::sleep(Duration::from_secs(5));
            loop {
                let shell = app.state::<Shell>();
                let home = shell.engine.home().clone();
                if let Ok(fresh) = rt.block_on(kluis_client::account::new_recoveries(&home)) {
                    let lang = shell.language();
                    for r in &fresh {
                        let args = crate::notify::recovery_args(r);
                        let _ = app
                            .notification()
                            .builder()
                            .title(t(&lang, "notify.recovered.title", &args))
                            .body(t(&lang, "notify.recovered.body", &args))
                            .show();
                    }
                }
                std::thread::sleep(RECOVERY_POLL);
            }
        })?;
    Ok(())
}

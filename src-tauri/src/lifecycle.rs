//! How the app stays and how it goes. Closing the window hides it: the app goes on in the tray,
//! watching the platform, and the tray's "Open dashboard" shows the window again. Only the tray's
//! "Quit" ends the app, and while a setup is being applied it asks first, in the window: quitting
//! then stops the setup after the step in progress, and opening Twofold again resumes it. Without
//! a tray (none could be created) closing the window quits, with the same question during a setup.
//! "Open logs" opens the folder of the app's log files with the desktop's file manager.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tauri::{AppHandle, Emitter, Manager, State, Window, WindowEvent};

use crate::error::UiError;
use crate::wizard::WizardRuns;

/// The window's label (src-tauri/tauri.conf.json).
pub const MAIN_WINDOW: &str = "main";
/// The event that asks the window to confirm quitting during a setup (ui/src/quit.ts).
pub const QUIT_REQUESTED: &str = "quit-requested";
/// How long quitting waits for the step in progress to finish before the app ends regardless
/// (the step is then left as if the app had been killed, which the next run resumes too).
const STOP_WAIT: Duration = Duration::from_secs(600);

/// What the app knows about its own surroundings, set up once at start.
pub struct Lifecycle {
    tray: AtomicBool,
    log_dir: Option<PathBuf>,
}

impl Lifecycle {
    pub fn new(log_dir: Option<PathBuf>) -> Lifecycle {
        Lifecycle {
            tray: AtomicBool::new(false),
            log_dir,
        }
    }

    pub fn set_tray(&self, shown: bool) {
        self.tray.store(shown, Ordering::SeqCst);
    }

    fn tray(&self) -> bool {
        self.tray.load(Ordering::SeqCst)
    }

    /// The folder of the log files (none when the app logs to stderr).
    pub fn log_dir(&self) -> Option<&PathBuf> {
        self.log_dir.as_ref()
    }
}

fn applying(app: &AppHandle) -> bool {
    app.try_state::<WizardRuns>().is_some_and(|r| r.applying())
}

/// The window's close button: hide to the tray, so the status loop and the tray go on.
pub fn on_window_event(window: &Window, event: &WindowEvent) {
    let WindowEvent::CloseRequested { api, .. } = event else {
        return;
    };
    if window.label() != MAIN_WINDOW {
        return;
    }
    let app = window.app_handle();
    let tray = app.try_state::<Lifecycle>().is_some_and(|l| l.tray());
    if tray {
        api.prevent_close();
        match window.hide() {
            Ok(()) => tracing::info!("window closed: Twofold goes on in the tray"),
            Err(e) => tracing::warn!("cannot hide the window: {e}"),
        }
    } else if applying(app) {
        api.prevent_close();
        ask_before_quitting(app);
    } else {
        tracing::info!("window closed and no tray: quitting");
    }
}

/// The tray's "Quit": at once, unless a setup is being applied.
pub fn request_quit(app: &AppHandle) {
    if applying(app) {
        ask_before_quitting(app);
    } else {
        tracing::info!("quit from the tray");
        app.exit(0);
    }
}

fn ask_before_quitting(app: &AppHandle) {
    tracing::info!("quit asked during a setup: asking the user first");
    show_main_window(app);
    if let Err(e) = app.emit_to(MAIN_WINDOW, QUIT_REQUESTED, ()) {
        tracing::warn!("cannot ask the window whether to quit: {e}");
    }
}

pub fn show_main_window(app: &AppHandle) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        // Best effort: a window manager may refuse focus, which is harmless.
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// Quit, confirmed by the user: a setup being applied stops after its step in progress (so no
/// step is left half-done), then the app ends. Returns at once; the window shows that it stops.
#[tauri::command]
pub async fn quit_app(app: AppHandle, runs: State<'_, WizardRuns>) -> Result<(), UiError> {
    if !runs.cancel_apply() {
        tracing::info!("quit confirmed");
        app.exit(0);
        return Ok(());
    }
    tracing::info!("quit confirmed during a setup: it stops after the step in progress");
    tauri::async_runtime::spawn(async move {
        let start = Instant::now();
        while app.state::<WizardRuns>().applying() {
            if start.elapsed() > STOP_WAIT {
                tracing::warn!(
                    "the setup's step in progress did not finish within {} s; quitting anyway (the next run resumes it)",
                    STOP_WAIT.as_secs()
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tracing::info!("setup stopped; quitting");
        app.exit(0);
    });
    Ok(())
}

/// The tray's "Open logs": the log folder in the desktop's file manager (xdg-open and the like).
/// Where that fails, a notification says where the folder is.
pub fn open_logs(app: &AppHandle) {
    let Some(dir) = app
        .try_state::<Lifecycle>()
        .and_then(|l| l.log_dir().cloned())
    else {
        return;
    };
    tracing::info!("opening the log folder {}", dir.display());
    // Off the main thread: each opener tried is watched for a moment to see whether it failed.
    let spawned = std::thread::Builder::new()
        .name("open-logs".into())
        .spawn(move || {
            if let Err(e) = open::that_detached(&dir) {
                tracing::warn!("cannot open {}: {e}", dir.display());
                let body = format!(
                    "No program to open folders was found ({e}). The logs are in {}",
                    dir.display()
                );
                if let Err(e) = twofold::notify::desktop(
                    "Twofold",
                    "Twofold's logs",
                    &body,
                    twofold::notify::Urgency::Normal,
                ) {
                    tracing::warn!("{e}");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot open the log folder: no thread: {e}");
    }
}

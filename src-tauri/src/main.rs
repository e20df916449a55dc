//! Twofold's desktop app: a Tauri v2 shell around the engine. The window runs the setup wizard
//! (until a platform is set up) and then lists the nodes, VMs and recent events from the
//! inventory, the platform's live state and a migrate action. A tray icon follows the platform's
//! health and a desktop notification says when a node goes down or comes back; restore dialogs
//! come later. Closing the window leaves the app in the tray ([`lifecycle`]); its log lines go
//! to daily files in `$XDG_DATA_HOME/twofold/logs` (the tray's "Open logs"). Commands are thin
//! delegates into `twofold` and hand errors to the front end as `{code, message}` (see
//! [`error::UiError`]).

mod bindings;
mod commands;
mod error;
mod lifecycle;
mod shutdown;
mod smoke;
mod status;
mod tray;
mod wizard;

use tauri::Manager;

fn main() {
    let log_dir = start_logging();
    let smoke = smoke::Smoke::from_env();
    smoke.arm_safety_timeout();

    let result = tauri::Builder::default()
        .plugin(shutdown::plugin())
        .manage(smoke)
        .manage(commands::Db::default())
        .manage(wizard::WizardRuns::default())
        .manage(lifecycle::Lifecycle::new(log_dir))
        .on_window_event(lifecycle::on_window_event)
        .setup(|app| {
            // No tray host (a bare X server in CI, some desktops) is no reason to refuse to start.
            match tray::install(app) {
                Ok(()) => app.state::<lifecycle::Lifecycle>().set_tray(true),
                Err(e) => tracing::warn!("no tray icon ({e}): closing the window quits"),
            }
            status::start(app.handle());
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::list_nodes,
            commands::list_vms,
            commands::recent_events,
            commands::vm_migrate,
            status::platform_status,
            status::status_history,
            wizard::wizard_load,
            wizard::wizard_save,
            wizard::wizard_clear,
            wizard::scan_host_keys,
            wizard::setup_preflight,
            wizard::setup_plan,
            wizard::setup_apply,
            wizard::setup_cancel,
            wizard::setup_verify,
            wizard::scorecard,
            wizard::lab_try,
            smoke::smoke_enabled,
            smoke::smoke_report,
            lifecycle::quit_app,
        ])
        .run(tauri::generate_context!());

    if let Err(e) = result {
        tracing::error!("cannot start the window: {e}");
        eprintln!("twofold-desktop: cannot start the window: {e}");
        twofold::shutdown::exit(1);
    }
}

/// Log lines to daily files in the user's data directory, where a desktop program's user can find
/// them (nobody reads its stderr); to stderr when there is no such directory. Returns the folder.
fn start_logging() -> Option<std::path::PathBuf> {
    use twofold::logging::{self, Output};
    let filter = "warn,twofold=info,twofold_desktop=info";
    let output = match logging::user_log_dir() {
        Some(dir) => Output::Files {
            dir,
            prefix: "twofold-desktop".into(),
        },
        None => Output::Stderr,
    };
    let installed = logging::init(output, filter);
    let dir = match installed.output {
        Output::Files { dir, .. } => Some(dir),
        _ => None,
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        logs = %dir.as_ref().map_or("stderr".into(), |d| d.display().to_string()),
        "Twofold desktop starting"
    );
    dir
}

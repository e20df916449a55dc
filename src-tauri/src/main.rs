//! Twofold's desktop app: a Tauri v2 shell around the engine. The window runs the setup wizard
//! (until a platform is set up) and then lists the nodes, VMs and recent events from the
//! inventory, the platform's live state and a migrate action. A tray icon follows the platform's
//! health and a desktop notification says when a node goes down or comes back; restore dialogs
//! come later. Commands are thin
//! delegates into `twofold` and hand errors to the front end as `{code, message}` (see
//! [`error::UiError`]).

mod bindings;
mod commands;
mod error;
mod smoke;
mod status;
mod tray;
mod wizard;

fn main() {
    let smoke = smoke::Smoke::from_env();
    smoke.arm_safety_timeout();

    let result = tauri::Builder::default()
        .manage(smoke)
        .manage(commands::Db::default())
        .manage(wizard::WizardRuns::default())
        .setup(|app| {
            // No tray host (a bare X server in CI, some desktops) is no reason to refuse to start.
            if let Err(e) = tray::install(app) {
                eprintln!("twofold-desktop: no tray icon: {e}");
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
        ])
        .run(tauri::generate_context!());

    if let Err(e) = result {
        eprintln!("twofold-desktop: cannot start the window: {e}");
        std::process::exit(1);
    }
}

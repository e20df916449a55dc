//! Twofold's desktop app: a Tauri v2 shell around the engine. This first window lists the nodes,
//! VMs and recent events from the inventory; the setup wizard, restore dialogs and the
//! tray-resident supervisor come later. Commands are thin delegates into `twofold` and hand errors
//! to the front end as `{code, message}` (see [`error::UiError`]).

mod commands;
mod error;
mod smoke;
mod tray;

fn main() {
    let smoke = smoke::Smoke::from_env();
    smoke.arm_safety_timeout();

    let result = tauri::Builder::default()
        .manage(smoke)
        .manage(commands::Db::default())
        .setup(|app| {
            // No tray host (a bare X server in CI, some desktops) is no reason to refuse to start.
            if let Err(e) = tray::install(app) {
                eprintln!("twofold-desktop: no tray icon: {e}");
            }
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::list_nodes,
            commands::list_vms,
            commands::recent_events,
            smoke::smoke_enabled,
            smoke::smoke_report,
        ])
        .run(tauri::generate_context!());

    if let Err(e) = result {
        eprintln!("twofold-desktop: cannot start the window: {e}");
        std::process::exit(1);
    }
}

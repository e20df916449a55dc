//! The tray icon: for now a way back to the window and a way out. The tray-resident supervisor
//! (status, notifications, maintenance mode) will grow here.

use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{App, AppHandle, Manager};

pub fn install(app: &App) -> tauri::Result<()> {
    let open = MenuItem::with_id(app, "open", "Open Twofold", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit Twofold", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&open, &quit])?;
    let mut tray = TrayIconBuilder::with_id("twofold")
        .tooltip("Twofold")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "open" => show_main_window(app),
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}

fn show_main_window(app: &AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        // Best effort: a window manager may refuse focus, which is harmless.
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

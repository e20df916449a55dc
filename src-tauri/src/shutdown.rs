//! The app's end: when Tauri's event loop exits (the last window closed, or "Quit"), the engine
//! is shut down in order before Tauri ends the process (see `twofold::shutdown`). A plugin,
//! because plugins hear the `Exit` event whatever else the app does with its run loop.

use tauri::plugin::{Builder, TauriPlugin};
use tauri::{RunEvent, Runtime};

pub fn plugin<R: Runtime>() -> TauriPlugin<R> {
    Builder::new("twofold-shutdown")
        .on_event(|_app, event| {
            if let RunEvent::Exit = event {
                let report = twofold::shutdown::shutdown();
                if let Some(problem) = report.problem() {
                    tracing::warn!("{problem}");
                }
            }
        })
        .build()
}

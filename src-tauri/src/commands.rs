//! The commands the window calls. Each is a one-line delegate into the engine's inventory; nothing
//! here decides anything.
//!
//! They are `async` and run their SQLite work on Tokio's blocking pool (`spawn_blocking`): a Tauri
//! command without `async` runs on the main thread, where a read that waits out the inventory's
//! busy timeout (the supervisor writing) would freeze the window.

use std::sync::{Arc, Mutex};

use tauri::State;
use twofold::inventory::{default_path, Event, Inventory, VmRecord};
use twofold::nodes::NodeSpec;

use crate::error::UiError;

/// Most events one call returns; the window shows a short recent list, not the whole timeline.
const MAX_EVENTS: usize = 200;

#[tauri::command]
pub async fn list_nodes(db: State<'_, Db>) -> Result<Vec<NodeSpec>, UiError> {
    db.with(|inv| inv.nodes()).await
}

#[tauri::command]
pub async fn list_vms(db: State<'_, Db>) -> Result<Vec<VmRecord>, UiError> {
    db.with(|inv| inv.vms()).await
}

#[tauri::command]
pub async fn recent_events(db: State<'_, Db>, limit: usize) -> Result<Vec<Event>, UiError> {
    db.with(move |inv| inv.events(limit.min(MAX_EVENTS))).await
}

/// The app's one connection to the inventory at [`default_path`] (`TWOFOLD_DB` overrides), opened
/// on first use and shared: the window asks for its lists every few seconds, and opening SQLite
/// (and checking its schema) each time would be wasted work. After an error the connection is
/// dropped and the next call opens the file again, so a damaged inventory that was moved away is
/// not read forever.
#[derive(Default)]
pub struct Db(Arc<Mutex<Option<Inventory>>>);

impl Db {
    async fn with<T, F>(&self, f: F) -> Result<T, UiError>
    where
        T: Send + 'static,
        F: FnOnce(&Inventory) -> twofold::Result<T> + Send + 'static,
    {
        let slot = Arc::clone(&self.0);
        tauri::async_runtime::spawn_blocking(move || {
            // A panic in an earlier call cannot leave the connection half-changed: recover it.
            let mut guard = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let inv = match guard.take() {
                Some(inv) => inv,
                None => Inventory::open(&default_path())?,
            };
            let result = f(&inv);
            if result.is_ok() {
                *guard = Some(inv);
            }
            result
        })
        .await
        .map_err(UiError::internal)?
        .map_err(UiError::from)
    }
}

/// Live-migrate a VM to another host, with progress on the window's channel: the engine's
/// migration with every check made before anything changes (see `twofold::vm::migrate_blocking`).
#[tauri::command]
pub async fn vm_migrate(
    vm: String,
    to: String,
    on_progress: tauri::ipc::Channel<twofold::progress::ProgressEvent>,
) -> Result<twofold::hypervisor::MigrationStats, UiError> {
    tauri::async_runtime::spawn_blocking(move || {
        let inv = Inventory::open(&default_path())?;
        let hosts = twofold::platform::host_targets(&inv)?;
        let progress = crate::wizard::ChannelProgress(on_progress);
        let cancel = twofold::hypervisor::MigrationCancel::new();
        twofold::vm::migrate_blocking(&hosts, &inv, &vm, &to, &progress, &cancel)
    })
    .await
    .map_err(UiError::internal)?
    .map_err(UiError::from)
}

//! The app's window onto the engine's watch ([`twofold::status::watch`]): the engine looks at
//! the platform every few seconds, records what changed in the timeline and sends desktop
//! notifications; this module only routes each look to the tray (icon, tooltip, menu) and the
//! windows (a `status` event), and keeps the recent points of the dashboard's charts.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, State};
use twofold::inventory::default_path;
use twofold::provision::connect;
use twofold::status::watch::{interval_from_env, DesktopNotifier, Watch as EngineWatch};
use twofold::status::{self, Monitor, PlatformStatus};

use crate::error::UiError;

/// Points kept per node for the dashboard's charts: ten minutes at the default interval.
const HISTORY: usize = 120;

/// One point of a node's chart.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub at: i64,
    pub cpu_percent: Option<f64>,
    pub mem_percent: Option<f64>,
    pub up: bool,
}

#[derive(Default)]
pub struct Watch {
    latest: Mutex<Option<PlatformStatus>>,
    history: Mutex<BTreeMap<String, VecDeque<Point>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Watch {
    fn record(&self, s: &PlatformStatus) {
        let mut h = lock(&self.history);
        h.retain(|name, _| s.nodes.iter().any(|n| &n.name == name));
        for n in &s.nodes {
            let points = h.entry(n.name.clone()).or_default();
            points.push_back(Point {
                at: s.checked_at,
                cpu_percent: n.usage.as_ref().and_then(|u| u.cpu_percent),
                mem_percent: n.usage.as_ref().filter(|u| u.mem_total_mib > 0).map(|u| {
                    (u.mem_used_mib as f64 / u.mem_total_mib as f64 * 1000.0).round() / 10.0
                }),
                up: n.state == status::NodeState::Up,
            });
            while points.len() > HISTORY {
                points.pop_front();
            }
        }
        *lock(&self.latest) = Some(s.clone());
    }
}

/// The last look (none before the first one finished).
#[tauri::command]
pub async fn platform_status(
    watch: State<'_, Arc<Watch>>,
) -> Result<Option<PlatformStatus>, UiError> {
    Ok(lock(&watch.latest).clone())
}

/// Every node's recent points, oldest first.
#[tauri::command]
pub async fn status_history(
    watch: State<'_, Arc<Watch>>,
) -> Result<BTreeMap<String, Vec<Point>>, UiError> {
    Ok(lock(&watch.history)
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
        .collect())
}

/// Start watching, for as long as the app runs.
pub fn start(app: &AppHandle) {
    let watch = Arc::new(Watch::default());
    app.manage(Arc::clone(&watch));
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let db = default_path();
        let monitor = Monitor::new(&connect::key_dir(&db).join("twofold_ed25519"));
        let notifier = DesktopNotifier {
            app_name: "Twofold".into(),
        };
        EngineWatch::new(monitor, db, Some(Box::new(notifier)))
            .run(
                interval_from_env(),
                std::future::pending(),
                |look| match look {
                    Ok(look) => {
                        watch.record(&look.status);
                        crate::tray::show(&app, &look.status);
                        let _ = app.emit("status", &look.status);
                    }
                    // The inventory itself could not be read: say so in the tray, keep trying.
                    Err(e) => crate::tray::show_error(
                        &app,
                        &UiError {
                            code: e.code().into(),
                            message: e.to_string(),
                        },
                    ),
                },
            )
            .await;
    });
}

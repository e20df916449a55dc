//! The app's watch over the platform: a task that asks the engine's [`Monitor`] for the
//! platform's state every few seconds, and hands each look to the tray (icon, tooltip, menu), the
//! windows (a `status` event) and, when a node goes down or comes back, to the inventory's
//! timeline and a desktop notification. The look itself is the engine's; this module only routes
//! it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, State};
use twofold::inventory::{default_path, Inventory};
use twofold::provision::connect;
use twofold::status::{self, Monitor, PlatformStatus};

use crate::error::UiError;

/// How often the platform is looked at (`TWOFOLD_STATUS_INTERVAL_MS` overrides, 500 ms at least).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
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

fn interval() -> Duration {
    std::env::var("TWOFOLD_STATUS_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(DEFAULT_INTERVAL, |ms| Duration::from_millis(ms.max(500)))
}

/// Start watching, for as long as the app runs.
pub fn start(app: &AppHandle) {
    let watch = Arc::new(Watch::default());
    app.manage(Arc::clone(&watch));
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let db = default_path();
        let key_dir = connect::key_dir(&db);
        let monitor = Monitor::new(&key_dir.join("twofold_ed25519"));
        let mut previous: Option<PlatformStatus> = None;
        let mut notify_broken = false;
        loop {
            match monitor.poll(&db).await {
                Ok(now) => {
                    let changes = status::transitions(previous.as_ref(), &now);
                    if !changes.is_empty() {
                        let db = db.clone();
                        let recorded = changes.clone();
                        let _ = tauri::async_runtime::spawn_blocking(move || {
                            Inventory::open(&db)
                                .and_then(|inv| status::record_transitions(&inv, &recorded))
                        })
                        .await;
                    }
                    for t in &changes {
                        let urgency = twofold::notify::Urgency::of(t);
                        if let Err(e) =
                            twofold::notify::desktop("Twofold", &t.title, &t.body, urgency)
                        {
                            // Said once: a desktop without a notification server stays so.
                            if !notify_broken {
                                eprintln!("twofold-desktop: {e}");
                                notify_broken = true;
                            }
                        } else {
                            notify_broken = false;
                        }
                    }
                    watch.record(&now);
                    crate::tray::show(&app, &now);
                    let _ = app.emit("status", &now);
                    previous = Some(now);
                }
                Err(e) => {
                    // The inventory itself could not be read: say so in the tray, keep trying.
                    crate::tray::show_error(&app, &UiError::from(e));
                }
            }
            tokio::time::sleep(interval()).await;
        }
    });
}

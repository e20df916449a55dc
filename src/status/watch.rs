//! The watch over the platform: look every few seconds ([`Monitor::poll`]), compare with the
//! previous look ([`transitions`]), record each change in the inventory's timeline and tell a
//! person through a [`Notifier`]. The desktop app and the headless agent run this same loop; a
//! front end only routes each look (the tray redraws, the window gets an event).

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use super::{record_transitions, transitions, Monitor, NodeState, PlatformStatus, Transition};
use crate::error::Result;
use crate::inventory::Inventory;

/// How often the platform is looked at unless `TWOFOLD_STATUS_INTERVAL_MS` says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Looks closer together than this would keep the nodes busy answering.
pub const MIN_INTERVAL: Duration = Duration::from_millis(500);

/// The interval between looks: `TWOFOLD_STATUS_INTERVAL_MS` (at least [`MIN_INTERVAL`]), else
/// [`DEFAULT_INTERVAL`].
pub fn interval_from_env() -> Duration {
    std::env::var("TWOFOLD_STATUS_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(DEFAULT_INTERVAL, |ms| {
            Duration::from_millis(ms).max(MIN_INTERVAL)
        })
}

/// Tells a person about one change. Failing is normal (no notification server): the caller
/// logs it and goes on.
pub trait Notifier: Send + Sync {
    fn notify(&self, t: &Transition) -> std::result::Result<(), String>;
}

/// Desktop notifications ([`crate::notify::desktop`]).
pub struct DesktopNotifier {
    pub app_name: String,
}

impl Notifier for DesktopNotifier {
    fn notify(&self, t: &Transition) -> std::result::Result<(), String> {
        crate::notify::desktop(&self.app_name, &t.title, &t.body, urgency(t))
    }
}

/// A node going down is critical (desktops keep those on screen); anything else is normal.
fn urgency(t: &Transition) -> crate::notify::Urgency {
    match t.to {
        NodeState::Down => crate::notify::Urgency::Critical,
        NodeState::Degraded | NodeState::Up => crate::notify::Urgency::Normal,
    }
}

/// One look and what changed since the previous one.
#[derive(Debug, Clone)]
pub struct Look {
    pub status: PlatformStatus,
    pub changes: Vec<Transition>,
}

/// The loop's state between looks.
pub struct Watch {
    monitor: Monitor,
    db: PathBuf,
    notifier: Option<Box<dyn Notifier>>,
    previous: Option<PlatformStatus>,
    notify_broken: bool,
}

impl Watch {
    /// Watch the platform of the inventory at `db`; `notifier` (if any) hears of every change.
    pub fn new(monitor: Monitor, db: PathBuf, notifier: Option<Box<dyn Notifier>>) -> Watch {
        Watch {
            monitor,
            db,
            notifier,
            previous: None,
            notify_broken: false,
        }
    }

    /// One look: poll, compare with the previous look, record the changes in the timeline and
    /// notify. A change that could not be recorded or notified is logged; the look still counts.
    pub async fn step(&mut self) -> Result<Look> {
        let now = self.monitor.poll(&self.db).await?;
        let changes = transitions(self.previous.as_ref(), &now);
        if !changes.is_empty() {
            let db = self.db.clone();
            let recorded = changes.clone();
            let r = crate::blocking::run("recording status changes", move || {
                record_transitions(&Inventory::open(&db)?, &recorded)
            })
            .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "status changes not recorded in the timeline");
            }
        }
        if let Some(n) = &self.notifier {
            for t in &changes {
                match n.notify(t) {
                    Ok(()) => self.notify_broken = false,
                    // Said once: a desktop without a notification server stays so.
                    Err(e) if !self.notify_broken => {
                        tracing::warn!(error = %e, "no notification");
                        self.notify_broken = true;
                    }
                    Err(_) => {}
                }
            }
        }
        self.previous = Some(now.clone());
        Ok(Look {
            status: now,
            changes,
        })
    }

    /// Look every `interval` (counted from the end of a look) until `stop` completes, and hand
    /// each look, or why there was none (the inventory unreadable), to `on_look`.
    pub async fn run<F>(
        mut self,
        interval: Duration,
        stop: impl Future<Output = ()>,
        mut on_look: F,
    ) where
        F: FnMut(std::result::Result<&Look, &crate::Error>),
    {
        tokio::pin!(stop);
        loop {
            let step = tokio::select! {
                r = self.step() => r,
                () = &mut stop => return,
            };
            if let Err(e) = &step {
                tracing::warn!(error = %e, "the platform could not be looked at");
            }
            on_look(step.as_ref());
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = &mut stop => return,
            }
        }
    }
}

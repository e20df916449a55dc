//! libvirt's event loop and domain lifecycle events.
//!
//! libvirt delivers events, and sends the keepalive messages that detect a dead host, only from
//! an event loop the application runs. Twofold registers libvirt's default implementation once
//! per process and runs it on a dedicated thread named `libvirt-events`; this must happen before
//! a connection is opened, which [`super::HostConn::open_blocking`] takes care of. Code that
//! opens `virt` connections by other means calls [`ensure_event_loop`] first.

use std::sync::mpsc::Sender;
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use virt_sys as sys;

use super::ffi;
use crate::error::{Error, Result};

static EVENT_LOOP: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// Register libvirt's default event loop and start the thread that runs it. Idempotent; cheap
/// after the first call. Also silences libvirt's default error printer: Twofold reports
/// libvirt's errors itself, with context.
///
/// Wraps <https://libvirt.org/html/libvirt-libvirt-event.html#virEventRegisterDefaultImpl> and
/// runs <https://libvirt.org/html/libvirt-libvirt-event.html#virEventRunDefaultImpl> in a loop.
pub fn ensure_event_loop() -> Result<()> {
    EVENT_LOOP
        .get_or_init(|| {
            virt::error::clear_error_callback();
            virt::event::event_register_default_impl()
                .map_err(|e| format!("cannot register the event loop: {}", e.message()))?;
            std::thread::Builder::new()
                .name("libvirt-events".into())
                .spawn(|| loop {
                    if let Err(e) = virt::event::event_run_default_impl() {
                        tracing::warn!("libvirt event loop: {}", e.message());
                        // Do not spin if the loop keeps failing.
                        std::thread::sleep(Duration::from_millis(100));
                    }
                })
                .map_err(|e| format!("cannot start the libvirt event thread: {e}"))?;
            Ok(())
        })
        .clone()
        .map_err(|detail| Error::Libvirt {
            host: "this machine".into(),
            op: "starting the libvirt event loop".into(),
            detail: format!("{detail}; restart Twofold"),
        })
}

/// What happened to a domain (libvirt's `virDomainEventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleKind {
    Defined,
    Undefined,
    Started,
    Suspended,
    Resumed,
    Stopped,
    Shutdown,
    #[serde(rename = "pmsuspended")]
    PMSuspended,
    Crashed,
}

impl LifecycleKind {
    pub(crate) fn from_raw(event: i32) -> Option<LifecycleKind> {
        let Ok(event) = u32::try_from(event) else {
            return None;
        };
        Some(match event {
            sys::VIR_DOMAIN_EVENT_DEFINED => LifecycleKind::Defined,
            sys::VIR_DOMAIN_EVENT_UNDEFINED => LifecycleKind::Undefined,
            sys::VIR_DOMAIN_EVENT_STARTED => LifecycleKind::Started,
            sys::VIR_DOMAIN_EVENT_SUSPENDED => LifecycleKind::Suspended,
            sys::VIR_DOMAIN_EVENT_RESUMED => LifecycleKind::Resumed,
            sys::VIR_DOMAIN_EVENT_STOPPED => LifecycleKind::Stopped,
            sys::VIR_DOMAIN_EVENT_SHUTDOWN => LifecycleKind::Shutdown,
            sys::VIR_DOMAIN_EVENT_PMSUSPENDED => LifecycleKind::PMSuspended,
            sys::VIR_DOMAIN_EVENT_CRASHED => LifecycleKind::Crashed,
            _ => return None,
        })
    }
}

/// A domain lifecycle event seen on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    /// The Twofold host name the subscription was made on.
    pub host: String,
    /// The domain (VM) name.
    pub domain: String,
    pub kind: LifecycleKind,
    /// libvirt's detail code; its meaning depends on `kind` (see [`LifecycleEvent::detail_word`]).
    pub detail: i32,
}

impl LifecycleEvent {
    /// The detail as a word ("booted", "migrated", "destroyed", "crashed", ...), or "other".
    /// The supervisor needs it to tell a VM that left by migration from one that died.
    pub fn detail_word(&self) -> &'static str {
        let Ok(d) = u32::try_from(self.detail) else {
            return "other";
        };
        match self.kind {
            LifecycleKind::Defined => match d {
                sys::VIR_DOMAIN_EVENT_DEFINED_ADDED => "added",
                sys::VIR_DOMAIN_EVENT_DEFINED_UPDATED => "updated",
                sys::VIR_DOMAIN_EVENT_DEFINED_RENAMED => "renamed",
                sys::VIR_DOMAIN_EVENT_DEFINED_FROM_SNAPSHOT => "from_snapshot",
                _ => "other",
            },
            LifecycleKind::Undefined => match d {
                sys::VIR_DOMAIN_EVENT_UNDEFINED_REMOVED => "removed",
                sys::VIR_DOMAIN_EVENT_UNDEFINED_RENAMED => "renamed",
                _ => "other",
            },
            LifecycleKind::Started => match d {
                sys::VIR_DOMAIN_EVENT_STARTED_BOOTED => "booted",
                sys::VIR_DOMAIN_EVENT_STARTED_MIGRATED => "migrated",
                sys::VIR_DOMAIN_EVENT_STARTED_RESTORED => "restored",
                sys::VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT => "from_snapshot",
                sys::VIR_DOMAIN_EVENT_STARTED_WAKEUP => "wakeup",
                _ => "other",
            },
            LifecycleKind::Suspended => match d {
                sys::VIR_DOMAIN_EVENT_SUSPENDED_PAUSED => "paused",
                sys::VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED => "migrated",
                sys::VIR_DOMAIN_EVENT_SUSPENDED_IOERROR => "io_error",
                sys::VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG => "watchdog",
                sys::VIR_DOMAIN_EVENT_SUSPENDED_RESTORED => "restored",
                sys::VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT => "from_snapshot",
                sys::VIR_DOMAIN_EVENT_SUSPENDED_API_ERROR => "api_error",
                sys::VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY => "postcopy",
                sys::VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED => "postcopy_failed",
                _ => "other",
            },
            LifecycleKind::Resumed => match d {
                sys::VIR_DOMAIN_EVENT_RESUMED_UNPAUSED => "unpaused",
                sys::VIR_DOMAIN_EVENT_RESUMED_MIGRATED => "migrated",
                sys::VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT => "from_snapshot",
                sys::VIR_DOMAIN_EVENT_RESUMED_POSTCOPY => "postcopy",
                _ => "other",
            },
            LifecycleKind::Stopped => match d {
                sys::VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN => "shutdown",
                sys::VIR_DOMAIN_EVENT_STOPPED_DESTROYED => "destroyed",
                sys::VIR_DOMAIN_EVENT_STOPPED_CRASHED => "crashed",
                sys::VIR_DOMAIN_EVENT_STOPPED_MIGRATED => "migrated",
                sys::VIR_DOMAIN_EVENT_STOPPED_SAVED => "saved",
                sys::VIR_DOMAIN_EVENT_STOPPED_FAILED => "failed",
                sys::VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT => "from_snapshot",
                _ => "other",
            },
            LifecycleKind::Shutdown => match d {
                sys::VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED => "finished",
                sys::VIR_DOMAIN_EVENT_SHUTDOWN_GUEST => "guest",
                sys::VIR_DOMAIN_EVENT_SHUTDOWN_HOST => "host",
                _ => "other",
            },
            LifecycleKind::PMSuspended => match d {
                sys::VIR_DOMAIN_EVENT_PMSUSPENDED_MEMORY => "memory",
                sys::VIR_DOMAIN_EVENT_PMSUSPENDED_DISK => "disk",
                _ => "other",
            },
            LifecycleKind::Crashed => match d {
                sys::VIR_DOMAIN_EVENT_CRASHED_PANICKED => "panicked",
                sys::VIR_DOMAIN_EVENT_CRASHED_CRASHLOADED => "crashloaded",
                _ => "other",
            },
        }
    }
}

/// A live subscription to one host's lifecycle events. Dropping it deregisters the callback
/// (one libvirt call, so drop it off async threads too).
pub struct LifecycleSubscription {
    _registration: ffi::LifecycleRegistration,
}

impl super::HostConn {
    /// Send every lifecycle event of this host's domains into `tx` until the returned
    /// subscription is dropped (or the receiver is gone). Blocking (one libvirt call).
    pub fn subscribe_lifecycle_blocking(
        &self,
        tx: Sender<LifecycleEvent>,
    ) -> Result<LifecycleSubscription> {
        self.subscribe_lifecycle_with_blocking(move |ev| {
            // A receiver that went away just stops listening.
            let _ = tx.send(ev);
        })
    }

    /// Like [`Self::subscribe_lifecycle_blocking`] with any handler, for example a tokio
    /// channel's `send`. The handler runs on the libvirt event thread: it must return quickly
    /// and never call libvirt itself.
    pub fn subscribe_lifecycle_with_blocking(
        &self,
        sink: impl Fn(LifecycleEvent) + Send + 'static,
    ) -> Result<LifecycleSubscription> {
        let registration = ffi::register_lifecycle(&self.conn, &self.host, Box::new(sink))
            .map_err(|e| self.libvirt_error("subscribing to VM lifecycle events", e))?;
        Ok(LifecycleSubscription {
            _registration: registration,
        })
    }
}

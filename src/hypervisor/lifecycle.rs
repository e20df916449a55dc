//! Domain lifecycle events as Twofold sees them: what happened to a VM, on which host, and
//! libvirt's detail as a word. Plain data, below both the event loop ([`super::events`]) and the
//! raw callbacks that produce them ([`super::ffi`]).

use serde::{Deserialize, Serialize};
use virt_sys as sys;

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

//! The host driver: Twofold's only door to libvirt on the virtualization hosts. It owns the
//! connections ([`HostConn`]), the view of a domain Twofold works with ([`DomainInfo`]), the
//! lifecycle event stream ([`LifecycleEvent`]) and live migration ([`MigrationStats`]).
//!
//! Everything here is blocking: libvirt calls wait on the network (a host behind SSH can take
//! seconds to answer, a dead one much longer). Every such function is named `*_blocking` and must
//! never run on a tokio worker thread: async callers use `tokio::task::spawn_blocking` (as
//! [`crate::vm`]'s async functions do) or a thread of their own. Events arrive on the dedicated
//! `libvirt-events` thread (see [`ensure_event_loop`]); a process ends it with
//! [`shutdown_blocking`] before it exits.
//!
//! The safe `virt` crate does most of the work; `ffi` holds the few raw `virt-sys` calls and is
//! the only module allowed `unsafe`.

mod events;
#[allow(unsafe_code)]
mod ffi;
mod lifecycle;
mod migrate;
mod storage;

use serde::{Deserialize, Serialize};
use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::error::{ErrorDomain, ErrorNumber};

use crate::error::{Error, Result};

pub use events::{ensure_event_loop, shutdown_blocking, LifecycleSubscription, ShutdownReport};
pub use lifecycle::{LifecycleEvent, LifecycleKind};
pub use migrate::{migration_uri, MigrationCancel, MigrationStats, StatsSource};
pub use storage::PoolInfo;

use crate::xml::xml_escape;
use events::LiveConn;

/// How to reach one virtualization host's libvirt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostTarget {
    /// The host's Twofold name (as in the node list).
    pub name: String,
    /// How Twofold connects, e.g. `qemu+libssh://root@10.0.0.11:22/system?...`.
    pub uri: String,
    /// How ANOTHER host's libvirtd connects to this one for peer-to-peer migration. It is used
    /// inside the source host, so key and known_hosts paths are that host's.
    pub peer_uri: String,
    /// The address the QEMU migration stream goes to (`tcp://ADDR`); libvirt picks one when
    /// unset, usually from the host's name, which may resolve to the wrong network.
    pub migration_address: Option<String>,
}

/// A domain's state as one lowercase word.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmState {
    #[serde(rename = "nostate")]
    NoState,
    Running,
    /// Running, waiting on a resource.
    Blocked,
    Paused,
    /// Being shut down.
    Shutdown,
    Shutoff,
    Crashed,
    #[serde(rename = "pmsuspended")]
    PMSuspended,
}

impl VmState {
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::NoState => "nostate",
            VmState::Running => "running",
            VmState::Blocked => "blocked",
            VmState::Paused => "paused",
            VmState::Shutdown => "shutdown",
            VmState::Shutoff => "shutoff",
            VmState::Crashed => "crashed",
            VmState::PMSuspended => "pmsuspended",
        }
    }

    /// True when a QEMU process runs the VM and can be live-migrated: running, blocked, or
    /// paused (a paused VM moves and stays paused; evacuating a host must move it too).
    pub fn is_migratable(self) -> bool {
        matches!(self, VmState::Running | VmState::Blocked | VmState::Paused)
    }

    fn from_virt(s: DomainState) -> VmState {
        match s {
            DomainState::NoState => VmState::NoState,
            DomainState::Running => VmState::Running,
            DomainState::Blocked => VmState::Blocked,
            DomainState::Paused => VmState::Paused,
            DomainState::Shutdown => VmState::Shutdown,
            DomainState::Shutoff => VmState::Shutoff,
            DomainState::Crashed => VmState::Crashed,
            DomainState::PMSuspended => VmState::PMSuspended,
        }
    }
}

impl std::fmt::Display for VmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What Twofold knows of one domain on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainInfo {
    pub name: String,
    pub uuid: String,
    pub state: VmState,
    pub vcpus: u32,
    /// The VM's maximum memory: what a host must be able to give it (N+1 sizing).
    pub memory_mib: u64,
    /// Defined (survives a stop), as opposed to transient.
    pub persistent: bool,
}

/// An open connection to one host's libvirt. `Send + Sync`; libvirt serialises calls itself,
/// so one connection can serve several threads (migration polls job stats that way).
pub struct HostConn {
    host: String,
    conn: Connect,
    // Declared after `conn`, so it is dropped after the connection is closed.
    _live: LiveConn,
}

impl std::fmt::Debug for HostConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostConn")
            .field("host", &self.host)
            .finish()
    }
}

/// Keepalive: a probe every 5 s, and the connection is declared dead after 3 unanswered ones,
/// so a host that vanished is noticed in about 20 s instead of a TCP timeout.
const KEEPALIVE_INTERVAL_S: i32 = 5;
const KEEPALIVE_COUNT: u32 = 3;

impl HostConn {
    /// Connect to `target.uri`. Starts the libvirt event loop first if needed (keepalive and
    /// events depend on it). Any failure is [`Error::HostUnreachable`] with libvirt's reason.
    ///
    /// Wraps <https://libvirt.org/html/libvirt-libvirt-host.html#virConnectOpen> and
    /// <https://libvirt.org/html/libvirt-libvirt-host.html#virConnectSetKeepAlive>.
    pub fn open_blocking(target: &HostTarget) -> Result<HostConn> {
        ensure_event_loop()?;
        // Counted while it opens too: shutdown must not stop the loop under an open in progress.
        let live = LiveConn::acquire(&target.name)?;
        let conn = Connect::open(Some(&target.uri)).map_err(|e| Error::HostUnreachable {
            host: target.name.clone(),
            detail: e.message().to_string(),
        })?;
        if let Err(e) = conn.set_keep_alive(KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT) {
            // Local drivers (test:///, qemu:///system without a daemon hop) have no keepalive;
            // anything else is worth a log line but not a refusal: the connection works.
            if !e.code().is(ErrorNumber::NoSupport) {
                tracing::warn!(host = %target.name, "keepalive not enabled: {}", e.message());
            }
        }
        Ok(HostConn {
            host: target.name.clone(),
            conn,
            _live: live,
        })
    }

    /// The host's Twofold name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The underlying `virt` connection, for operations this module does not wrap yet.
    pub fn connect(&self) -> &Connect {
        &self.conn
    }

    /// Whether the connection still works (keepalive has not declared it dead).
    ///
    /// Wraps <https://libvirt.org/html/libvirt-libvirt-host.html#virConnectIsAlive>.
    pub fn is_alive_blocking(&self) -> bool {
        self.conn.is_alive().unwrap_or(false)
    }

    /// Every domain on the host, running or only defined, sorted by name.
    ///
    /// Wraps <https://libvirt.org/html/libvirt-libvirt-domain.html#virConnectListAllDomains>.
    pub fn list_domains_blocking(&self) -> Result<Vec<DomainInfo>> {
        let doms = self
            .conn
            .list_all_domains(0)
            .map_err(|e| self.libvirt_error("listing VMs", e))?;
        let mut out = Vec::with_capacity(doms.len());
        for d in &doms {
            match domain_info(d) {
                Ok(info) => out.push(info),
                // Undefined between listing and asking: it is gone, which is what we report.
                Err(e) if e.code().is(ErrorNumber::NoDomain) => {}
                Err(e) => return Err(self.libvirt_error("reading a VM's state", e)),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One domain by name, or `None` when this host has no domain of that name.
    pub fn domain_blocking(&self, name: &str) -> Result<Option<DomainInfo>> {
        match self.conn.lookup_domain_by_name(name) {
            Ok(d) => match domain_info(&d) {
                Ok(info) => Ok(Some(info)),
                Err(e) if e.code().is(ErrorNumber::NoDomain) => Ok(None),
                Err(e) => Err(self.libvirt_error(format!("reading the state of VM '{name}'"), e)),
            },
            Err(e) if e.code().is(ErrorNumber::NoDomain) => Ok(None),
            Err(e) => Err(self.libvirt_error(format!("looking up VM '{name}'"), e)),
        }
    }

    /// Define (or redefine) a persistent domain from its XML; it is not started.
    ///
    /// Wraps <https://libvirt.org/html/libvirt-libvirt-domain.html#virDomainDefineXML>.
    pub fn define_blocking(&self, xml: &str) -> Result<DomainInfo> {
        let d = self
            .conn
            .define_domain_xml(xml)
            .map_err(|e| self.libvirt_error("defining a VM", e))?;
        domain_info(&d).map_err(|e| self.libvirt_error("reading the defined VM", e))
    }

    /// Start a defined domain.
    ///
    /// Wraps <https://libvirt.org/html/libvirt-libvirt-domain.html#virDomainCreate>.
    pub fn start_blocking(&self, name: &str) -> Result<()> {
        self.lookup(name)?
            .create()
            .map(|_| ())
            .map_err(|e| self.libvirt_error(format!("starting VM '{name}'"), e))
    }

    /// Stop a domain at once (power cut; the guest gets no chance to shut down).
    ///
    /// Wraps <https://libvirt.org/html/libvirt-libvirt-domain.html#virDomainDestroy>.
    pub fn destroy_blocking(&self, name: &str) -> Result<()> {
        self.lookup(name)?
            .destroy()
            .map_err(|e| self.libvirt_error(format!("stopping VM '{name}'"), e))
    }

    /// Remove a domain's definition (a running domain keeps running, as a transient one).
    ///
    /// Wraps <https://libvirt.org/html/libvirt-libvirt-domain.html#virDomainUndefine>.
    pub fn undefine_blocking(&self, name: &str) -> Result<()> {
        self.lookup(name)?
            .undefine()
            .map_err(|e| self.libvirt_error(format!("removing the definition of VM '{name}'"), e))
    }

    /// Abort the domain's current job (a migration, for instance). Fails when none runs.
    ///
    /// Wraps <https://libvirt.org/html/libvirt-libvirt-domain.html#virDomainAbortJob>.
    pub fn abort_job_blocking(&self, name: &str) -> Result<()> {
        let d = self.lookup(name)?;
        ffi::abort_job(&d)
            .map_err(|e| self.libvirt_error(format!("aborting the job of VM '{name}'"), e))
    }

    fn lookup(&self, name: &str) -> Result<Domain> {
        self.conn.lookup_domain_by_name(name).map_err(|e| {
            if e.code().is(ErrorNumber::NoDomain) {
                Error::UnknownVm {
                    name: name.to_string(),
                    hint: format!(" (looked on {})", self.host),
                }
            } else {
                self.libvirt_error(format!("looking up VM '{name}'"), e)
            }
        })
    }

    /// Map a libvirt error on this host: a broken connection is [`Error::HostUnreachable`],
    /// anything else [`Error::Libvirt`] with what was being done.
    fn libvirt_error(&self, op: impl Into<String>, e: virt::error::Error) -> Error {
        if is_connection_error(&e) {
            Error::HostUnreachable {
                host: self.host.clone(),
                detail: e.message().to_string(),
            }
        } else {
            Error::Libvirt {
                host: self.host.clone(),
                op: op.into(),
                detail: e.message().to_string(),
            }
        }
    }
}

/// Errors that mean the connection itself failed (socket closed, keepalive timeout, SSH).
fn is_connection_error(e: &virt::error::Error) -> bool {
    e.domain().is(ErrorDomain::Rpc)
        || e.domain().is(ErrorDomain::Ssh)
        || e.domain().is(ErrorDomain::Libssh)
        || e.code().is(ErrorNumber::Rpc)
        || e.code().is(ErrorNumber::NoConnect)
        || e.code().is(ErrorNumber::Ssh)
        || e.code().is(ErrorNumber::Libssh)
}

fn domain_info(d: &Domain) -> std::result::Result<DomainInfo, virt::error::Error> {
    let info = d.info()?;
    let state = match info.state {
        virt::enumutil::Enum::Known(s) => VmState::from_virt(s),
        virt::enumutil::Enum::Unknown(_) => VmState::NoState,
    };
    Ok(DomainInfo {
        name: d.name()?,
        uuid: d.uuid_string()?,
        state,
        vcpus: info.nr_virt_cpu,
        memory_mib: info.max_mem / 1024,
        persistent: d.is_persistent()?,
    })
}

#[cfg(test)]
pub(crate) mod tests;

//! VM operations across the platform's hosts, as the CLI and the desktop app call them: list
//! what runs where, and live-migrate a VM with every check made before anything changes. Each
//! records what it saw and did in the inventory (VMs, jobs, events).
//!
//! The `*_blocking` functions call libvirt and SQLite on the calling thread: never call them on
//! a tokio worker thread. Async callers use [`list`] and [`migrate`], which run the same code
//! under `tokio::task::spawn_blocking` and hold the inventory's lock only for each write (a
//! migration takes seconds; readers of the inventory must not wait for it).

pub mod create;
pub mod xml;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hypervisor::{
    DomainInfo, HostConn, HostTarget, MigrationCancel, MigrationStats, VmState,
};
use crate::inventory::{Inventory, Severity};
use crate::progress::Progress;

/// One VM as seen on one host. A VM defined on two hosts appears twice.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmView {
    pub name: String,
    pub host: String,
    pub uuid: String,
    pub state: VmState,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub persistent: bool,
}

/// Whether a host answered, and if not why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStatus {
    pub name: String,
    pub reachable: bool,
    pub vm_count: usize,
    /// The error's message, for people.
    pub error: Option<String>,
    /// The error's [`Error::code`], for front ends.
    pub code: Option<String>,
}

/// The result of [`list_blocking`]: the VMs of the hosts that answered, and every host's status.
/// An unreachable host is reported here, not as a failure of the whole listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmList {
    /// Sorted by VM name, then host.
    pub vms: Vec<VmView>,
    /// In the order of the hosts given.
    pub hosts: Vec<HostStatus>,
}

/// List the VMs of all `hosts` (asked in parallel) and record them in the inventory. When a VM
/// appears on several hosts, the inventory records the host where it is active.
pub fn list_blocking(hosts: &[HostTarget], inv: &Inventory) -> Result<VmList> {
    list_with(hosts, inv)
}

/// Live-migrate `vm` to the host named `to`, with the checks below made first, in this order,
/// before anything changes (no job, no event, nothing on the hosts):
/// `to` is a known host ([`Error::UnknownHost`]); the VM exists on a host that answered
/// ([`Error::UnknownVm`], whose hint names hosts that did not); it is not active on two hosts
/// ([`Error::VmOnSeveralHosts`]); it runs ([`Error::VmNotRunning`]); it is not already on `to`
/// ([`Error::SameHost`]); `to` answers ([`Error::HostUnreachable`]).
///
/// Then records a job (kind `migrate`, target the VM; result the [`MigrationStats`] or the
/// error), events at start and end, and the VM on its new host.
pub fn migrate_blocking(
    hosts: &[HostTarget],
    inv: &Inventory,
    vm: &str,
    to: &str,
    progress: &dyn Progress,
    cancel: &MigrationCancel,
) -> Result<MigrationStats> {
    migrate_with(hosts, inv, vm, to, progress, cancel)
}

/// [`list_blocking`] off the async threads.
pub async fn list(hosts: Vec<HostTarget>, inv: Arc<Mutex<Inventory>>) -> Result<VmList> {
    crate::blocking::run("listing the VMs", move || list_with(&hosts, &*inv)).await
}

/// [`migrate_blocking`] off the async threads. Dropping the future does not stop the
/// migration: cancel it through `cancel`.
pub async fn migrate(
    hosts: Vec<HostTarget>,
    inv: Arc<Mutex<Inventory>>,
    vm: String,
    to: String,
    progress: Arc<dyn Progress>,
    cancel: MigrationCancel,
) -> Result<MigrationStats> {
    crate::blocking::run("migrating the VM", move || {
        migrate_with(&hosts, &*inv, &vm, &to, &*progress, &cancel)
    })
    .await
}

/// How the shared code reaches the inventory: directly, or through a mutex taken per write.
trait InventoryAccess {
    fn with<R>(&self, f: impl FnOnce(&Inventory) -> R) -> R;
}

impl InventoryAccess for Inventory {
    fn with<R>(&self, f: impl FnOnce(&Inventory) -> R) -> R {
        f(self)
    }
}

impl InventoryAccess for Mutex<Inventory> {
    fn with<R>(&self, f: impl FnOnce(&Inventory) -> R) -> R {
        // A panic elsewhere while holding the lock leaves SQLite consistent (each write is a
        // statement of its own), so the inventory stays usable.
        let guard = self.lock().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }
}

/// One host's answer: its connection and domains, or why it did not answer.
struct Scan<'a> {
    target: &'a HostTarget,
    outcome: Result<(HostConn, Vec<DomainInfo>)>,
}

/// Connect to every host and list its domains, all hosts at once: a dead host can take long to
/// fail, and should not make the others wait.
fn scan_blocking(hosts: &[HostTarget]) -> Vec<Scan<'_>> {
    fn scan_one(h: &HostTarget) -> Result<(HostConn, Vec<DomainInfo>)> {
        let conn = HostConn::open_blocking(h)?;
        let doms = conn.list_domains_blocking()?;
        Ok((conn, doms))
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|h| {
                let handle = std::thread::Builder::new()
                    .name(format!("scan-{}", h.name))
                    .spawn_scoped(s, move || scan_one(h));
                (h, handle)
            })
            .collect();
        handles
            .into_iter()
            .map(|(h, handle)| {
                let outcome = match handle {
                    Ok(j) => j.join().unwrap_or_else(|_| {
                        Err(Error::Libvirt {
                            host: h.name.clone(),
                            op: "listing VMs".into(),
                            detail: "the listing thread panicked; run the command again".into(),
                        })
                    }),
                    // No thread to spare: ask this host from here instead.
                    Err(_) => scan_one(h),
                };
                Scan { target: h, outcome }
            })
            .collect()
    })
}

fn list_with(hosts: &[HostTarget], inv: &impl InventoryAccess) -> Result<VmList> {
    let mut list = VmList::default();
    for scan in scan_blocking(hosts) {
        match scan.outcome {
            Ok((_conn, doms)) => {
                list.hosts.push(HostStatus {
                    name: scan.target.name.clone(),
                    reachable: true,
                    vm_count: doms.len(),
                    error: None,
                    code: None,
                });
                list.vms.extend(doms.into_iter().map(|d| VmView {
                    name: d.name,
                    host: scan.target.name.clone(),
                    uuid: d.uuid,
                    state: d.state,
                    vcpus: d.vcpus,
                    memory_mib: d.memory_mib,
                    persistent: d.persistent,
                }));
            }
            Err(e) => list.hosts.push(HostStatus {
                name: scan.target.name.clone(),
                reachable: false,
                vm_count: 0,
                error: Some(e.to_string()),
                code: Some(e.code().to_string()),
            }),
        }
    }
    list.vms
        .sort_by(|a, b| (&a.name, &a.host).cmp(&(&b.name, &b.host)));

    // One inventory row per VM name: where it is active, else the first host that has it.
    let mut chosen: Vec<&VmView> = Vec::new();
    for v in &list.vms {
        match chosen.last_mut() {
            Some(c) if c.name == v.name => {
                if !c.state.is_migratable() && v.state.is_migratable() {
                    *c = v;
                }
            }
            _ => chosen.push(v),
        }
    }
    inv.with(|inv| -> Result<()> {
        for v in chosen {
            inv.record_vm(
                &v.name,
                &v.uuid,
                Some(&v.host),
                v.state.as_str(),
                v.vcpus,
                v.memory_mib,
            )?;
        }
        Ok(())
    })?;
    Ok(list)
}

/// A migration that passed every check, with its connections open.
struct Plan {
    source: HostConn,
    dest: HostConn,
    dest_target: HostTarget,
    info: DomainInfo,
}

fn plan_blocking(hosts: &[HostTarget], vm: &str, to: &str) -> Result<Plan> {
    let Some(dest_target) = hosts.iter().find(|h| h.name == to) else {
        let known: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        return Err(Error::UnknownHost {
            name: to.to_string(),
            known: if known.is_empty() {
                "none (add the hosts first)".to_string()
            } else {
                known.join(", ")
            },
        });
    };
    if vm.trim().is_empty() {
        return Err(Error::InvalidInput(
            "no VM name given; name the VM to migrate (`twofold vm list` shows them)".into(),
        ));
    }

    let mut conns: Vec<(&HostTarget, Option<HostConn>)> = Vec::new();
    let mut unreachable: Vec<(&HostTarget, Error)> = Vec::new();
    // (index into conns, the domain there)
    let mut copies: Vec<(usize, DomainInfo)> = Vec::new();
    let mut names = BTreeSet::new();
    for scan in scan_blocking(hosts) {
        match scan.outcome {
            Ok((conn, doms)) => {
                for d in doms {
                    if d.name == vm {
                        copies.push((conns.len(), d.clone()));
                    }
                    names.insert(d.name);
                }
                conns.push((scan.target, Some(conn)));
            }
            Err(e) => unreachable.push((scan.target, e)),
        }
    }

    if copies.is_empty() {
        return Err(Error::UnknownVm {
            name: vm.to_string(),
            hint: unknown_vm_hint(&names, &unreachable),
        });
    }
    let active: Vec<&(usize, DomainInfo)> = copies
        .iter()
        .filter(|(_, d)| d.state.is_migratable())
        .collect();
    if active.len() > 1 {
        let on: Vec<&str> = active
            .iter()
            .map(|(i, _)| conns[*i].0.name.as_str())
            .collect();
        return Err(Error::VmOnSeveralHosts {
            vm: vm.to_string(),
            hosts: on.join(", "),
        });
    }
    let Some((src_idx, info)) = active.first().map(|(i, d)| (*i, d.clone())) else {
        let (i, d) = &copies[0];
        return Err(Error::VmNotRunning {
            vm: vm.to_string(),
            state: format!("{} on {}", d.state, conns[*i].0.name),
        });
    };
    if conns[src_idx].0.name == to {
        return Err(Error::SameHost {
            vm: vm.to_string(),
            host: to.to_string(),
        });
    }
    if let Some(pos) = unreachable.iter().position(|(t, _)| t.name == to) {
        return Err(unreachable.swap_remove(pos).1);
    }
    let dest_idx = conns
        .iter()
        .position(|(t, _)| t.name == to)
        .expect("every host is either reachable or not");
    if let Some((_, other)) = copies
        .iter()
        .find(|(i, d)| *i == dest_idx && d.uuid != info.uuid)
    {
        return Err(Error::InvalidInput(format!(
            "{to} already has a different VM named '{vm}' (uuid {}, the running one is {}); \
             rename or remove one of them before migrating",
            other.uuid, info.uuid
        )));
    }
    let source = conns[src_idx].1.take().expect("taken once");
    let dest = conns[dest_idx].1.take().expect("taken once");
    Ok(Plan {
        source,
        dest,
        dest_target: dest_target.clone(),
        info,
    })
}

fn unknown_vm_hint(names: &BTreeSet<String>, unreachable: &[(&HostTarget, Error)]) -> String {
    let mut hint = String::new();
    if !unreachable.is_empty() {
        let down: Vec<&str> = unreachable.iter().map(|(t, _)| t.name.as_str()).collect();
        hint.push_str(&format!(
            "; {} could not be reached, so it may be there",
            down.join(", ")
        ));
    }
    if names.is_empty() {
        hint.push_str("; the reachable hosts have no VMs");
    } else {
        const SHOWN: usize = 20;
        let mut shown: Vec<&str> = names.iter().take(SHOWN).map(String::as_str).collect();
        if names.len() > SHOWN {
            shown.push("...");
        }
        hint.push_str(&format!("; existing VMs: {}", shown.join(", ")));
    }
    hint
}

fn migrate_with(
    hosts: &[HostTarget],
    inv: &impl InventoryAccess,
    vm: &str,
    to: &str,
    progress: &dyn Progress,
    cancel: &MigrationCancel,
) -> Result<MigrationStats> {
    let plan = plan_blocking(hosts, vm, to)?;
    let from = plan.source.host().to_string();
    let job = inv.with(|inv| -> Result<String> {
        let id = inv.start_job("migrate", vm)?;
        inv.add_event(
            Severity::Info,
            vm,
            &format!("live migration from {from} to {to} started"),
        )?;
        Ok(id)
    })?;

    let result =
        plan.source
            .migrate_to_blocking(vm, &plan.dest_target, Some(&plan.dest), progress, cancel);

    // Where the VM is now, as the destination reports it.
    let now_on_dest = match &result {
        Ok(_) => plan.dest.domain_blocking(vm).ok().flatten(),
        Err(_) => None,
    };
    let recorded = inv.with(|inv| -> Result<()> {
        match &result {
            Ok(stats) => {
                let json = serde_json::to_value(stats).unwrap_or(serde_json::Value::Null);
                inv.finish_job(&job, Ok(&json))?;
                inv.add_event(Severity::Info, vm, &stats.summary())?;
                let d = now_on_dest.as_ref().unwrap_or(&plan.info);
                inv.record_vm(
                    vm,
                    &d.uuid,
                    Some(to),
                    d.state.as_str(),
                    d.vcpus,
                    d.memory_mib,
                )?;
            }
            Err(e) => {
                let msg = e.to_string();
                inv.finish_job(&job, Err(&msg))?;
                inv.add_event(Severity::Error, vm, &msg)?;
            }
        }
        Ok(())
    });
    if let Err(e) = recorded {
        // The migration's outcome is what the caller must learn; the inventory catches up at
        // the next listing.
        tracing::warn!("migration of {vm}: recording the outcome failed: {e}");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypervisor::tests::{default_host, dom, test_host, unreachable_host, Recorder};
    use crate::inventory::JobState;

    fn three_hosts(dir: &std::path::Path) -> Vec<HostTarget> {
        vec![
            test_host(dir, "host1", &[dom("web", true), dom("idle", false)]),
            test_host(dir, "host2", &[dom("db", true)]),
            unreachable_host("host3"),
        ]
    }

    #[test]
    fn lists_two_hosts_and_reports_the_unreachable_one() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = three_hosts(dir.path());
        let inv = Inventory::open_in_memory().unwrap();
        let list = list_blocking(&hosts, &inv).unwrap();

        let seen: Vec<(&str, &str, VmState)> = list
            .vms
            .iter()
            .map(|v| (v.name.as_str(), v.host.as_str(), v.state))
            .collect();
        assert_eq!(
            seen,
            [
                ("db", "host2", VmState::Running),
                ("idle", "host1", VmState::Shutoff),
                ("web", "host1", VmState::Running),
            ]
        );
        assert_eq!(list.vms[0].memory_mib, 256);
        assert_eq!(list.vms[0].vcpus, 2);
        let status: Vec<(&str, bool, usize)> = list
            .hosts
            .iter()
            .map(|h| (h.name.as_str(), h.reachable, h.vm_count))
            .collect();
        assert_eq!(
            status,
            [("host1", true, 2), ("host2", true, 1), ("host3", false, 0)]
        );
        assert_eq!(list.hosts[2].code.as_deref(), Some("host_unreachable"));
        assert!(list.hosts[2].error.as_ref().unwrap().contains("host3"));

        let recorded: Vec<(String, Option<String>, String)> = inv
            .vms()
            .unwrap()
            .into_iter()
            .map(|v| (v.name, v.host, v.state))
            .collect();
        assert_eq!(
            recorded,
            [
                ("db".into(), Some("host2".into()), "running".into()),
                ("idle".into(), Some("host1".into()), "shutoff".into()),
                ("web".into(), Some("host1".into()), "running".into()),
            ]
        );
        let json = serde_json::to_value(&list).unwrap();
        assert_eq!(json["hosts"][2]["reachable"], false);
    }

    #[test]
    fn the_inventory_records_where_a_vm_is_active() {
        let dir = tempfile::tempdir().unwrap();
        let uuid = Some("6695eb01-f6a4-8304-79aa-97f2502e193f");
        let stale = crate::hypervisor::tests::TestDomain {
            name: "web",
            uuid,
            running: false,
        };
        let live = crate::hypervisor::tests::TestDomain {
            name: "web",
            uuid,
            running: true,
        };
        let hosts = vec![
            test_host(dir.path(), "host1", &[stale]),
            test_host(dir.path(), "host2", &[live]),
        ];
        let inv = Inventory::open_in_memory().unwrap();
        let list = list_blocking(&hosts, &inv).unwrap();
        assert_eq!(list.vms.len(), 2);
        let rec = &inv.vms().unwrap()[0];
        assert_eq!(
            (rec.host.as_deref(), rec.state.as_str()),
            (Some("host2"), "running")
        );
    }

    #[test]
    fn migration_is_validated_before_anything_changes() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = three_hosts(dir.path());
        let inv = Inventory::open_in_memory().unwrap();
        let p = Recorder::default();
        let c = MigrationCancel::new();
        let go = |vm: &str, to: &str| migrate_blocking(&hosts, &inv, vm, to, &p, &c).unwrap_err();

        let e = go("web", "host9");
        assert!(
            matches!(&e, Error::UnknownHost { name, known } if name == "host9" && known == "host1, host2, host3"),
            "{e}"
        );
        let e = go("ghost", "host2");
        assert!(
            matches!(&e, Error::UnknownVm { name, .. } if name == "ghost"),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("host3 could not be reached")
                && msg.contains("existing VMs: db, idle, web"),
            "{msg}"
        );
        let e = go("idle", "host2");
        assert!(
            matches!(&e, Error::VmNotRunning { state, .. } if state == "shutoff on host1"),
            "{e}"
        );
        let e = go("web", "host1");
        assert!(
            matches!(&e, Error::SameHost { host, .. } if host == "host1"),
            "{e}"
        );
        let e = go("web", "host3");
        assert!(
            matches!(&e, Error::HostUnreachable { host, .. } if host == "host3"),
            "{e}"
        );
        let e = go(" ", "host2");
        assert_eq!(e.code(), "invalid_input");

        // Nothing changed: no job, no event, no progress, the VM where it was.
        assert!(inv.jobs(10).unwrap().is_empty());
        assert!(inv.events(10).unwrap().is_empty());
        assert!(p.0.lock().unwrap().is_empty());
        let conn = HostConn::open_blocking(&hosts[0]).unwrap();
        assert_eq!(
            conn.domain_blocking("web").unwrap().unwrap().state,
            VmState::Running
        );
    }

    #[test]
    fn same_host_on_the_shared_default_driver_changes_nothing() {
        let hosts = vec![default_host("host1"), unreachable_host("host2")];
        let inv = Inventory::open_in_memory().unwrap();
        let p = Recorder::default();
        let c = MigrationCancel::new();
        let e = migrate_blocking(&hosts, &inv, "test", "host1", &p, &c).unwrap_err();
        assert_eq!(e.code(), "same_host", "{e}");
        let e = migrate_blocking(&hosts, &inv, "test", "host2", &p, &c).unwrap_err();
        assert_eq!(e.code(), "host_unreachable", "{e}");
        let conn = HostConn::open_blocking(&hosts[0]).unwrap();
        assert_eq!(
            conn.domain_blocking("test").unwrap().unwrap().state,
            VmState::Running
        );
        assert!(inv.jobs(10).unwrap().is_empty());
    }

    #[test]
    fn a_vm_active_on_two_hosts_is_refused() {
        // Both names reach the one shared default driver: "test" runs "on both".
        let hosts = vec![default_host("host1"), default_host("host2")];
        let inv = Inventory::open_in_memory().unwrap();
        let e = migrate_blocking(
            &hosts,
            &inv,
            "test",
            "host2",
            &Recorder::default(),
            &MigrationCancel::new(),
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::VmOnSeveralHosts { hosts, .. } if hosts == "host1, host2"),
            "{e}"
        );
    }

    #[test]
    fn a_name_clash_on_the_target_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec![
            test_host(dir.path(), "host1", &[dom("web", true)]),
            test_host(dir.path(), "host2", &[dom("web", false)]),
        ];
        let inv = Inventory::open_in_memory().unwrap();
        let e = migrate_blocking(
            &hosts,
            &inv,
            "web",
            "host2",
            &Recorder::default(),
            &MigrationCancel::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("different VM named 'web'"), "{e}");
        assert!(inv.jobs(10).unwrap().is_empty());
    }

    #[test]
    fn a_failed_migration_is_recorded_as_a_failed_job() {
        // Validation passes; the test driver then refuses to migrate.
        let dir = tempfile::tempdir().unwrap();
        let hosts = three_hosts(dir.path());
        let inv = Inventory::open_in_memory().unwrap();
        let p = Recorder::default();
        let e = migrate_blocking(&hosts, &inv, "web", "host2", &p, &MigrationCancel::new())
            .unwrap_err();
        assert_eq!(e.code(), "migration_failed", "{e}");
        let jobs = inv.jobs(10).unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            (jobs[0].kind.as_str(), jobs[0].target.as_str()),
            ("migrate", "web")
        );
        assert_eq!(jobs[0].state, JobState::Failed);
        assert_eq!(jobs[0].error.as_deref(), Some(e.to_string().as_str()));
        let events = inv.events(10).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].severity, Severity::Error);
        assert_eq!(
            events[1].message,
            "live migration from host1 to host2 started"
        );
        assert_eq!(
            p.0.lock().unwrap().last().map(String::as_str),
            Some("finish")
        );
    }

    #[test]
    fn async_versions_run_off_the_runtime_threads() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let hosts = three_hosts(dir.path());
        let inv = Arc::new(Mutex::new(Inventory::open_in_memory().unwrap()));
        rt.block_on(async {
            let list = list(hosts.clone(), inv.clone()).await.unwrap();
            assert_eq!(list.vms.len(), 3);
            let e = migrate(
                hosts.clone(),
                inv.clone(),
                "web".into(),
                "host1".into(),
                Arc::new(Recorder::default()),
                MigrationCancel::new(),
            )
            .await
            .unwrap_err();
            assert_eq!(e.code(), "same_host");
        });
        assert_eq!(inv.lock().unwrap().vms().unwrap().len(), 3);
    }
}

//! The platform's live state, as the tray, the dashboard and (later) the headless supervisor show
//! it: every node probed over SSH with Twofold's own key (reachability, the daemons its role
//! needs, CPU, memory, disk), the VMs of every host through libvirt, one overall health, the
//! four-rule scorecard, and the changes between two looks (what a notification says).
//!
//! [`Monitor::poll`] keeps one SSH session per node open between polls (a poll every few
//! seconds must not pay a key exchange per node each time) and opens it again after a failure.
//! Every remote step is bounded by a timeout, so a dead node costs one timeout, not a hang.

mod probe;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::inventory::{now_ms, Inventory, Severity};
use crate::node::Session;
use crate::nodes::{NodeSpec, Role};
use crate::provision::sizing::{self, HostSpec, SizingInput, VmSpec};
use crate::provision::wizard::{four_rules, Rule, RuleState};
use crate::vm::{VmList, VmView};

pub use probe::{parse_probe, probe_command, Sample};

/// How long one node may take to answer its probe (connect included).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

/// One node as last seen.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Reached, and everything its role needs answers.
    Up,
    /// Reached, but something its role needs does not answer (named in the detail).
    Degraded,
    /// Not reached.
    Down,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Degraded => "degraded",
            NodeState::Down => "down",
        }
    }
}

/// The platform as a whole.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// No nodes in the inventory yet: nothing to watch.
    Unconfigured,
    /// Every node up.
    Healthy,
    /// Something is down or degraded, but VMs can still run and reach their disks.
    Degraded,
    /// No host, or no copy of the store, is available: VMs cannot run.
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unconfigured => "unconfigured",
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Down => "down",
        }
    }
}

/// Resource use of one node, from one probe (CPU use needs the previous probe).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub cores: u32,
    /// Busy share of all cores since the previous probe, 0-100; `None` on the first probe.
    pub cpu_percent: Option<f64>,
    pub load1: f64,
    pub mem_total_mib: u64,
    pub mem_used_mib: u64,
    pub disk_total_gib: f64,
    pub disk_used_gib: f64,
}

/// One node's status.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    pub role: Role,
    pub address: String,
    pub state: NodeState,
    /// One plain sentence: what is wrong and what to check, or what runs.
    pub detail: String,
    /// The error's code when the node was not reached.
    pub code: Option<String>,
    pub usage: Option<Usage>,
    /// How long the probe took, round trip, in milliseconds.
    pub probe_ms: u64,
}

/// Everything one look at the platform found.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlatformStatus {
    pub checked_at: i64,
    pub health: Health,
    /// One plain sentence about `health`.
    pub summary: String,
    pub nodes: Vec<NodeStatus>,
    pub vms: Vec<VmView>,
    pub rules: Vec<Rule>,
}

/// A node whose state changed between two looks: what a notification says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub node: String,
    pub from: Option<NodeState>,
    pub to: NodeState,
    /// "host2 is down", "host2 is back".
    pub title: String,
    pub body: String,
}

/// Watches one platform: holds its SSH sessions and the previous probe of every node.
pub struct Monitor {
    key: PathBuf,
    sessions: tokio::sync::Mutex<BTreeMap<String, Arc<Session>>>,
    previous: std::sync::Mutex<BTreeMap<String, Sample>>,
}

impl Monitor {
    /// A monitor that logs in with Twofold's private key `key` (see
    /// [`crate::provision::connect::ensure_twofold_key`]).
    pub fn new(key: &Path) -> Monitor {
        Monitor {
            key: key.to_path_buf(),
            sessions: tokio::sync::Mutex::new(BTreeMap::new()),
            previous: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Look at every node of the inventory at `db` at once, and at the VMs of every host. The
    /// inventory's VM records are brought up to date; nothing else changes.
    pub async fn poll(&self, db: &Path) -> Result<PlatformStatus> {
        let db_owned = db.to_path_buf();
        let (nodes, protected) = crate::blocking::run("looking at the platform", move || {
            let inv = Inventory::open(&db_owned)?;
            Ok((inv.nodes()?, inv.vms()?))
        })
        .await?;
        if nodes.is_empty() {
            return Ok(unconfigured());
        }
        let probes = nodes.iter().map(|n| self.probe_node(n));
        let statuses = futures::future::join_all(probes).await;
        let db_owned = db.to_path_buf();
        let vm_list = crate::blocking::run("looking at the platform", move || {
            let inv = Inventory::open(&db_owned)?;
            match crate::platform::host_targets(&inv) {
                Ok(hosts) => crate::vm::list_blocking(&hosts, &inv),
                Err(_) => Ok(VmList::default()),
            }
        })
        .await
        .unwrap_or_default();
        let critical: Vec<VmSpec> = protected
            .iter()
            .filter(|v| v.protected)
            .map(|v| VmSpec {
                name: v.name.clone(),
                vcpus: v.vcpus.max(1),
                ram_mib: v.memory_mib.max(1),
                disk_gib: 0,
                priority: u32::try_from(v.priority.clamp(0, 100)).unwrap_or(0),
                critical: true,
            })
            .collect();
        Ok(assemble(now_ms(), statuses, vm_list.vms, &critical))
    }

    async fn probe_node(&self, n: &NodeSpec) -> NodeStatus {
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(PROBE_TIMEOUT, self.sample(n)).await;
        let probe_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let outcome = match outcome {
            Ok(r) => r,
            Err(_) => Err(Error::HostUnreachable {
                host: n.name.clone(),
                detail: format!(
                    "it did not answer within {} s; check that it is on and on the network",
                    PROBE_TIMEOUT.as_secs()
                ),
            }),
        };
        match outcome {
            Ok(sample) => {
                let prev = lock(&self.previous).insert(n.name.clone(), sample.clone());
                let (state, detail) = sample.judge(n.role);
                NodeStatus {
                    name: n.name.clone(),
                    role: n.role,
                    address: n.address.clone(),
                    state,
                    detail,
                    code: None,
                    usage: Some(sample.usage(prev.as_ref())),
                    probe_ms,
                }
            }
            Err(e) => {
                // The session may be dead: open a new one next time.
                self.sessions.lock().await.remove(&n.name);
                lock(&self.previous).remove(&n.name);
                NodeStatus {
                    name: n.name.clone(),
                    role: n.role,
                    address: n.address.clone(),
                    state: NodeState::Down,
                    detail: e.to_string(),
                    code: Some(e.code().to_string()),
                    usage: None,
                    probe_ms,
                }
            }
        }
    }

    async fn sample(&self, n: &NodeSpec) -> Result<Sample> {
        let session = self.session(n).await?;
        let out = session.exec(&probe_command(n.role), None).await?;
        if !out.success() {
            return Err(out.error(&n.name, "the status probe"));
        }
        parse_probe(&out.stdout_text()).map_err(|detail| Error::Ssh {
            node: n.name.clone(),
            detail: format!("its status probe answered something unexpected ({detail})"),
        })
    }

    async fn session(&self, n: &NodeSpec) -> Result<Arc<Session>> {
        let mut sessions = self.sessions.lock().await;
        if let Some(s) = sessions.get(&n.name) {
            return Ok(Arc::clone(s));
        }
        let Some(pinned) = n.host_key.clone() else {
            return Err(Error::InvalidInput(format!(
                "the inventory pins no host key for {}; set the platform up with the wizard or `twofold setup apply` first",
                n.name
            )));
        };
        let s = Arc::new(
            Session::connect(
                &crate::node::Target::from(n),
                &crate::node::Auth::KeyFile(self.key.clone()),
                &crate::node::HostKeyPolicy::Pinned(pinned),
                PROBE_TIMEOUT,
            )
            .await?,
        );
        sessions.insert(n.name.clone(), Arc::clone(&s));
        Ok(s)
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unconfigured() -> PlatformStatus {
    PlatformStatus {
        checked_at: now_ms(),
        health: Health::Unconfigured,
        summary: "Nothing is set up yet: run the setup wizard to add your four machines.".into(),
        nodes: Vec::new(),
        vms: Vec::new(),
        rules: Vec::new(),
    }
}

/// Overall health, its summary and the scorecard from the nodes' statuses and the VMs found.
pub fn assemble(
    checked_at: i64,
    nodes: Vec<NodeStatus>,
    vms: Vec<VmView>,
    critical: &[VmSpec],
) -> PlatformStatus {
    let of = |role: Role| nodes.iter().filter(move |n| n.role == role);
    let hosts_up = of(Role::Host).filter(|n| n.state == NodeState::Up).count();
    let stors_up = of(Role::Storage)
        .filter(|n| n.state == NodeState::Up)
        .count();
    let not_up: Vec<String> = nodes
        .iter()
        .filter(|n| n.state != NodeState::Up)
        .map(|n| format!("{} is {}", n.name, n.state.as_str()))
        .collect();
    let (health, summary) = if hosts_up == 0 {
        (
            Health::Down,
            format!(
                "No virtualization host is working ({}): VMs cannot run. Check the hosts' power and network first.",
                not_up.join(", ")
            ),
        )
    } else if stors_up == 0 {
        (
            Health::Down,
            format!(
                "No storage node is working ({}): VMs cannot reach their disks. Check the storage nodes' power and network first.",
                not_up.join(", ")
            ),
        )
    } else if !not_up.is_empty() {
        (
            Health::Degraded,
            format!(
                "Running without a spare: {}. VMs go on, but one more failure could stop them.",
                not_up.join(", ")
            ),
        )
    } else {
        (
            Health::Healthy,
            "Every node is up: VMs can move between hosts and every disk has two copies."
                .to_string(),
        )
    };
    let rules = rules(&nodes, critical);
    PlatformStatus {
        checked_at,
        health,
        summary,
        nodes,
        vms,
        rules,
    }
}

/// The four rules as they stand now.
fn rules(nodes: &[NodeStatus], critical: &[VmSpec]) -> Vec<Rule> {
    let hosts: Vec<&NodeStatus> = nodes.iter().filter(|n| n.role == Role::Host).collect();
    let stors: Vec<&NodeStatus> = nodes.iter().filter(|n| n.role == Role::Storage).collect();
    let n_plus_one = if hosts.len() < 2 {
        (
            RuleState::Missing,
            format!(
                "{} virtualization host(s); two are needed so that one can carry the VMs when the other fails.",
                hosts.len()
            ),
        )
    } else if let Some(down) = hosts.iter().find(|h| h.state != NodeState::Up) {
        (
            RuleState::Warn,
            format!(
                "{} is {}: the VMs have no spare host until it is back.",
                down.name,
                down.state.as_str()
            ),
        )
    } else {
        let specs: Vec<HostSpec> = hosts
            .iter()
            .filter_map(|h| {
                h.usage.as_ref().map(|u| HostSpec {
                    name: h.name.clone(),
                    cores: u.cores,
                    ram_mib: u.mem_total_mib,
                    free_disk_gib: None,
                })
            })
            .collect();
        let report = sizing::size(&SizingInput {
            hosts: specs,
            storage: Vec::new(),
            vms: critical.to_vec(),
            params: Default::default(),
        });
        match report {
            Ok(r) if r.ok => (
                RuleState::Ok,
                if critical.is_empty() {
                    "Two hosts are up; no VM is marked critical yet, so there is nothing to carry."
                        .to_string()
                } else {
                    format!(
                        "Two hosts are up, and each alone can run all {} protected VM(s).",
                        critical.len()
                    )
                },
            ),
            Ok(r) => (
                RuleState::Warn,
                format!(
                    "One host alone cannot run every protected VM: {}",
                    r.problems
                        .iter()
                        .map(|p| p.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
            Err(e) => (
                RuleState::Warn,
                format!("Whether one host can carry the protected VMs is not known: {e}"),
            ),
        }
    };
    let storage = if stors.len() < 2 {
        (
            RuleState::Missing,
            format!(
                "{} storage node(s); two are needed so that every VM disk has two copies.",
                stors.len()
            ),
        )
    } else if let Some(down) = stors.iter().find(|s| s.state != NodeState::Up) {
        (
            RuleState::Warn,
            format!(
                "{} is {}: VM disks have one copy until it is back and has caught up.",
                down.name,
                down.state.as_str()
            ),
        )
    } else {
        (
            RuleState::Ok,
            "Both storage nodes are up: every VM disk has two copies.".to_string(),
        )
    };
    four_rules(n_plus_one, storage)
}

/// What changed between two looks. With no previous look, every node that is not up is news;
/// nodes that are up say nothing (the app just started).
pub fn transitions(before: Option<&PlatformStatus>, now: &PlatformStatus) -> Vec<Transition> {
    let prev: BTreeMap<&str, NodeState> = before
        .map(|b| b.nodes.iter().map(|n| (n.name.as_str(), n.state)).collect())
        .unwrap_or_default();
    now.nodes
        .iter()
        .filter_map(|n| {
            let from = prev.get(n.name.as_str()).copied();
            let news = match from {
                Some(f) => f != n.state,
                None => before.is_none() && n.state != NodeState::Up,
            };
            if !news {
                return None;
            }
            let title = match (from, n.state) {
                (_, NodeState::Down) => format!("{} is down", n.name),
                (_, NodeState::Degraded) => format!("{} has a problem", n.name),
                (Some(_), NodeState::Up) => format!("{} is back", n.name),
                (None, NodeState::Up) => format!("{} is up", n.name),
            };
            let body = match n.state {
                NodeState::Up => format!(
                    "{} answers again and everything it runs is working.",
                    n.name
                ),
                _ => n.detail.clone(),
            };
            Some(Transition {
                node: n.name.clone(),
                from,
                to: n.state,
                title,
                body,
            })
        })
        .collect()
}

/// Record transitions as events of the inventory's timeline.
pub fn record_transitions(inv: &Inventory, ts: &[Transition]) -> Result<()> {
    for t in ts {
        let sev = match t.to {
            NodeState::Up => Severity::Info,
            NodeState::Degraded => Severity::Warning,
            NodeState::Down => Severity::Error,
        };
        inv.add_event(sev, &t.node, &format!("{}: {}", t.title, t.body))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

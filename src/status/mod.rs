//! The platform's live state, as the tray, the dashboard and (later) the headless supervisor show
//! it: every node probed over SSH with Twofold's own key (reachability, the daemons its role
//! needs, CPU, memory, disk), the VMs of every host through libvirt, one overall health, the
//! four-rule scorecard, and the changes between two looks (what a notification says).
//!
//! [`Monitor::poll`] keeps one SSH session per node open between polls (a poll every few
//! seconds must not pay a key exchange per node each time) and opens it again after a failure.
//! Every remote step is bounded by its own timeout, well inside the node's: a node is down only
//! when it does not answer itself; a slow daemon or a store that waits for a storage node is a
//! finding about what is slow, never a reason to call the node down (the HA agent acts on this
//! status, and a false "down" would fence a healthy host). [`watch`] runs the looks in a loop
//! and tells what changed.

mod probe;
pub mod watch;

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
use crate::rules::{four_rules, protection_sentence, running_headline, Rule, RuleState};
use crate::storage::layout::PING_TIMEOUT_S;
use crate::storage::volume::{self, VolumeFinding, VolumeLook};
use crate::vm::{VmList, VmView};

pub use probe::{parse_probe, probe_command, slow_checks, Check, Judged, Sample, CHECK_LIMIT_S};

/// How long logging in to a node may take (a session is kept between looks, so this is paid
/// only after a failure).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(4);
/// How long one command of a probe may take to come back, its time limit on the node included:
/// the limit, the kill a second later, and a second for the round trip.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(CHECK_LIMIT_S as u64 + 2);
/// How long one node may take to answer its probe in all (connect included): a last bound that
/// the parts' own limits stay inside.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long listing the VMs of the hosts that answered may take.
const VM_LIST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one GlusterFS command of the volume look may take to come back.
const VOLUME_COMMAND_TIMEOUT: Duration = Duration::from_secs(volume::COMMAND_LIMIT_S as u64 + 2);

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
    /// A host whose store is mounted but waits for a storage node: for how many seconds.
    #[serde(default)]
    pub store_waiting_s: Option<u64>,
}

/// Everything one look at the platform found.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlatformStatus {
    pub checked_at: i64,
    pub health: Health,
    /// A few words for the title: "Healthy" only when every node works and every rule holds
    /// ("Running, not yet protected" while backups are missing).
    pub headline: String,
    /// Plain sentences about `health` and what is still missing.
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

/// One session slot per node: connecting to a node that does not answer never holds up
/// another node's probe.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Session>>>>;

/// Watches one platform: holds its SSH sessions, the previous probe of every node and since when
/// each host's store has been waiting.
pub struct Monitor {
    key: PathBuf,
    sessions: std::sync::Mutex<BTreeMap<String, Slot>>,
    previous: std::sync::Mutex<BTreeMap<String, Sample>>,
    waiting_since: std::sync::Mutex<BTreeMap<String, std::time::Instant>>,
    /// Since when each node has answered every probe.
    answering_since: std::sync::Mutex<BTreeMap<String, std::time::Instant>>,
}

/// A node's probe before it is judged.
struct Raw {
    outcome: Result<Sample>,
    probe_ms: u64,
}

type Answer = std::result::Result<crate::node::CommandOutput, Option<String>>;

impl Monitor {
    /// A monitor that logs in with Twofold's private key `key` (see
    /// [`crate::provision::connect::ensure_twofold_key`]).
    pub fn new(key: &Path) -> Monitor {
        Monitor {
            key: key.to_path_buf(),
            sessions: std::sync::Mutex::new(BTreeMap::new()),
            previous: std::sync::Mutex::new(BTreeMap::new()),
            waiting_since: std::sync::Mutex::new(BTreeMap::new()),
            answering_since: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Look at every node of the inventory at `db` at once, at the store's volume and at the VMs
    /// of every host. The inventory's VM records are brought up to date; nothing else changes.
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
        let probes = futures::future::join_all(nodes.iter().map(|n| self.probe_node(n)));
        let look = self.look_at_volume(&nodes);
        let (raws, look) = tokio::join!(probes, look);
        // libvirt is asked only on hosts whose own libvirt just answered: a host that did not
        // answer would hold the listing up for as long as a connection attempt takes.
        let listable: Vec<String> = nodes
            .iter()
            .zip(&raws)
            .filter(|(n, r)| {
                n.role == Role::Host
                    && r.outcome.as_ref().is_ok_and(|s| {
                        s.checks
                            .iter()
                            .any(|(c, state)| c == "libvirt" && *state == Check::Ok)
                    })
            })
            .map(|(n, _)| n.name.clone())
            .collect();
        let finding = look.as_ref().map(volume::judge);
        let ping_timeout_s = finding
            .as_ref()
            .and_then(|f| f.ping_timeout_s)
            .unwrap_or(PING_TIMEOUT_S);
        let statuses: Vec<NodeStatus> = nodes
            .iter()
            .zip(raws)
            .map(|(n, raw)| self.judge_node(n, raw, finding.as_ref(), ping_timeout_s))
            .collect();
        let db_owned = db.to_path_buf();
        let listing = crate::blocking::run("looking at the platform", move || {
            let inv = Inventory::open(&db_owned)?;
            match crate::platform::host_targets(&inv) {
                Ok(mut hosts) => {
                    hosts.retain(|h| listable.contains(&h.name));
                    crate::vm::list_blocking(&hosts, &inv)
                }
                Err(_) => Ok(VmList::default()),
            }
        });
        let vm_list = match tokio::time::timeout(VM_LIST_TIMEOUT, listing).await {
            Ok(Ok(list)) => list,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the VMs could not be listed");
                VmList::default()
            }
            Err(_) => {
                tracing::warn!(
                    "listing the VMs took over {} s; this look shows none",
                    VM_LIST_TIMEOUT.as_secs()
                );
                VmList::default()
            }
        };
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
        Ok(assemble(
            now_ms(),
            statuses,
            vm_list.vms,
            &critical,
            finding.as_ref(),
        ))
    }

    async fn probe_node(&self, n: &NodeSpec) -> Raw {
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
        if outcome.is_err() {
            lock(&self.answering_since).remove(&n.name);
            // The session may be dead: open a new one next time.
            self.forget(&n.name).await;
        } else {
            lock(&self.answering_since)
                .entry(n.name.clone())
                .or_insert_with(std::time::Instant::now);
        }
        Raw { outcome, probe_ms }
    }

    fn judge_node(
        &self,
        n: &NodeSpec,
        raw: Raw,
        finding: Option<&VolumeFinding>,
        ping_timeout_s: u32,
    ) -> NodeStatus {
        match raw.outcome {
            Ok(mut sample) => {
                // A storage node's brick, as glusterd reports it (when it was read).
                if n.role == Role::Storage {
                    if let Some(down) = finding
                        .filter(|f| f.state != RuleState::Missing)
                        .and_then(|f| f.glusterd_offline.as_ref())
                    {
                        let c = if down.contains(&n.name) {
                            Check::Failed
                        } else {
                            Check::Ok
                        };
                        sample.checks.push(("brick".into(), c));
                    }
                }
                let waited = self.store_wait(n, &sample);
                let too_long = waited.filter(|w| *w > store_wait_limit_s(ping_timeout_s));
                let prev = lock(&self.previous).insert(n.name.clone(), sample.clone());
                let judged = sample.judge(n.role, too_long);
                NodeStatus {
                    name: n.name.clone(),
                    role: n.role,
                    address: n.address.clone(),
                    state: judged.state,
                    detail: judged.detail,
                    code: None,
                    usage: Some(sample.usage(prev.as_ref())),
                    probe_ms: raw.probe_ms,
                    store_waiting_s: waited,
                }
            }
            Err(e) => {
                lock(&self.previous).remove(&n.name);
                lock(&self.waiting_since).remove(&n.name);
                NodeStatus {
                    name: n.name.clone(),
                    role: n.role,
                    address: n.address.clone(),
                    state: NodeState::Down,
                    detail: e.to_string(),
                    code: Some(e.code().to_string()),
                    usage: None,
                    probe_ms: raw.probe_ms,
                    store_waiting_s: None,
                }
            }
        }
    }

    /// Since how many seconds this host's store has been waiting (`None`: it answers).
    fn store_wait(&self, n: &NodeSpec, sample: &Sample) -> Option<u64> {
        let waiting = sample.judge(n.role, None).store_waiting;
        let mut since = lock(&self.waiting_since);
        if !waiting {
            since.remove(&n.name);
            return None;
        }
        let start = *since
            .entry(n.name.clone())
            .or_insert_with(std::time::Instant::now);
        Some(start.elapsed().as_secs())
    }

    async fn sample(&self, n: &NodeSpec) -> Result<Sample> {
        let session = self.session(n).await?;
        // The base command decides whether the node answers; the slow checks run beside it, each
        // bounded by itself.
        let base = async {
            match tokio::time::timeout(COMMAND_TIMEOUT, session.exec(&probe_command(n.role), None))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(Error::HostUnreachable {
                    host: n.name.clone(),
                    detail: format!(
                        "it did not answer its status probe within {} s; check that it is on and on the network",
                        COMMAND_TIMEOUT.as_secs()
                    ),
                }),
            }
        };
        let slow = futures::future::join_all(slow_checks(n.role).into_iter().map(|(name, cmd)| {
            let session = Arc::clone(&session);
            async move {
                let c = match tokio::time::timeout(COMMAND_TIMEOUT, session.exec(&cmd, None)).await
                {
                    Ok(Ok(out)) => Check::of_exit(out.status),
                    Ok(Err(_)) => Check::Failed,
                    Err(_) => Check::TimedOut,
                };
                (name.to_string(), c)
            }
        }));
        let (out, slow) = tokio::join!(base, slow);
        let out = out?;
        if !out.success() {
            return Err(out.error(&n.name, "the status probe"));
        }
        let mut sample = parse_probe(&out.stdout_text()).map_err(|detail| Error::Ssh {
            node: n.name.clone(),
            detail: format!("its status probe answered something unexpected ({detail})"),
        })?;
        sample.checks.extend(slow);
        Ok(sample)
    }

    /// Ask the store's volume about its copies, on the storage node that has answered longest
    /// (a node whose network just came back may not reach the bricks yet), else the next.
    async fn look_at_volume(&self, nodes: &[NodeSpec]) -> Option<VolumeLook> {
        let mut stors: Vec<&NodeSpec> = nodes.iter().filter(|n| n.role == Role::Storage).collect();
        {
            let since = lock(&self.answering_since);
            // Longest answering first; never seen answering last.
            stors.sort_by_key(|n| since.get(&n.name).map_or((1, None), |t| (0, Some(*t))));
        }
        for n in stors {
            let Ok(Ok(session)) =
                tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_secs(1), self.session(n))
                    .await
            else {
                continue;
            };
            let run = |cmd: String| {
                let session = Arc::clone(&session);
                async move {
                    match tokio::time::timeout(VOLUME_COMMAND_TIMEOUT, session.exec(&cmd, None))
                        .await
                    {
                        Ok(Ok(out)) => Ok(out),
                        Ok(Err(e)) => Err(Some(e.to_string())),
                        Err(_) => Err(None),
                    }
                }
            };
            let (info, status, heal): (Answer, Answer, Answer) = tokio::join!(
                run(volume::info_command()),
                run(volume::status_command()),
                run(volume::heal_command())
            );
            // The node itself no longer answers: ask the next one.
            if info.is_err() && status.is_err() && heal.is_err() {
                self.forget(&n.name).await;
                continue;
            }
            return Some(VolumeLook {
                asked: n.name.clone(),
                info: read_answer(info, volume::parse_volume_info),
                status: read_answer(status, volume::parse_volume_status),
                heal: read_answer(heal, volume::parse_heal_summary),
            });
        }
        None
    }

    fn slot(&self, name: &str) -> Slot {
        Arc::clone(lock(&self.sessions).entry(name.to_string()).or_default())
    }

    async fn forget(&self, name: &str) {
        *self.slot(name).lock().await = None;
    }

    async fn session(&self, n: &NodeSpec) -> Result<Arc<Session>> {
        let slot = self.slot(&n.name);
        let mut held = slot.lock().await;
        if let Some(s) = held.as_ref() {
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
                CONNECT_TIMEOUT,
            )
            .await?,
        );
        *held = Some(Arc::clone(&s));
        Ok(s)
    }
}

/// A GlusterFS command's answer, parsed, or why there is none.
fn read_answer<T>(
    r: Answer,
    parse: fn(&str) -> std::result::Result<T, String>,
) -> std::result::Result<T, String> {
    match r {
        Ok(out) => {
            let stdout = out.stdout_text();
            volume::answer(out.status, &stdout, &out.stderr_text()).and_then(parse)
        }
        Err(Some(e)) => Err(e),
        Err(None) => Err(format!(
            "GlusterFS did not answer within {} s",
            VOLUME_COMMAND_TIMEOUT.as_secs()
        )),
    }
}

/// How long a host's store may wait for a lost storage node: GlusterFS gives up on a brick that
/// stopped answering after its ping timeout, counted from the brick's last answer, and the ping
/// timer can run a whole period late, so a client waits up to twice the timeout (33 s measured
/// in the lab for a 20 s timeout).
pub fn store_resume_bound_s(ping_timeout_s: u32) -> u64 {
    2 * u64::from(ping_timeout_s)
}

/// Past this, a waiting store is not GlusterFS going on without a lost node any more.
fn store_wait_limit_s(ping_timeout_s: u32) -> u64 {
    store_resume_bound_s(ping_timeout_s) + 10
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unconfigured() -> PlatformStatus {
    PlatformStatus {
        checked_at: now_ms(),
        health: Health::Unconfigured,
        headline: "Not set up yet".into(),
        summary: "Nothing is set up yet: run the setup wizard to add your four machines.".into(),
        nodes: Vec::new(),
        vms: Vec::new(),
        rules: Vec::new(),
    }
}

/// Overall health, its headline and summary, and the scorecard from the nodes' statuses, the
/// store's volume (when it was read) and the VMs found.
pub fn assemble(
    checked_at: i64,
    nodes: Vec<NodeStatus>,
    vms: Vec<VmView>,
    critical: &[VmSpec],
    volume: Option<&VolumeFinding>,
) -> PlatformStatus {
    let rules = rules(&nodes, critical, volume);
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
    let storage_rule = rules.iter().find(|r| r.id == "replicated_storage");
    let mut sentences: Vec<String> = Vec::new();
    let health = if hosts_up == 0 {
        sentences.push(format!(
            "No virtualization host is working ({}): VMs cannot run. Check the hosts' power and network first.",
            not_up.join(", ")
        ));
        Health::Down
    } else if stors_up == 0 {
        sentences.push(format!(
            "No storage node is working ({}): VMs cannot reach their disks. Check the storage nodes' power and network first.",
            not_up.join(", ")
        ));
        Health::Down
    } else if !not_up.is_empty() {
        sentences.push(format!(
            "Running without a spare: {}. VMs go on, but one more failure could stop them.",
            not_up.join(", ")
        ));
        Health::Degraded
    } else if let Some(r) = storage_rule.filter(|r| r.state != RuleState::Ok) {
        sentences.push(format!("Every node is up, but: {}", r.detail));
        Health::Degraded
    } else {
        sentences.push(
            "Every node is up: VMs can move between hosts and every VM disk has two copies."
                .to_string(),
        );
        Health::Healthy
    };
    if let Some(w) = store_waiting(&nodes, volume) {
        sentences.push(w);
    }
    let headline = match health {
        Health::Healthy => running_headline(&rules).to_string(),
        Health::Degraded => "Degraded".to_string(),
        Health::Down => "Down".to_string(),
        Health::Unconfigured => "Not set up yet".to_string(),
    };
    if health != Health::Down {
        if let Some(p) = protection_sentence(&rules) {
            match (health, p.strip_prefix("Not yet protected: ")) {
                // The headline's own words lead: "Running, not yet protected: no backups."
                (Health::Healthy, Some(what)) => sentences.insert(0, format!("{headline}: {what}")),
                _ => sentences.push(p),
            }
        }
    }
    PlatformStatus {
        checked_at,
        health,
        headline,
        summary: sentences.join(" "),
        nodes,
        vms,
        rules,
    }
}

/// "The VM store is waiting for stor2: ..." when a host's store is waiting.
fn store_waiting(nodes: &[NodeStatus], volume: Option<&VolumeFinding>) -> Option<String> {
    let waiting: Vec<&str> = nodes
        .iter()
        .filter(|n| n.store_waiting_s.is_some())
        .map(|n| n.name.as_str())
        .collect();
    if waiting.is_empty() {
        return None;
    }
    // What it waits for: storage nodes that are down, and machines whose brick is offline.
    let mut lost: Vec<String> = nodes
        .iter()
        .filter(|n| n.state == NodeState::Down && n.role == Role::Storage)
        .map(|n| n.name.clone())
        .collect();
    for o in volume.map(|v| v.offline.as_slice()).unwrap_or_default() {
        if !lost.contains(o) {
            lost.push(o.clone());
        }
    }
    let bound = store_resume_bound_s(
        volume
            .and_then(|v| v.ping_timeout_s)
            .unwrap_or(PING_TIMEOUT_S),
    );
    let what = if lost.is_empty() {
        "a storage node".to_string()
    } else {
        lost.join(" and ")
    };
    Some(format!(
        "The VM store is waiting for {what} (seen from {}): writes resume on the copy that is left within {bound} s of losing it.",
        waiting.join(" and ")
    ))
}

/// The four rules as they stand now.
fn rules(nodes: &[NodeStatus], critical: &[VmSpec], volume: Option<&VolumeFinding>) -> Vec<Rule> {
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
        let mut detail = format!(
            "{} is {}: VM disks have one copy until it is back and has caught up.",
            down.name,
            down.state.as_str()
        );
        // What the volume said besides, unless it only names the same loss.
        if let Some(f) = volume.filter(|f| f.state != RuleState::Ok && f.offline.is_empty()) {
            detail.push(' ');
            detail.push_str(&f.detail);
        }
        (RuleState::Warn, detail)
    } else {
        match volume {
            Some(f) => (f.state, f.detail.clone()),
            None => (
                RuleState::Warn,
                "No storage node answered about the volume: whether every VM disk has two copies is not known.".to_string(),
            ),
        }
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

//! Preflight: before setup changes anything, check over SSH that every node can play its role,
//! and say in plain words what is wrong and how to fix it. Per node: operating system, hardware
//! virtualization (hosts), cores, RAM, free disk where the node will keep its data, packages, and
//! clock; between every pair of nodes: can one reach the other (and how fast), and does it know
//! the other's name.
//!
//! Each check is a small remote command whose output is parsed and judged by pure functions
//! (`parse_*`, `judge_*`), so that the judging is tested without a machine. A check that cannot
//! run (the connection dropped, no answer in time) is reported as failed with that reason, not as
//! an error of the whole run: the wizard shows everything it learned. Only bad input (two nodes
//! of the same name, a CPU check on a storage node, ...) is an [`Error::InvalidInput`], returned
//! before any command is sent.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

use super::sizing::{mib, HostSpec, StorageSpec};
use crate::error::{Error, Result};
use crate::node::{CommandOutput, Session};
use crate::nodes::{NodeList, NodeSpec, Role};
use crate::progress::Progress;

/// Stable identifiers of the checks (the app branches on them; serialized in snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    Os,
    CpuVirt,
    Cores,
    Ram,
    Disk,
    Packages,
    Clock,
    /// Between two nodes: TCP reach of the peer's SSH port, and round-trip time.
    Reach,
    /// Between two nodes: the node resolves the peer's name.
    Resolve,
}

impl CheckId {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::Os => "os",
            CheckId::CpuVirt => "cpu_virt",
            CheckId::Cores => "cores",
            CheckId::Ram => "ram",
            CheckId::Disk => "disk",
            CheckId::Packages => "packages",
            CheckId::Clock => "clock",
            CheckId::Reach => "reach",
            CheckId::Resolve => "resolve",
        }
    }

    /// What the check is about, for people.
    pub fn label(self) -> &'static str {
        match self {
            CheckId::Os => "operating system",
            CheckId::CpuVirt => "hardware virtualization",
            CheckId::Cores => "CPU cores",
            CheckId::Ram => "memory",
            CheckId::Disk => "free disk space",
            CheckId::Packages => "software packages",
            CheckId::Clock => "clock",
            CheckId::Reach => "network connection",
            CheckId::Resolve => "name resolution",
        }
    }

    /// The checks run on each node of `role`, in the order they run.
    pub fn per_node(role: Role) -> &'static [CheckId] {
        match role {
            Role::Host => &[
                CheckId::Os,
                CheckId::CpuVirt,
                CheckId::Cores,
                CheckId::Ram,
                CheckId::Disk,
                CheckId::Packages,
                CheckId::Clock,
            ],
            Role::Storage => &[
                CheckId::Os,
                CheckId::Cores,
                CheckId::Ram,
                CheckId::Disk,
                CheckId::Packages,
                CheckId::Clock,
            ],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Setup can go on, but the user should know (or setup will fix it, like missing packages).
    Warn,
    /// Setup cannot go on until this is fixed.
    Fail,
}

/// One check on one node (or from one node to a peer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub node: String,
    /// For checks between nodes: the other node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    pub check: CheckId,
    pub status: Status,
    /// What was found, e.g. "Debian GNU/Linux 12 (bookworm)".
    pub found: String,
    /// Why this matters, or why it is fine.
    pub reason: String,
    /// What to do; empty when the check passed.
    pub fix: String,
}

/// Least and recommended resources for one role. RAM is compared with `MemTotal`, which is a
/// little less than the RAM installed (the kernel keeps some), so the defaults sit just under
/// round sizes: a machine with 8 GiB installed reports about 7.7 GiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleLimits {
    pub min_cores: u32,
    pub recommended_cores: u32,
    pub min_ram_mib: u64,
    pub recommended_ram_mib: u64,
    pub min_free_disk_gib: u64,
    pub recommended_free_disk_gib: u64,
}

impl RoleLimits {
    /// Hosts: 2 cores (one stays with the host), 4 GiB / 8 GiB installed (2 GiB stay with the
    /// host), and 5 / 20 GiB free under /var/lib/libvirt, which holds VM firmware state, logs and
    /// saved memory images (the VM disks are on the shared store).
    pub fn host_default() -> RoleLimits {
        RoleLimits {
            min_cores: 2,
            recommended_cores: 4,
            min_ram_mib: 3584,
            recommended_ram_mib: 7680,
            min_free_disk_gib: 5,
            recommended_free_disk_gib: 20,
        }
    }

    /// Storage nodes: 1 / 2 cores and 1 / 2 GiB for the GlusterFS daemons, and 20 / 100 GiB
    /// free for the copy of all VM disks (the sizing step compares it with the actual VMs).
    pub fn storage_default() -> RoleLimits {
        RoleLimits {
            min_cores: 1,
            recommended_cores: 2,
            min_ram_mib: 896,
            recommended_ram_mib: 1792,
            min_free_disk_gib: 20,
            recommended_free_disk_gib: 100,
        }
    }
}

/// What the checks look for. The defaults are the documented thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreflightOptions {
    /// Where a host keeps libvirt's data (checked for free space; the nearest existing parent if
    /// it does not exist yet).
    pub host_data_path: String,
    /// Where a storage node keeps its copy of the VM store.
    pub storage_data_path: String,
    pub host_packages: Vec<String>,
    pub storage_packages: Vec<String>,
    /// Setup must not install packages: a missing package fails instead of warning.
    pub no_install: bool,
    /// Accept hosts without hardware virtualization (QEMU then emulates the CPU, many times
    /// slower): for a lab or a trial on machines that cannot do better, never for the business's VMs.
    pub allow_emulation: bool,
    pub host_limits: RoleLimits,
    pub storage_limits: RoleLimits,
    /// Clock offset from this computer's clock that warns / fails, in seconds.
    pub clock_warn_secs: f64,
    pub clock_fail_secs: f64,
    /// Round-trip time between nodes above which the reach check warns, in milliseconds.
    pub latency_warn_ms: f64,
    /// How long a node waits for a peer's TCP connection.
    pub connect_timeout_secs: u64,
    /// Bound on every remote command of the checks.
    pub command_timeout_secs: u64,
}

impl Default for PreflightOptions {
    fn default() -> Self {
        PreflightOptions {
            host_data_path: "/var/lib/libvirt".into(),
            storage_data_path: "/srv".into(),
            host_packages: [
                "libvirt-daemon-system",
                "qemu-system-x86",
                "qemu-utils",
                "glusterfs-client",
            ]
            .map(String::from)
            .to_vec(),
            storage_packages: vec!["glusterfs-server".into()],
            no_install: false,
            allow_emulation: false,
            host_limits: RoleLimits::host_default(),
            storage_limits: RoleLimits::storage_default(),
            clock_warn_secs: 0.5,
            clock_fail_secs: 5.0,
            latency_warn_ms: 5.0,
            connect_timeout_secs: 3,
            command_timeout_secs: 20,
        }
    }
}

impl PreflightOptions {
    /// Check the options; the error lists everything to fix.
    pub fn validate(&self) -> Result<()> {
        let mut errs = Vec::new();
        for (field, path) in [
            ("host_data_path", &self.host_data_path),
            ("storage_data_path", &self.storage_data_path),
        ] {
            if !path.starts_with('/') || path.chars().any(char::is_control) || path.len() > 1024 {
                errs.push(format!(
                    "{field} '{path}' is not an absolute path; give one like /srv"
                ));
            }
        }
        for p in self.host_packages.iter().chain(&self.storage_packages) {
            if !valid_package_name(p) {
                errs.push(format!(
                    "'{p}' is not a Debian package name; names are lowercase letters, digits and + - . (like qemu-utils)"
                ));
            }
        }
        for (role, l) in [
            ("host", &self.host_limits),
            ("storage", &self.storage_limits),
        ] {
            if l.min_cores > l.recommended_cores
                || l.min_ram_mib > l.recommended_ram_mib
                || l.min_free_disk_gib > l.recommended_free_disk_gib
            {
                errs.push(format!(
                    "{role}_limits: each minimum must be at most the recommended value"
                ));
            }
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !(positive(self.clock_warn_secs)
            && positive(self.clock_fail_secs)
            && self.clock_warn_secs <= self.clock_fail_secs)
        {
            errs.push(format!(
                "clock_warn_secs ({}) and clock_fail_secs ({}) must be positive, warn at most fail (defaults 0.5 and 5)",
                self.clock_warn_secs, self.clock_fail_secs
            ));
        }
        if !positive(self.latency_warn_ms) {
            errs.push(format!(
                "latency_warn_ms ({}) must be a positive number of milliseconds (default 5)",
                self.latency_warn_ms
            ));
        }
        for (field, v) in [
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("command_timeout_secs", self.command_timeout_secs),
        ] {
            if !(1..=600).contains(&v) {
                errs.push(format!("{field} is {v}; give 1 to 600 seconds"));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidInput(format!(
                "preflight options: {}",
                errs.join("; ")
            )))
        }
    }

    fn data_path(&self, role: Role) -> &str {
        match role {
            Role::Host => &self.host_data_path,
            Role::Storage => &self.storage_data_path,
        }
    }

    fn limits(&self, role: Role) -> &RoleLimits {
        match role {
            Role::Host => &self.host_limits,
            Role::Storage => &self.storage_limits,
        }
    }

    fn packages(&self, role: Role) -> &[String] {
        match role {
            Role::Host => &self.host_packages,
            Role::Storage => &self.storage_packages,
        }
    }

    fn command_timeout(&self) -> Duration {
        Duration::from_secs(self.command_timeout_secs)
    }
}

/// What the checks measured on one node, for the next steps (sizing takes cores, RAM and disk).
/// `None` where the check could not tell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeFacts {
    pub node: String,
    pub role: Role,
    /// `PRETTY_NAME` from /etc/os-release.
    pub os: Option<String>,
    pub cores: Option<u32>,
    pub ram_mib: Option<u64>,
    /// The data path checked for free space.
    pub data_path: String,
    pub free_disk_gib: Option<u64>,
    /// The node's clock minus this computer's, in milliseconds.
    pub clock_offset_ms: Option<f64>,
}

impl NodeFacts {
    fn new(node: &NodeSpec, opts: &PreflightOptions) -> NodeFacts {
        NodeFacts {
            node: node.name.clone(),
            role: node.role,
            os: None,
            cores: None,
            ram_mib: None,
            data_path: opts.data_path(node.role).to_string(),
            free_disk_gib: None,
            clock_offset_ms: None,
        }
    }
}

/// All results of [`run_preflight`]. Serialized with `passed` (no check failed) next to the
/// fields.
#[derive(Debug, Clone, PartialEq)]
pub struct PreflightReport {
    /// Per node in the order given: its own checks, then its checks towards each peer.
    pub results: Vec<CheckResult>,
    /// One per node, in the order given.
    pub facts: Vec<NodeFacts>,
    /// One sentence for people.
    pub summary: String,
}

impl PreflightReport {
    pub fn new(results: Vec<CheckResult>, facts: Vec<NodeFacts>) -> PreflightReport {
        let summary = summarize(&results, facts.len());
        PreflightReport {
            results,
            facts,
            summary,
        }
    }

    /// No check failed (warnings are allowed).
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.status != Status::Fail)
    }

    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }

    /// The result of one check, if it ran.
    pub fn get(&self, node: &str, check: CheckId, peer: Option<&str>) -> Option<&CheckResult> {
        self.results
            .iter()
            .find(|r| r.node == node && r.check == check && r.peer.as_deref() == peer)
    }

    /// The hosts as the sizing step wants them (hosts whose cores and RAM were read).
    pub fn sizing_hosts(&self) -> Vec<HostSpec> {
        self.facts
            .iter()
            .filter(|f| f.role == Role::Host)
            .filter_map(|f| {
                Some(HostSpec {
                    name: f.node.clone(),
                    cores: f.cores?,
                    ram_mib: f.ram_mib?,
                    free_disk_gib: f.free_disk_gib,
                })
            })
            .collect()
    }

    /// The storage nodes as the sizing step wants them.
    pub fn sizing_storage(&self) -> Vec<StorageSpec> {
        self.facts
            .iter()
            .filter(|f| f.role == Role::Storage)
            .map(|f| StorageSpec {
                name: f.node.clone(),
                free_disk_gib: f.free_disk_gib,
            })
            .collect()
    }
}

impl Serialize for PreflightReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("PreflightReport", 4)?;
        st.serialize_field("passed", &self.passed())?;
        st.serialize_field("summary", &self.summary)?;
        st.serialize_field("results", &self.results)?;
        st.serialize_field("facts", &self.facts)?;
        st.end()
    }
}

fn summarize(results: &[CheckResult], nodes: usize) -> String {
    let count = |s| results.iter().filter(|r| r.status == s).count();
    let (pass, warn, fail) = (
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail),
    );
    let total = results.len();
    let on = format!(
        "{total} check{} on {nodes} node{}",
        if total == 1 { "" } else { "s" },
        if nodes == 1 { "" } else { "s" }
    );
    if warn == 0 && fail == 0 {
        return format!("All {on} passed.");
    }
    let mut s = format!("{on}: {pass} passed");
    if warn > 0 {
        s.push_str(&format!(", {warn} with warnings"));
    }
    if fail > 0 {
        let mut failed: Vec<String> = Vec::new();
        for r in results.iter().filter(|r| r.status == Status::Fail) {
            let what = match &r.peer {
                Some(p) => format!("{} ({} to {p})", r.node, r.check.label()),
                None => format!("{} ({})", r.node, r.check.label()),
            };
            if !failed.contains(&what) {
                failed.push(what);
            }
        }
        s.push_str(&format!(
            ", {fail} failed: {}. Fix what failed, then run the checks again.",
            failed.join(", ")
        ));
    } else {
        s.push_str(". Setup can go ahead; read the warnings first.");
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Running the checks

/// Run every check on every node, the nodes in parallel (each node's checks one after the other,
/// each remote command bounded by [`PreflightOptions::command_timeout_secs`]). `nodes` pairs each
/// node with a session connected to it. Progress counts finished nodes.
///
/// Bad input is an [`Error::InvalidInput`] before anything runs: no nodes, an invalid node list
/// (two nodes of the same name or address, ...), a session connected to another node than the
/// one it is paired with, invalid options.
pub async fn run_preflight<S: AsRef<Session> + Sync>(
    nodes: &[(NodeSpec, S)],
    opts: &PreflightOptions,
    progress: &dyn Progress,
) -> Result<PreflightReport> {
    opts.validate()?;
    if nodes.is_empty() {
        return Err(Error::InvalidInput(
            "no nodes to check; give the hosts and storage nodes with an SSH session to each"
                .into(),
        ));
    }
    let specs: Vec<NodeSpec> = nodes.iter().map(|(n, _)| n.clone()).collect();
    validate_node_list(&specs)?;
    for (spec, session) in nodes {
        check_pairing(spec, session.as_ref())?;
    }

    progress.begin("checking the nodes", Some(nodes.len() as u64));
    let done = AtomicU64::new(0);
    let per_node: Vec<_> = nodes
        .iter()
        .map(|(spec, session)| {
            let session = session.as_ref();
            let (specs, done) = (&specs, &done);
            async move {
                let mut facts = NodeFacts::new(spec, opts);
                let mut results = Vec::new();
                for &check in CheckId::per_node(spec.role) {
                    let j = probe(check, spec, session, opts, &mut facts).await;
                    results.push(j.into_result(&spec.name, check, None));
                }
                let peers: Vec<&NodeSpec> = specs.iter().filter(|p| p.name != spec.name).collect();
                results.extend(peer_checks(spec, session, &peers, opts).await);

                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                progress.update(n, None);
                progress.message(&node_line(&spec.name, &results));
                (results, facts)
            }
        })
        .collect();
    let outcomes = join_all(per_node).await;
    progress.finish();

    let mut results = Vec::new();
    let mut facts = Vec::new();
    for (r, f) in outcomes {
        results.extend(r);
        facts.push(f);
    }
    Ok(PreflightReport::new(results, facts))
}

/// Run one per-node check (to show it again after the user fixed something). The checks between
/// nodes ([`CheckId::Reach`], [`CheckId::Resolve`]) need the peers: use [`check_peers`]. The CPU
/// check is for hosts only.
pub async fn run_check(
    check: CheckId,
    node: &NodeSpec,
    session: &Session,
    opts: &PreflightOptions,
) -> Result<CheckResult> {
    opts.validate()?;
    validate_node_list(std::slice::from_ref(node))?;
    check_pairing(node, session)?;
    match check {
        CheckId::Reach | CheckId::Resolve => {
            return Err(Error::InvalidInput(format!(
                "the {} check runs between two nodes; check it with check_peers, giving the other nodes",
                check.as_str()
            )))
        }
        CheckId::CpuVirt if node.role == Role::Storage => {
            return Err(Error::InvalidInput(format!(
                "the cpu_virt check is for virtualization hosts, and '{}' is a storage node, which runs no VMs; run it on a host, or change the node's role to host if it is one",
                node.name
            )))
        }
        _ => {}
    }
    let mut facts = NodeFacts::new(node, opts);
    let j = probe(check, node, session, opts, &mut facts).await;
    Ok(j.into_result(&node.name, check, None))
}

/// Run the checks from `node` towards each of `peers`: reach (TCP to the peer's SSH port, with
/// the round-trip time) and resolve (the peer's name).
pub async fn check_peers(
    node: &NodeSpec,
    session: &Session,
    peers: &[NodeSpec],
    opts: &PreflightOptions,
) -> Result<Vec<CheckResult>> {
    opts.validate()?;
    if peers.is_empty() {
        return Err(Error::InvalidInput(format!(
            "no peers given to check from '{}'; give the other nodes",
            node.name
        )));
    }
    let mut all = vec![node.clone()];
    all.extend(peers.iter().cloned());
    validate_node_list(&all)?;
    check_pairing(node, session)?;
    let peers: Vec<&NodeSpec> = peers.iter().collect();
    Ok(peer_checks(node, session, &peers, opts).await)
}

fn validate_node_list(nodes: &[NodeSpec]) -> Result<()> {
    NodeList {
        nodes: nodes.to_vec(),
    }
    .validate()
    .map_err(|e| Error::InvalidInput(format!("cannot check the nodes: {e}")))
}

fn check_pairing(spec: &NodeSpec, session: &Session) -> Result<()> {
    if session.node() == spec.name {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "the SSH session given for node '{}' is connected to '{}'; pair each node with its own session",
            spec.name,
            session.node()
        )))
    }
}

fn node_line(node: &str, results: &[CheckResult]) -> String {
    let warn = results.iter().filter(|r| r.status == Status::Warn).count();
    let fail = results.iter().filter(|r| r.status == Status::Fail).count();
    match (warn, fail) {
        (0, 0) => format!("{node}: all {} checks passed", results.len()),
        _ => format!(
            "{node}: {} checks, {warn} with warnings, {fail} failed",
            results.len()
        ),
    }
}

/// A check's verdict before it is attached to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Judgement {
    status: Status,
    found: String,
    reason: String,
    fix: String,
}

impl Judgement {
    fn pass(found: impl Into<String>, reason: impl Into<String>) -> Judgement {
        Judgement {
            status: Status::Pass,
            found: found.into(),
            reason: reason.into(),
            fix: String::new(),
        }
    }

    fn warn(
        found: impl Into<String>,
        reason: impl Into<String>,
        fix: impl Into<String>,
    ) -> Judgement {
        Judgement {
            status: Status::Warn,
            found: found.into(),
            reason: reason.into(),
            fix: fix.into(),
        }
    }

    fn fail(
        found: impl Into<String>,
        reason: impl Into<String>,
        fix: impl Into<String>,
    ) -> Judgement {
        Judgement {
            status: Status::Fail,
            found: found.into(),
            reason: reason.into(),
            fix: fix.into(),
        }
    }

    /// The check could not run at all.
    fn unable(node: &str, what: &str, err: &str) -> Judgement {
        Judgement::fail(
            format!("could not check: {err}"),
            format!("Twofold could not check {what} on {node}, so it cannot tell whether the node is ready."),
            format!("Check that {node} is on and its SSH server answers, then run the checks again."),
        )
    }

    fn into_result(self, node: &str, check: CheckId, peer: Option<&str>) -> CheckResult {
        CheckResult {
            node: node.to_string(),
            peer: peer.map(str::to_string),
            check,
            status: self.status,
            found: self.found,
            reason: self.reason,
            fix: self.fix,
        }
    }
}

/// Run `command` on the node, bounded by the options' command timeout. The error is a phrase
/// for [`Judgement::unable`].
async fn remote(
    session: &Session,
    command: &str,
    opts: &PreflightOptions,
) -> std::result::Result<CommandOutput, String> {
    match tokio::time::timeout(opts.command_timeout(), session.exec(command, None)).await {
        Err(_) => Err(format!("no answer within {} s", opts.command_timeout_secs)),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(out)) => Ok(out),
    }
}

async fn probe(
    check: CheckId,
    node: &NodeSpec,
    s: &Session,
    opts: &PreflightOptions,
    facts: &mut NodeFacts,
) -> Judgement {
    match check {
        CheckId::Os => probe_os(node, s, opts, facts).await,
        CheckId::CpuVirt => probe_cpu_virt(node, s, opts).await,
        CheckId::Cores => probe_cores(node, s, opts, facts).await,
        CheckId::Ram => probe_ram(node, s, opts, facts).await,
        CheckId::Disk => probe_disk(node, s, opts, facts).await,
        CheckId::Packages => probe_packages(node, s, opts).await,
        CheckId::Clock => probe_clock(node, s, opts, facts).await,
        CheckId::Reach | CheckId::Resolve => {
            unreachable!("checks between nodes run through peer_checks")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// os

/// The fields of /etc/os-release that matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub id: String,
    pub id_like: Vec<String>,
    pub version_id: Option<String>,
    pub pretty_name: Option<String>,
}

/// Parse os-release(5): `KEY=value` lines, values optionally in single or double quotes (with
/// backslash escapes inside double quotes); comments and blank lines skipped.
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut os = OsRelease::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(raw.trim());
        match key.trim() {
            "ID" => os.id = value.to_ascii_lowercase(),
            "ID_LIKE" => {
                os.id_like = value
                    .split_whitespace()
                    .map(str::to_ascii_lowercase)
                    .collect()
            }
            "VERSION_ID" if !value.is_empty() => os.version_id = Some(value),
            "PRETTY_NAME" if !value.is_empty() => os.pretty_name = Some(value),
            _ => {}
        }
    }
    os
}

fn unquote(v: &str) -> String {
    if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        return v[1..v.len() - 1].to_string();
    }
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let mut out = String::new();
        let mut chars = v[1..v.len() - 1].chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        return out;
    }
    v.to_string()
}

fn judge_os(os: &OsRelease) -> Judgement {
    let name = os.pretty_name.clone().unwrap_or_else(|| {
        format!(
            "{} {}",
            if os.id.is_empty() { "unknown" } else { &os.id },
            os.version_id.as_deref().unwrap_or("")
        )
        .trim()
        .to_string()
    });
    let install = "Install Debian 12 (bookworm) on this machine.";
    match (os.id.as_str(), os.version_id.as_deref()) {
        ("debian", Some("12")) => Judgement::pass(
            name,
            "Debian 12 is the release Twofold is built and tested on.",
        ),
        ("debian", _) | ("ubuntu", _) => Judgement::warn(
            name,
            "Twofold is tested on Debian 12 only. Other releases ship other versions of libvirt, QEMU and GlusterFS, so some setup steps may not work, and all nodes should run the same release (storage nodes of different GlusterFS versions may refuse to work together).",
            format!("{install} If you continue, run the same release on every node."),
        ),
        ("", _) => Judgement::fail(
            "no operating system name in /etc/os-release",
            "Twofold cannot tell which operating system this is, and it supports Debian 12 only.",
            install,
        ),
        _ => Judgement::fail(
            name,
            "Twofold installs and configures its parts with Debian's tools (apt, dpkg) and Debian's package names; this system is not supported.",
            install,
        ),
    }
}

async fn probe_os(
    node: &NodeSpec,
    s: &Session,
    opts: &PreflightOptions,
    facts: &mut NodeFacts,
) -> Judgement {
    match remote(
        s,
        "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release",
        opts,
    )
    .await
    {
        Err(e) => Judgement::unable(&node.name, "the operating system", &e),
        Ok(out) => {
            let os = parse_os_release(&out.stdout_text());
            facts.os = os.pretty_name.clone();
            judge_os(&os)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// cpu_virt

const CPU_VIRT_COMMAND: &str = "grep -m1 -E '^flags[[:space:]]*:' /proc/cpuinfo; if [ -c /dev/kvm ]; then echo kvm=yes; else echo kvm=no; fi";

/// Parse the output of [`CPU_VIRT_COMMAND`]: the CPU flags and whether /dev/kvm exists.
fn parse_cpu_virt(text: &str) -> (HashSet<String>, bool) {
    let mut flags = HashSet::new();
    let mut kvm = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("flags") {
            if let Some((_, list)) = rest.split_once(':') {
                flags.extend(list.split_whitespace().map(str::to_string));
            }
        } else if line.trim() == "kvm=yes" {
            kvm = true;
        }
    }
    (flags, kvm)
}

fn judge_cpu_virt(flags: &HashSet<String>, kvm: bool) -> Judgement {
    let vendor = if flags.contains("vmx") {
        Some("Intel VT-x")
    } else if flags.contains("svm") {
        Some("AMD-V")
    } else {
        None
    };
    let nested = flags.contains("hypervisor");
    let why = "A host runs VMs with KVM, the CPU's hardware virtualization; without it QEMU would emulate every instruction and VMs would run many times slower.";
    match (kvm, vendor) {
        (true, _) if nested => Judgement::warn(
            "KVM is available (/dev/kvm), but this machine is itself a virtual machine",
            "VMs on this host would run nested, inside another hypervisor: slower, and live migration and failover are less reliable. That is fine for a trial, not for the business's VMs.",
            "For production, install the host directly on the hardware.",
        ),
        (true, v) => Judgement::pass(
            format!(
                "KVM is available (/dev/kvm{})",
                v.map(|v| format!(", CPU with {v}")).unwrap_or_default()
            ),
            "The host can run VMs with hardware virtualization.",
        ),
        (false, Some(v)) => Judgement::fail(
            format!("the CPU has {v}, but /dev/kvm is missing"),
            format!("{why} The KVM kernel module is not loaded, or the firmware has virtualization turned off."),
            "Load the module as root: 'modprobe kvm_intel' (Intel) or 'modprobe kvm_amd' (AMD). If that reports 'disabled by bios', turn on Intel VT-x or AMD-V (often called 'Virtualization Technology' or 'SVM Mode') in the machine's firmware (BIOS/UEFI) setup, then switch the machine off and on.",
        ),
        (false, None) if nested => Judgement::fail(
            "this machine is a virtual machine without nested virtualization (no vmx or svm CPU flag, no /dev/kvm)",
            why,
            "Turn on nested virtualization for this VM in the hypervisor that runs it, or better, install the host directly on the hardware.",
        ),
        (false, None) => Judgement::fail(
            "the CPU offers no hardware virtualization (no vmx or svm flag) and /dev/kvm is missing",
            why,
            "Turn on Intel VT-x or AMD-V (often called 'Virtualization Technology' or 'SVM Mode') in the machine's firmware (BIOS/UEFI) setup, then switch the machine off and on. If there is no such setting, this CPU cannot be a host.",
        ),
    }
}

async fn probe_cpu_virt(node: &NodeSpec, s: &Session, opts: &PreflightOptions) -> Judgement {
    match remote(s, CPU_VIRT_COMMAND, opts).await {
        Err(e) => Judgement::unable(&node.name, "the CPU's features", &e),
        Ok(out) => {
            let (flags, kvm) = parse_cpu_virt(&out.stdout_text());
            let j = judge_cpu_virt(&flags, kvm);
            if j.status == Status::Fail && opts.allow_emulation {
                Judgement::warn(
                    j.found,
                    "Without hardware virtualization QEMU emulates every instruction: VMs run many times slower. Accepted because emulation was allowed (a lab or a trial).",
                    j.fix,
                )
            } else {
                j
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// cores

fn judge_cores(cores: u32, role: Role, l: &RoleLimits) -> Judgement {
    let found = format!("{cores} core{}", if cores == 1 { "" } else { "s" });
    let why = match role {
        Role::Host => "A host keeps one core for itself (libvirt, the storage client, Twofold) and runs the VMs' vCPUs on the others.",
        Role::Storage => "A storage node's GlusterFS daemons copy every write and repair the other copy after an outage; with too few cores a repair slows every VM's disk.",
    };
    if cores < l.min_cores {
        Judgement::fail(
            found,
            format!("{why} A {} needs at least {}.", noun(role), l.min_cores),
            format!(
                "Use a machine with at least {} cores for this role.",
                l.min_cores
            ),
        )
    } else if cores < l.recommended_cores {
        Judgement::warn(
            found,
            format!(
                "{why} {} or more are recommended for a {}.",
                l.recommended_cores,
                noun(role)
            ),
            format!(
                "Consider a machine with {} cores or more; the sizing step shows whether your VMs fit.",
                l.recommended_cores
            ),
        )
    } else {
        Judgement::pass(found, format!("Enough for a {}.", noun(role)))
    }
}

async fn probe_cores(
    node: &NodeSpec,
    s: &Session,
    opts: &PreflightOptions,
    facts: &mut NodeFacts,
) -> Judgement {
    let out = match remote(s, "nproc", opts).await {
        Err(e) => return Judgement::unable(&node.name, "the number of cores", &e),
        Ok(out) => out,
    };
    match out.stdout_text().trim().parse::<u32>() {
        Ok(n) if n > 0 => {
            facts.cores = Some(n);
            judge_cores(n, node.role, opts.limits(node.role))
        }
        _ => Judgement::unable(
            &node.name,
            "the number of cores",
            &format!(
                "'nproc' answered '{}'",
                first_line(&out.stdout_text(), &out.stderr_text())
            ),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// ram

/// `MemTotal` from /proc/meminfo, in KiB.
pub fn parse_meminfo(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("MemTotal:")?;
        let mut parts = rest.split_whitespace();
        let n: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") | None => Some(n),
            _ => None,
        }
    })
}

fn judge_ram(ram_mib: u64, role: Role, l: &RoleLimits) -> Judgement {
    let found = format!("{} of RAM", mib(ram_mib));
    let why = match role {
        Role::Host => "A host keeps at least 2 GiB for itself; the rest is for VMs, and it must be able to hold every critical VM alone when the other host is down.",
        Role::Storage => "GlusterFS needs about 1 GiB to run and uses what is left to cache VM disks.",
    };
    if ram_mib < l.min_ram_mib {
        Judgement::fail(
            found,
            format!(
                "{why} A {} needs at least {} (as the system reports it; a little less than installed).",
                noun(role),
                mib(l.min_ram_mib)
            ),
            "Add RAM to this machine, or use a bigger one for this role.",
        )
    } else if ram_mib < l.recommended_ram_mib {
        Judgement::warn(
            found,
            format!(
                "{why} {} or more are recommended for a {}.",
                mib(l.recommended_ram_mib),
                noun(role)
            ),
            "Consider adding RAM; the sizing step shows whether your VMs fit.",
        )
    } else {
        Judgement::pass(found, format!("Enough for a {}.", noun(role)))
    }
}

async fn probe_ram(
    node: &NodeSpec,
    s: &Session,
    opts: &PreflightOptions,
    facts: &mut NodeFacts,
) -> Judgement {
    let out = match remote(s, "cat /proc/meminfo", opts).await {
        Err(e) => return Judgement::unable(&node.name, "the amount of RAM", &e),
        Ok(out) => out,
    };
    match parse_meminfo(&out.stdout_text()) {
        Some(kib) => {
            let ram = kib / 1024;
            facts.ram_mib = Some(ram);
            judge_ram(ram, node.role, opts.limits(node.role))
        }
        None => Judgement::unable(
            &node.name,
            "the amount of RAM",
            "/proc/meminfo has no MemTotal line",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// disk

/// One filesystem line of `df -Pk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfLine {
    pub filesystem: String,
    pub total_kib: u64,
    pub used_kib: u64,
    pub available_kib: u64,
    pub mount_point: String,
}

/// Parse the last filesystem line of `df -Pk` output (POSIX format: filesystem, 1024-blocks,
/// used, available, capacity%, mount point). Names with spaces are handled by anchoring on the
/// capacity column.
pub fn parse_df(text: &str) -> Option<DfLine> {
    let line = text
        .lines()
        .rfind(|l| !l.trim().is_empty() && !l.starts_with("Filesystem"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let cap = fields
        .iter()
        .rposition(|f| f.ends_with('%') && f[..f.len() - 1].chars().all(|c| c.is_ascii_digit()))
        .or_else(|| fields.iter().rposition(|f| *f == "-"))?;
    if cap < 4 || cap + 1 >= fields.len() {
        return None;
    }
    let num = |i: usize| fields[i].parse::<u64>().ok();
    Some(DfLine {
        filesystem: fields[..cap - 3].join(" "),
        total_kib: num(cap - 3)?,
        used_kib: num(cap - 2)?,
        available_kib: num(cap - 1)?,
        mount_point: fields[cap + 1..].join(" "),
    })
}

/// Print the data path's nearest existing directory (the path itself once it exists), then
/// `df -Pk` of it.
fn disk_command(path: &str) -> String {
    format!(
        "p={}; while [ ! -e \"$p\" ]; do p=$(dirname \"$p\"); done; echo \"$p\"; df -Pk \"$p\"",
        shell_quote(path)
    )
}

fn judge_disk(path: &str, existing: &str, df: &DfLine, role: Role, l: &RoleLimits) -> Judgement {
    let free_gib = df.available_kib / (1024 * 1024);
    let found = if existing == path {
        format!(
            "{free_gib} GiB free at {path} (filesystem mounted on {})",
            df.mount_point
        )
    } else {
        format!(
            "{free_gib} GiB free on {} ({path} does not exist yet and will be created there)",
            df.mount_point
        )
    };
    let why = match role {
        Role::Host => format!("libvirt keeps the VMs' firmware settings, logs and, when the host shuts down, their saved memory under {path}; the VM disks themselves live on the shared store."),
        Role::Storage => format!("This node keeps its full copy of every VM disk under {path}; the sizing step compares the space with your VMs' disks."),
    };
    if free_gib < l.min_free_disk_gib {
        Judgement::fail(
            found,
            format!(
                "{why} A {} needs at least {} GiB free there.",
                noun(role),
                l.min_free_disk_gib
            ),
            format!(
                "Free up space on the filesystem holding {path}, or add a disk and mount it there."
            ),
        )
    } else if free_gib < l.recommended_free_disk_gib {
        Judgement::warn(
            found,
            format!(
                "{why} {} GiB or more are recommended.",
                l.recommended_free_disk_gib
            ),
            format!("Consider a bigger disk for {path}."),
        )
    } else if role == Role::Storage && df.mount_point == "/" {
        Judgement::warn(
            found,
            format!("{path} is on the system's root filesystem: if VM disks fill it, the operating system of this node stops working too, and GlusterFS warns against it."),
            format!("Mount a separate disk or partition at {path} (or choose a data path on one)."),
        )
    } else {
        Judgement::pass(found, "Enough free space for now.")
    }
}

async fn probe_disk(
    node: &NodeSpec,
    s: &Session,
    opts: &PreflightOptions,
    facts: &mut NodeFacts,
) -> Judgement {
    let path = opts.data_path(node.role);
    let out = match remote(s, &disk_command(path), opts).await {
        Err(e) => return Judgement::unable(&node.name, "the free disk space", &e),
        Ok(out) => out,
    };
    let text = out.stdout_text();
    let existing = text.lines().next().unwrap_or("").trim().to_string();
    match parse_df(&text) {
        Some(df) if out.success() => {
            facts.free_disk_gib = Some(df.available_kib / (1024 * 1024));
            judge_disk(path, &existing, &df, node.role, opts.limits(node.role))
        }
        _ => Judgement::unable(
            &node.name,
            "the free disk space",
            &format!(
                "'df' answered '{}'",
                first_line(&out.stderr_text(), &out.stdout_text())
            ),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// packages

fn valid_package_name(p: &str) -> bool {
    // Debian policy 5.6.1: lowercase letters, digits, + - .; at least two characters, starting
    // with a letter or digit.
    p.len() >= 2
        && p.len() <= 128
        && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

fn packages_command(packages: &[String]) -> String {
    // ${db:Status-Abbrev} is three letters: wanted, current state, error; "ii " is installed.
    // Unknown packages print nothing on stdout (and a complaint on stderr, dropped).
    format!(
        "command -v dpkg-query >/dev/null 2>&1 || {{ echo no-dpkg; exit 0; }}; dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}}\\n' {} 2>/dev/null; exit 0",
        packages.join(" ")
    )
}

/// Which of `wanted` are installed, according to `dpkg-query -W -f='${Package}
/// ${db:Status-Abbrev}\n'` output. Returns the missing ones, in the order wanted; `None` when the
/// node has no dpkg.
pub fn parse_dpkg_status(text: &str, wanted: &[String]) -> Option<Vec<String>> {
    if text.lines().any(|l| l.trim() == "no-dpkg") {
        return None;
    }
    let installed: HashSet<&str> = text
        .lines()
        .filter_map(|l| {
            let (name, abbrev) = l.split_once(' ')?;
            // The second letter is the current state: 'i' installed (not half-configured,
            // unpacked only, or config files only).
            (abbrev.chars().nth(1) == Some('i')).then_some(name.split(':').next().unwrap_or(name))
        })
        .collect();
    Some(
        wanted
            .iter()
            .filter(|p| !installed.contains(p.as_str()))
            .cloned()
            .collect(),
    )
}

fn judge_packages(
    node: &str,
    role: Role,
    wanted: &[String],
    missing: Option<&[String]>,
    no_install: bool,
) -> Judgement {
    let Some(missing) = missing else {
        return Judgement::fail(
            "no dpkg on this system",
            "Twofold installs and checks its parts with Debian's package tools.",
            "Install Debian 12 (bookworm) on this machine.",
        );
    };
    if missing.is_empty() {
        return Judgement::pass(
            if wanted.is_empty() {
                "no packages required".to_string()
            } else {
                format!("installed: {}", wanted.join(", "))
            },
            format!("Everything a {} needs is installed.", noun(role)),
        );
    }
    let found = format!("not installed: {}", missing.join(", "));
    let command = format!("apt-get install -y {}", missing.join(" "));
    let why = format!("A {} needs these packages.", noun(role));
    if no_install {
        Judgement::fail(
            found,
            format!("{why} Setup was told not to install packages, so they must be there before it starts."),
            format!("Run as root on {node}: apt-get update && {command}"),
        )
    } else {
        Judgement::warn(
            found,
            format!("{why} Setup installs them; this needs the node to reach its package mirror."),
            command,
        )
    }
}

async fn probe_packages(node: &NodeSpec, s: &Session, opts: &PreflightOptions) -> Judgement {
    let wanted = opts.packages(node.role);
    if wanted.is_empty() {
        return judge_packages(&node.name, node.role, wanted, Some(&[]), opts.no_install);
    }
    match remote(s, &packages_command(wanted), opts).await {
        Err(e) => Judgement::unable(&node.name, "the installed packages", &e),
        Ok(out) => {
            let missing = parse_dpkg_status(&out.stdout_text(), wanted);
            judge_packages(
                &node.name,
                node.role,
                wanted,
                missing.as_deref(),
                opts.no_install,
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// clock

/// The node's clock minus ours in seconds, from one sample: our clock before and after the
/// command (nanoseconds since the epoch) and the node's `date +%s%N` in between. The node read
/// its clock about half-way through the round trip. Returns (offset, round trip).
fn clock_offset(local_before_ns: i128, remote_ns: i128, local_after_ns: i128) -> (f64, f64) {
    let mid = local_before_ns + (local_after_ns - local_before_ns) / 2;
    (
        (remote_ns - mid) as f64 / 1e9,
        (local_after_ns - local_before_ns) as f64 / 1e9,
    )
}

fn judge_clock(
    offset_secs: f64,
    rtt_secs: f64,
    synchronized: Option<bool>,
    opts: &PreflightOptions,
) -> Judgement {
    let abs = offset_secs.abs();
    let direction = if offset_secs >= 0.0 {
        "ahead of"
    } else {
        "behind"
    };
    let found = format!(
        "{abs:.3} s {direction} this computer's clock (measured to ±{:.3} s){}",
        rtt_secs / 2.0,
        match synchronized {
            Some(true) => "; time synchronization is on",
            Some(false) => "; time synchronization is off",
            None => "",
        }
    );
    let why = "Nodes must agree on the time: storage replication, the failover's decisions and leases, the backup schedule and the offsite storage's signed requests all compare times between machines.";
    let fix = "Turn on time synchronization on this node: as root, 'apt-get install -y chrony' (or systemd-timesyncd), then 'timedatectl' should say 'System clock synchronized: yes'. If this computer's own clock is the wrong one, fix it here instead.";
    if abs > opts.clock_fail_secs {
        Judgement::fail(
            found,
            format!(
                "{why} More than {} s apart is too far.",
                opts.clock_fail_secs
            ),
            fix,
        )
    } else if abs > opts.clock_warn_secs {
        Judgement::warn(
            found,
            format!(
                "{why} Over {} s apart already shows in logs and schedules, and it grows.",
                opts.clock_warn_secs
            ),
            fix,
        )
    } else if synchronized == Some(false) {
        Judgement::warn(
            found,
            "The clock is right now, but nothing keeps it right: clocks drift by seconds a week.",
            fix,
        )
    } else {
        Judgement::pass(found, "The node's clock agrees with this computer's.")
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

async fn probe_clock(
    node: &NodeSpec,
    s: &Session,
    opts: &PreflightOptions,
    facts: &mut NodeFacts,
) -> Judgement {
    // Three samples, keeping the one with the shortest round trip: the least uncertain.
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..3 {
        let before = now_ns();
        let out = match remote(s, "date +%s%N", opts).await {
            Err(e) => return Judgement::unable(&node.name, "the clock", &e),
            Ok(out) => out,
        };
        let after = now_ns();
        let Ok(remote_ns) = out.stdout_text().trim().parse::<i128>() else {
            return Judgement::unable(
                &node.name,
                "the clock",
                &format!(
                    "'date +%s%N' answered '{}'",
                    first_line(&out.stdout_text(), &out.stderr_text())
                ),
            );
        };
        let sample = clock_offset(before, remote_ns, after);
        if best.is_none_or(|b| sample.1 < b.1) {
            best = Some(sample);
        }
    }
    let Some((offset, rtt)) = best else {
        unreachable!("three samples were taken")
    };
    facts.clock_offset_ms = Some(offset * 1000.0);
    // Whether a time service keeps the clock synchronized (any of them: timedated reads the
    // kernel's state). Unknown without systemd.
    let synchronized = match remote(
        s,
        "timedatectl show -p NTPSynchronized --value 2>/dev/null",
        opts,
    )
    .await
    {
        Ok(out) => match out.stdout_text().trim() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        },
        Err(_) => None,
    };
    judge_clock(offset, rtt, synchronized, opts)
}

// ---------------------------------------------------------------------------------------------
// reach and resolve (between nodes)

/// From the node, open a TCP connection to `$1:$2` three times with bash's /dev/tcp (bash is on
/// every Debian system; no nc needed), printing the clock before and after each. `$EPOCHREALTIME`
/// (bash 5) reads the clock without starting a process, so the times are the connection's, not a
/// fork's. A TCP connect takes one round trip. Exits 3 if a connection fails.
const REACH_SCRIPT: &str = "for i in 1 2 3; do a=${EPOCHREALTIME:-$(date +%s.%N)}; : <\"/dev/tcp/$1/$2\" || exit 3; b=${EPOCHREALTIME:-$(date +%s.%N)}; echo \"$a $b\"; done";

fn reach_command(address: &str, port: u16, timeout_secs: u64) -> String {
    format!(
        "timeout {timeout_secs} bash -c {} twofold-reach {} {port}",
        shell_quote(REACH_SCRIPT),
        shell_quote(address)
    )
}

/// The round-trip times (seconds) of the connections in the reach script's output. The clock
/// may print a decimal comma in some locales.
fn parse_reach(text: &str) -> Vec<f64> {
    let secs = |s: &str| s.replace(',', ".").parse::<f64>().ok();
    text.lines()
        .filter_map(|l| {
            let (a, b) = l.trim().split_once(' ')?;
            let d = secs(b)? - secs(a)?;
            (d >= 0.0).then_some(d)
        })
        .collect()
}

fn judge_reach(
    node: &str,
    peer: &NodeSpec,
    status: u32,
    rtts: &[f64],
    stderr: &str,
    opts: &PreflightOptions,
) -> Judgement {
    let endpoint = if peer.address.contains(':') {
        format!("[{}]:{}", peer.address, peer.ssh_port)
    } else {
        format!("{}:{}", peer.address, peer.ssh_port)
    };
    let why = format!("{node} must reach {} directly: storage replication, live migration and failover go between the nodes, not through this computer.", peer.name);
    if let Some(best) = rtts.iter().copied().reduce(f64::min) {
        let ms = best * 1000.0;
        let found = format!("{} reaches {endpoint}; round trip {ms:.2} ms", node);
        return if ms > opts.latency_warn_ms {
            Judgement::warn(
                found,
                format!("Storage replication waits for both copies on every disk write, and live migration copies a VM's memory over this link: both want a local network, well under {} ms (a LAN is usually under 1 ms).", opts.latency_warn_ms),
                format!("Connect {node} and {} through the same local network (same switch, cable rather than Wi-Fi), and check for an overloaded link.", peer.name),
            )
        } else {
            Judgement::pass(found, "The nodes are on a fast local network.")
        };
    }
    let detail = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.rsplit(": ").next().unwrap_or(l).trim().to_string())
        .unwrap_or_default();
    match status {
        124 => Judgement::fail(
            format!("no answer from {endpoint} within {} s", opts.connect_timeout_secs),
            why,
            format!("Check that {} is on, that {} is its address as seen from {node}, and that no firewall on the way drops the traffic.", peer.name, peer.address),
        ),
        3 => Judgement::fail(
            format!("{node} cannot connect to {endpoint}: {detail}"),
            why,
            if detail.contains("refused") {
                format!("Check that the SSH server of {} runs and listens on port {}, and that no firewall rejects the connection.", peer.name, peer.ssh_port)
            } else {
                format!("Check {}'s address ({}), the network cables, and the routes between {node} and {}.", peer.name, peer.address, peer.name)
            },
        ),
        127 => Judgement::fail(
            format!("the connection test could not start on {node}: {detail}"),
            "Twofold tests connections with bash and timeout, which every Debian system has.",
            format!("Install Debian 12 on {node}."),
        ),
        s => Judgement::unable(node, "whether the other node is reachable", &format!("exit status {s}: {detail}")),
    }
}

fn resolve_command(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| shell_quote(n)).collect();
    format!(
        "for n in {}; do timeout 5 getent hosts \"$n\" | while read -r ip rest; do printf '%s %s\\n' \"$n\" \"$ip\"; done; done; exit 0",
        quoted.join(" ")
    )
}

/// Addresses per name from the resolve command's `NAME ADDRESS` lines.
fn parse_resolve(text: &str) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for line in text.lines() {
        if let Some((name, addr)) = line.trim().split_once(' ') {
            map.entry(name.to_string())
                .or_default()
                .push(addr.trim().to_string());
        }
    }
    map
}

fn judge_resolve(node: &str, peer: &NodeSpec, addrs: &[String]) -> Judgement {
    let why = format!("The storage nodes and hosts name each other (GlusterFS peers, migration targets); {node} must find {} by name.", peer.name);
    let expected: Option<IpAddr> = peer.address.parse().ok();
    let hosts_line = match expected {
        Some(ip) => format!("'{ip} {}'", peer.name),
        None => format!("'ADDRESS {}' (with {}'s IP address)", peer.name, peer.name),
    };
    if addrs.is_empty() {
        return Judgement::warn(
            format!("{node} cannot resolve the name '{}'", peer.name),
            format!("{why} Setup can add the names to /etc/hosts."),
            format!("Setup writes the line {hosts_line} to /etc/hosts on {node}; or add {} to your DNS.", peer.name),
        );
    }
    let found_ips: Vec<IpAddr> = addrs.iter().filter_map(|a| a.parse().ok()).collect();
    match expected {
        Some(ip) if !found_ips.contains(&ip) => Judgement::warn(
            format!("on {node}, '{}' resolves to {}, but the node list gives {ip}", peer.name, addrs.join(", ")),
            format!("{why} A name that leads to another address sends storage and migration traffic to the wrong place."),
            format!("Correct the line for {} in /etc/hosts on {node} to {hosts_line} (setup can write it), or fix the name in your DNS.", peer.name),
        ),
        _ => Judgement::pass(
            format!("on {node}, '{}' resolves to {}", peer.name, addrs.join(", ")),
            "The nodes know each other by name.",
        ),
    }
}

async fn peer_checks(
    node: &NodeSpec,
    s: &Session,
    peers: &[&NodeSpec],
    opts: &PreflightOptions,
) -> Vec<CheckResult> {
    let mut results = Vec::new();
    if peers.is_empty() {
        return results;
    }
    for peer in peers {
        let j = match remote(
            s,
            &reach_command(&peer.address, peer.ssh_port, opts.connect_timeout_secs),
            opts,
        )
        .await
        {
            Err(e) => Judgement::unable(
                &node.name,
                &format!("whether {} is reachable", peer.name),
                &e,
            ),
            Ok(out) => judge_reach(
                &node.name,
                peer,
                out.status,
                &parse_reach(&out.stdout_text()),
                &out.stderr_text(),
                opts,
            ),
        };
        results.push(j.into_result(&node.name, CheckId::Reach, Some(&peer.name)));
    }
    let names: Vec<&str> = peers.iter().map(|p| p.name.as_str()).collect();
    match remote(s, &resolve_command(&names), opts).await {
        Err(e) => {
            for peer in peers {
                let j = Judgement::unable(&node.name, "name resolution", &e);
                results.push(j.into_result(&node.name, CheckId::Resolve, Some(&peer.name)));
            }
        }
        Ok(out) => {
            let map = parse_resolve(&out.stdout_text());
            for peer in peers {
                let addrs = map.get(&peer.name).map(Vec::as_slice).unwrap_or(&[]);
                let j = judge_resolve(&node.name, peer, addrs);
                results.push(j.into_result(&node.name, CheckId::Resolve, Some(&peer.name)));
            }
        }
    }
    results
}

// ---------------------------------------------------------------------------------------------
// helpers

/// The role as people say it: "a host", "a storage node".
fn noun(role: Role) -> &'static str {
    match role {
        Role::Host => "host",
        Role::Storage => "storage node",
    }
}

/// Quote for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn first_line(a: &str, b: &str) -> String {
    a.lines()
        .chain(b.lines())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("nothing")
        .chars()
        .take(200)
        .collect()
}

/// Poll all futures together on the current task and return their outputs in order. The node
/// checks borrow their sessions, so they cannot be spawned as `'static` tasks.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod sshd_tests;

//! What the checks report: the stable check ids, a result per check and node, the facts measured
//! for the sizing step, and the whole report with its one-sentence summary.

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

use super::options::PreflightOptions;
use crate::nodes::{NodeSpec, Role};
use crate::provision::sizing::{HostSpec, StorageSpec};

/// Stable identifiers of the checks (the app branches on them; serialized in snake_case).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
    pub(super) fn new(node: &NodeSpec, opts: &PreflightOptions) -> NodeFacts {
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

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

mod clock;
mod network;
mod options;
mod packages;
mod report;
mod system;
mod virtualization;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::node::{CommandOutput, Session};
use crate::nodes::{NodeList, NodeSpec, Role};
use crate::progress::Progress;
use crate::shell::shell_quote;

use clock::probe_clock;
use network::peer_checks;
use packages::probe_packages;
use system::{probe_cores, probe_disk, probe_os, probe_ram};
use virtualization::probe_cpu_virt;

pub use options::{PreflightOptions, RoleLimits};
pub use packages::parse_dpkg_status;
pub use report::{CheckId, CheckResult, NodeFacts, PreflightReport, Status};
pub use system::{parse_df, parse_meminfo, parse_os_release, DfLine, OsRelease};

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
    // The node checks borrow their sessions, so they run together on this task, not spawned.
    let outcomes = futures::future::join_all(per_node).await;
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
// helpers

/// The role as people say it: "a host", "a storage node".
fn noun(role: Role) -> &'static str {
    match role {
        Role::Host => "host",
        Role::Storage => "storage node",
    }
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

#[cfg(test)]
mod tests;

#[cfg(test)]
mod sshd_tests;

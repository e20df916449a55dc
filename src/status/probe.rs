//! The status probe of one node: a base command that prints `key=value` lines (CPU counters,
//! memory, disk, and the checks that cannot hang: ports listening, the store in the mount
//! table), and the role checks that can hang (libvirt's answer, the store's answer), each its own
//! command with its own time limit. Whether the node is reached depends on the base command
//! alone: a slow daemon or a store waiting for a storage node is a finding about that node, never
//! a reason to call it down.
//!
//! Daemons are asked through their own sockets and ports, never found by process name: on a
//! machine that runs several lab nodes, a process list shows every node's daemons.

use serde::{Deserialize, Serialize};

use super::{NodeState, Usage};
use crate::nodes::Role;
use crate::storage::layout::STORE;

/// The time limit of each command of a probe, on the node (`timeout`); it is killed a second
/// later if it ignores the stop.
pub const CHECK_LIMIT_S: u32 = 3;

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Ok,
    Failed,
    /// It did not answer within its time limit.
    TimedOut,
}

impl Check {
    /// From a `timeout`-wrapped command's exit status.
    pub fn of_exit(status: u32) -> Check {
        match status {
            0 => Check::Ok,
            124 | 137 => Check::TimedOut,
            _ => Check::Failed,
        }
    }
}

/// One probe's raw answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub cores: u32,
    pub load1: f64,
    pub mem_total_kib: u64,
    pub mem_avail_kib: u64,
    /// Jiffies, all CPUs, since boot: total and idle (idle + iowait).
    pub cpu_total: u64,
    pub cpu_idle: u64,
    pub disk_total: u64,
    pub disk_used: u64,
    /// Role checks: name -> what it found.
    pub checks: Vec<(String, Check)>,
}

/// The base command that probes a node of `role`: nothing in it can wait on another machine.
pub fn probe_command(role: Role) -> String {
    let common = format!(
        "set -u; \
        echo \"cores=$(nproc)\"; \
        echo \"load1=$(cut -d' ' -f1 /proc/loadavg)\"; \
        awk '/^MemTotal:/{{print \"mem_total_kib=\"$2}} /^MemAvailable:/{{print \"mem_avail_kib=\"$2}}' /proc/meminfo; \
        awk '/^cpu /{{t=0; for(i=2;i<=NF;i++) t+=$i; print \"cpu_total=\"t; print \"cpu_idle=\"($5+$6)}}' /proc/stat; \
        timeout -k 1 {CHECK_LIMIT_S} df -P -B1 / | awk 'NR==2{{print \"disk_total=\"$2; print \"disk_used=\"$3}}'; "
    );
    let role_checks = match role {
        // The mount table, not `mountpoint`: asking the mount itself waits as long as the store
        // waits for a storage node.
        Role::Host => format!(
            "if awk -v m={STORE} '$2 == m && $3 ~ /^fuse/ {{f=1}} END {{exit !f}}' /proc/self/mounts; then echo check_store_mounted=ok; else echo check_store_mounted=failed; fi"
        ),
        Role::Storage => "if ss -Hltn 'sport = :24007' | grep -q .; then echo check_glusterd=ok; else echo check_glusterd=failed; fi"
            .to_string(),
    };
    format!("{common}{role_checks}")
}

/// The role checks that may wait on something (a daemon, the store): one command each, run
/// apart from the base command and from each other. Each prints nothing; its exit status is
/// the answer ([`Check::of_exit`]).
pub fn slow_checks(role: Role) -> Vec<(&'static str, String)> {
    match role {
        Role::Host => vec![
            (
                "libvirt",
                format!("timeout -k 1 {CHECK_LIMIT_S} virsh -c qemu:///system -q version >/dev/null 2>&1"),
            ),
            (
                "store",
                format!("timeout -k 1 {CHECK_LIMIT_S} stat -f -c %t {STORE} >/dev/null 2>&1"),
            ),
        ],
        Role::Storage => Vec::new(),
    }
}

/// Parse what [`probe_command`] printed. Unknown keys are ignored (a newer probe may say more).
pub fn parse_probe(text: &str) -> Result<Sample, String> {
    let mut kv = std::collections::BTreeMap::new();
    let mut checks = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        if let Some(name) = k.strip_prefix("check_") {
            let c = match v.trim() {
                "ok" | "1" => Check::Ok,
                "timed_out" => Check::TimedOut,
                _ => Check::Failed,
            };
            checks.push((name.to_string(), c));
        } else {
            kv.insert(k.to_string(), v.trim().to_string());
        }
    }
    fn num<T: std::str::FromStr>(
        kv: &std::collections::BTreeMap<String, String>,
        k: &str,
    ) -> Result<T, String> {
        let v = kv.get(k).ok_or_else(|| format!("no {k}"))?;
        v.parse().map_err(|_| format!("{k} is '{v}', not a number"))
    }
    Ok(Sample {
        cores: num(&kv, "cores")?,
        load1: num(&kv, "load1")?,
        mem_total_kib: num(&kv, "mem_total_kib")?,
        mem_avail_kib: num(&kv, "mem_avail_kib")?,
        cpu_total: num(&kv, "cpu_total")?,
        cpu_idle: num(&kv, "cpu_idle")?,
        disk_total: num(&kv, "disk_total")?,
        disk_used: num(&kv, "disk_used")?,
        checks,
    })
}

/// A node's verdict from its sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub state: NodeState,
    /// One plain sentence a person can act on.
    pub detail: String,
    /// The host's store is mounted but did not answer in time: it waits for a storage node.
    pub store_waiting: bool,
}

impl Sample {
    fn check(&self, name: &str) -> Option<Check> {
        self.checks.iter().find(|(n, _)| n == name).map(|(_, c)| *c)
    }

    /// The node's state from its role checks. `store_waited_too_long` says that this host's
    /// store has been waiting for longer than GlusterFS's own failover takes (decided by the
    /// caller, who knows since when and the volume's ping timeout): only then is a waiting store
    /// a problem of this host.
    pub fn judge(&self, role: Role, store_waited_too_long: Option<u64>) -> Judged {
        let mounted = self.check("store_mounted");
        let store = self.check("store");
        let store_waiting =
            role == Role::Host && mounted == Some(Check::Ok) && store == Some(Check::TimedOut);
        let mut problems: Vec<String> = Vec::new();
        for (name, c) in &self.checks {
            let text = match (name.as_str(), c) {
                (_, Check::Ok) => continue,
                ("libvirt", Check::TimedOut) => format!(
                    "libvirt did not answer within {CHECK_LIMIT_S} s (check `systemctl status libvirtd` on it)"
                ),
                ("libvirt", _) => {
                    "libvirt does not answer (check `systemctl status libvirtd` on it)".into()
                }
                ("store_mounted", _) => {
                    "the VM store is not mounted (check the storage nodes, then `mount` on it)"
                        .into()
                }
                // Not mounted is said once, above.
                ("store", _) if mounted != Some(Check::Ok) => continue,
                ("store", Check::TimedOut) => match store_waited_too_long {
                    Some(s) => format!(
                        "the VM store has not answered for {s} s, longer than GlusterFS takes to go on without a lost storage node (check `gluster volume status` on a storage node)"
                    ),
                    None => continue,
                },
                ("store", _) => {
                    "the VM store is mounted but does not answer (check the storage nodes, then `mount` on it)".into()
                }
                ("glusterd", _) => {
                    "GlusterFS does not answer (check `systemctl status glusterd` on it)".into()
                }
                ("brick", _) => {
                    "its copy of the VM store (brick) is not serving (check `gluster volume status` on it)".into()
                }
                (other, Check::TimedOut) => format!("{other} did not answer in time"),
                (other, _) => format!("{other} failed"),
            };
            problems.push(text);
        }
        if problems.is_empty() {
            let what = match role {
                Role::Host if store_waiting => {
                    "libvirt answers; the VM store is mounted and waits for a storage node"
                }
                Role::Host => "libvirt answers and the VM store is mounted",
                Role::Storage if self.check("brick").is_some() => "GlusterFS and its brick answer",
                Role::Storage => "GlusterFS answers",
            };
            return Judged {
                state: NodeState::Up,
                detail: format!("Up: {what}."),
                store_waiting,
            };
        }
        Judged {
            state: NodeState::Degraded,
            detail: format!("Reached, but {}.", problems.join("; and ")),
            store_waiting,
        }
    }

    /// Resource use, with CPU use measured since `prev` (the same node's previous sample).
    pub fn usage(&self, prev: Option<&Sample>) -> Usage {
        let cpu_percent = prev.and_then(|p| {
            let total = self.cpu_total.checked_sub(p.cpu_total)?;
            let idle = self.cpu_idle.checked_sub(p.cpu_idle)?;
            (total > 0).then(|| {
                let busy = total.saturating_sub(idle) as f64 / total as f64 * 100.0;
                (busy * 10.0).round() / 10.0
            })
        });
        const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
        Usage {
            cores: self.cores,
            cpu_percent,
            load1: self.load1,
            mem_total_mib: self.mem_total_kib / 1024,
            mem_used_mib: self.mem_total_kib.saturating_sub(self.mem_avail_kib) / 1024,
            disk_total_gib: (self.disk_total as f64 / GIB * 10.0).round() / 10.0,
            disk_used_gib: (self.disk_used as f64 / GIB * 10.0).round() / 10.0,
        }
    }
}

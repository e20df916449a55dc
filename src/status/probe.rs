//! The status probe: one short POSIX shell command per node that prints `key=value` lines (CPU
//! counters, memory, disk, and whether the daemons of the node's role answer), and its parser.
//! Daemons are asked through their own sockets and ports, never found by process name: on a
//! machine that runs several lab nodes, a process list shows every node's daemons.

use serde::{Deserialize, Serialize};

use super::{NodeState, Usage};
use crate::nodes::Role;
use crate::provision::setup::STORE;

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
    /// Role checks: name -> answered.
    pub checks: Vec<(String, bool)>,
}

/// The command that probes a node of `role`.
pub fn probe_command(role: Role) -> String {
    let common = "set -u; \
        echo \"cores=$(nproc)\"; \
        echo \"load1=$(cut -d' ' -f1 /proc/loadavg)\"; \
        awk '/^MemTotal:/{print \"mem_total_kib=\"$2} /^MemAvailable:/{print \"mem_avail_kib=\"$2}' /proc/meminfo; \
        awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print \"cpu_total=\"t; print \"cpu_idle=\"($5+$6)}' /proc/stat; \
        df -P -B1 / | awk 'NR==2{print \"disk_total=\"$2; print \"disk_used=\"$3}'; ";
    let role_checks = match role {
        Role::Host => format!(
            "if timeout 5 virsh -c qemu:///system -q version >/dev/null 2>&1; then echo check_libvirt=1; else echo check_libvirt=0; fi; \
             if mountpoint -q {STORE} && timeout 5 stat -f -c %t {STORE} >/dev/null 2>&1; then echo check_store=1; else echo check_store=0; fi"
        ),
        Role::Storage => "if ss -Hltn 'sport = :24007' | grep -q .; then echo check_glusterd=1; else echo check_glusterd=0; fi; \
             if ss -Hltn '( sport >= :49152 and sport <= :60999 )' | grep -q .; then echo check_brick=1; else echo check_brick=0; fi"
            .to_string(),
    };
    format!("{common}{role_checks}")
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
            checks.push((name.to_string(), v.trim() == "1"));
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

impl Sample {
    /// The node's state from its role checks, with a sentence a person can act on.
    pub fn judge(&self, role: Role) -> (NodeState, String) {
        let failed: Vec<&str> = self
            .checks
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(name, _)| name.as_str())
            .collect();
        if failed.is_empty() {
            let what = match role {
                Role::Host => "libvirt answers and the VM store is mounted",
                Role::Storage => "GlusterFS and its brick answer",
            };
            return (NodeState::Up, format!("Up: {what}."));
        }
        let advice: Vec<&str> = failed
            .iter()
            .map(|c| match *c {
                "libvirt" => "libvirt does not answer (check `systemctl status libvirtd` on it)",
                "store" => "the VM store is not mounted or does not answer (check the storage nodes, then `mount` on it)",
                "glusterd" => "GlusterFS does not answer (check `systemctl status glusterd` on it)",
                "brick" => "its copy of the VM store (brick) is not serving (check `gluster volume status` on it)",
                other => other,
            })
            .collect();
        (
            NodeState::Degraded,
            format!("Reached, but {}.", advice.join("; and ")),
        )
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

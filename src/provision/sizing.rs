//! N+1 sizing: can each virtualization host, alone, run every critical VM while the other host is
//! dead? And does each storage node have room for its full copy of every VM disk? Pure
//! arithmetic on what the wizard knows (the hosts' cores and RAM from the preflight checks, the
//! VMs the user wants protected); nothing here touches a machine.
//!
//! The rules, and why:
//! - **Each host alone carries all critical VMs.** With two hosts, "N+1" means any one host may be
//!   down (crash, maintenance), so every host is checked on its own against the whole critical set.
//! - **A reserve for the host itself** ([`SizingParams`]): by default the larger of 2 GiB or 10 % of
//!   its RAM, and 1 core. The host's OS, libvirtd, the GlusterFS client (FUSE, which costs CPU on
//!   every VM disk I/O), the Twofold supervisor and QEMU's own per-VM overhead (device emulation,
//!   page tables, I/O threads: roughly 100-300 MiB per VM beyond its guest RAM) live there; the 10 %
//!   scales that overhead with the size of the host, the 2 GiB floor keeps small hosts from
//!   swapping.
//! - **RAM is never overcommitted.** A host that runs out of RAM swaps or kills a VM (the kernel's
//!   OOM killer picks the largest process, which is a VM); neither is acceptable after a failover.
//! - **vCPUs may be overcommitted** up to [`SizingParams::vcpus_per_core`] (default 4) per core
//!   left after the reserve. Small-business VMs are mostly idle and KVM schedules vCPUs as ordinary
//!   threads, so 4:1 is a common, safe ratio for hardware-accelerated (KVM, not TCG) hosts; use 1
//!   for no overcommit. A single VM never gets more vCPUs than the host has cores: its vCPUs would
//!   then wait on each other (spinlocks in the guest) and the VM would crawl.
//! - **Disks are counted against the shared store, not the hosts.** VM disks live on the
//!   replicated store, and replication keeps a full copy on each storage node, so each storage node
//!   needs the sum of all VM disks (×1, not ×2: its partner holds the other copy on its own disk).
//!   Give the disks' full virtual size: a thin-provisioned image grows up to it.
//!
//! Which critical VMs would not fit is decided greedily by priority (highest first, ties in the
//! order given): the VMs that matter most are placed first, the others are reported with how much
//! RAM and how many vCPUs they lack on that host.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A virtualization host, as the preflight checks found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    pub name: String,
    /// Logical CPUs, as `nproc` counts them.
    pub cores: u32,
    /// Installed RAM in MiB (`MemTotal`).
    pub ram_mib: u64,
    /// Free space on the host's own data path. Shown for information only: VM disks live on the
    /// shared store, see [`StorageSpec`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_disk_gib: Option<u64>,
}

/// A storage node of the replicated VM store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSpec {
    pub name: String,
    /// Free space where the node keeps its copy of the store; unknown if `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_disk_gib: Option<u64>,
}

/// A VM to protect.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmSpec {
    pub name: String,
    pub vcpus: u32,
    pub ram_mib: u64,
    /// Full virtual size of all its disks. 0 is allowed (a VM that boots from the network).
    pub disk_gib: u64,
    /// Higher is more important; decides which critical VMs a too-small host would start first.
    #[serde(default)]
    pub priority: u32,
    /// Must keep running when one host is down.
    #[serde(default)]
    pub critical: bool,
}

/// The numbers behind the rules (see the module documentation for why these defaults).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SizingParams {
    /// vCPUs allowed per core left after the reserve; 1 means no overcommit.
    pub vcpus_per_core: f64,
    /// RAM always kept for the host itself, at least.
    pub host_reserve_ram_mib: u64,
    /// RAM kept for the host itself as a share of its RAM, when that is more than the minimum.
    pub host_reserve_ram_percent: u32,
    /// Cores kept for the host itself.
    pub host_reserve_cores: u32,
}

impl Default for SizingParams {
    fn default() -> Self {
        SizingParams {
            vcpus_per_core: 4.0,
            host_reserve_ram_mib: 2048,
            host_reserve_ram_percent: 10,
            host_reserve_cores: 1,
        }
    }
}

/// Everything [`size`] looks at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizingInput {
    pub hosts: Vec<HostSpec>,
    #[serde(default)]
    pub storage: Vec<StorageSpec>,
    #[serde(default)]
    pub vms: Vec<VmSpec>,
    #[serde(default)]
    pub params: SizingParams,
}

/// RAM of one host against the critical VMs'.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RamFit {
    pub total_mib: u64,
    /// Kept for the host itself.
    pub reserved_mib: u64,
    /// What VMs may use: total minus reserve.
    pub capacity_mib: u64,
    /// Sum of the critical VMs' RAM.
    pub need_mib: u64,
    /// How much is missing (0 when it fits).
    pub short_mib: u64,
    /// What is left for other VMs after the critical ones (0 when short).
    pub spare_mib: u64,
}

/// vCPUs of one host against the critical VMs'.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VcpuFit {
    pub cores: u32,
    /// Kept for the host itself.
    pub reserved_cores: u32,
    pub vcpus_per_core: f64,
    /// vCPUs VMs may have together: (cores - reserve) × vcpus_per_core, rounded down.
    pub capacity: u64,
    /// Sum of the critical VMs' vCPUs.
    pub need: u64,
    /// How many vCPUs too many (0 when it fits).
    pub over: u64,
    /// vCPUs left for other VMs after the critical ones (0 when over).
    pub spare: u64,
}

/// A critical VM that would not start on a host running alone.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmShortfall {
    pub vm: String,
    pub priority: u32,
    /// RAM missing for this VM once the more important ones run (0 if RAM is not the problem).
    pub ram_mib_short: u64,
    /// vCPUs over the host's capacity once the more important ones run (0 if not the problem).
    pub vcpus_over: u64,
    /// The VM has more vCPUs than the host has cores.
    pub wider_than_host: bool,
}

/// Whether one host, alone, can run every critical VM.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostVerdict {
    pub host: String,
    pub fits: bool,
    pub ram: RamFit,
    pub vcpus: VcpuFit,
    /// Critical VMs this host could not start, most important first. Empty when it fits.
    pub not_fitting: Vec<VmShortfall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_disk_gib: Option<u64>,
}

/// One storage node's room for its copy of the store.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreNodeFit {
    pub node: String,
    pub free_gib: Option<u64>,
    /// `None` when the free space is unknown.
    pub fits: Option<bool>,
    pub short_gib: u64,
}

/// The shared store's need, and each storage node's room for it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreVerdict {
    /// Sum of all VMs' disks: what each storage node must hold.
    pub need_gib: u64,
    pub nodes: Vec<StoreNodeFit>,
    /// `None` when no storage node's free space is known.
    pub fits: Option<bool>,
}

/// Stable identifiers of problems, for the app to branch on.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// A host alone lacks RAM for the critical VMs.
    RamShort,
    /// A host alone lacks vCPUs for the critical VMs.
    VcpusOver,
    /// A critical VM has more vCPUs than a host has cores.
    VmWiderThanHost,
    /// Even with both hosts up, all VMs together do not fit.
    AllVmsShort,
    /// A storage node lacks room for its copy of all VM disks.
    StoreShort,
}

/// One problem, with a sentence that says what is wrong and what to do.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub code: ProblemCode,
    /// The host, storage node or VM concerned ("all" for the platform as a whole).
    pub subject: String,
    pub message: String,
}

/// The result of [`size`].
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizingReport {
    /// No problems: every host can carry all critical VMs alone and the store has room.
    pub ok: bool,
    pub params: SizingParams,
    /// In the order the hosts were given.
    pub hosts: Vec<HostVerdict>,
    pub store: StoreVerdict,
    pub problems: Vec<Problem>,
    /// Things worth knowing that are not problems (no critical VMs, unknown free space, ...).
    pub notes: Vec<String>,
}

/// Check the input, then size every host and the store. Bad input (a VM with 0 vCPUs, two VMs
/// of the same name, ...) is an [`Error::InvalidInput`] that lists everything to fix.
pub fn size(input: &SizingInput) -> Result<SizingReport> {
    validate(input)?;
    let p = &input.params;

    // Most important first; the sort is stable, so equal priorities keep the order given.
    let mut critical: Vec<&VmSpec> = input.vms.iter().filter(|v| v.critical).collect();
    critical.sort_by_key(|v| std::cmp::Reverse(v.priority));

    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let hosts: Vec<HostVerdict> = input
        .hosts
        .iter()
        .map(|h| size_host(h, &critical, p, &mut problems))
        .collect();

    all_vms_fit(input, &hosts, &mut problems);
    let store = size_store(input, &mut problems, &mut notes);

    if input.vms.is_empty() {
        notes.push("No VMs given, so there is nothing to size yet; add the VMs to protect.".into());
    } else if critical.is_empty() {
        notes.push(
            "No VM is marked critical, so no room is kept for failover: when a host dies, its VMs restart on the other host only if there is room. Mark the VMs the business cannot be without as critical."
                .into(),
        );
    } else {
        let others = input.vms.len() - critical.len();
        if others > 0 {
            notes.push(format!(
                "{others} VM{s} not marked critical: after a host failure {they} restart{s2} on the survivor only if room is left after the critical VMs (see each host's spare RAM and vCPUs).",
                s = if others == 1 { " is" } else { "s are" },
                they = if others == 1 { "it" } else { "they" },
                s2 = if others == 1 { "s" } else { "" },
            ));
        }
    }

    Ok(SizingReport {
        ok: problems.is_empty(),
        params: p.clone(),
        hosts,
        store,
        problems,
        notes,
    })
}

fn validate(input: &SizingInput) -> Result<()> {
    let mut errs: Vec<String> = Vec::new();
    let p = &input.params;
    if !(p.vcpus_per_core.is_finite() && (1.0..=16.0).contains(&p.vcpus_per_core)) {
        errs.push(format!(
            "vcpus_per_core is {}; give a number from 1 (no overcommit) to 16 (4 is a safe default)",
            p.vcpus_per_core
        ));
    }
    if p.host_reserve_ram_percent > 50 {
        errs.push(format!(
            "host_reserve_ram_percent is {}; keep it at 50 or less (10 is the default)",
            p.host_reserve_ram_percent
        ));
    }

    if input.hosts.is_empty() {
        errs.push(
            "no hosts given; list the virtualization hosts (two for N+1) with their cores and RAM"
                .into(),
        );
    }
    let mut names = HashSet::new();
    for h in &input.hosts {
        if h.name.trim().is_empty() {
            errs.push("a host has no name; give each host its name (like host1)".into());
            continue;
        }
        if !names.insert(h.name.as_str()) {
            errs.push(format!(
                "host '{}' is listed twice; list each host once",
                h.name
            ));
        }
        if h.cores == 0 {
            errs.push(format!(
                "host '{}' has 0 cores; give its number of CPU cores as `nproc` prints it",
                h.name
            ));
        }
        if h.ram_mib == 0 {
            errs.push(format!(
                "host '{}' has 0 MiB of RAM; give its memory in MiB (32768 for 32 GiB)",
                h.name
            ));
        }
    }

    let mut names = HashSet::new();
    for s in &input.storage {
        if s.name.trim().is_empty() {
            errs.push("a storage node has no name; give each its name (like stor1)".into());
        } else if !names.insert(s.name.as_str()) {
            errs.push(format!(
                "storage node '{}' is listed twice; list each storage node once",
                s.name
            ));
        }
    }

    let mut names = HashSet::new();
    for v in &input.vms {
        if v.name.trim().is_empty() {
            errs.push("a VM has no name; give each VM its name as libvirt knows it".into());
            continue;
        }
        if !names.insert(v.name.as_str()) {
            errs.push(format!(
                "VM '{}' is listed twice; every VM needs its own name (rename one, or remove the duplicate)",
                v.name
            ));
        }
        if v.vcpus == 0 {
            errs.push(format!(
                "VM '{}' has 0 vCPUs; a VM needs at least 1",
                v.name
            ));
        }
        if v.ram_mib == 0 {
            errs.push(format!(
                "VM '{}' has 0 MiB of RAM; give its memory in MiB (4096 for 4 GiB)",
                v.name
            ));
        }
    }

    if errs.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "cannot size the platform: {}",
            errs.join("; ")
        )))
    }
}

/// RAM kept for the host itself: the larger of the floor and the percentage, never more than
/// the host has.
pub fn host_reserve_ram_mib(ram_mib: u64, p: &SizingParams) -> u64 {
    let share = ram_mib / 100 * u64::from(p.host_reserve_ram_percent)
        + ram_mib % 100 * u64::from(p.host_reserve_ram_percent) / 100;
    share.max(p.host_reserve_ram_mib).min(ram_mib)
}

/// vCPUs VMs may have together on a host with `cores`.
pub fn vcpu_capacity(cores: u32, p: &SizingParams) -> u64 {
    let usable = cores.saturating_sub(p.host_reserve_cores);
    // Small integers times a ratio in [1, 16]: exact enough in f64; the epsilon keeps 3 × 1.1
    // from becoming 3.2999... and losing a vCPU.
    (f64::from(usable) * p.vcpus_per_core + 1e-9).floor() as u64
}

fn size_host(
    h: &HostSpec,
    critical: &[&VmSpec],
    p: &SizingParams,
    problems: &mut Vec<Problem>,
) -> HostVerdict {
    let reserved_mib = host_reserve_ram_mib(h.ram_mib, p);
    let capacity_mib = h.ram_mib - reserved_mib;
    let reserved_cores = p.host_reserve_cores.min(h.cores);
    let capacity_vcpus = vcpu_capacity(h.cores, p);

    let need_mib: u64 = critical
        .iter()
        .map(|v| v.ram_mib)
        .fold(0, u64::saturating_add);
    let need_vcpus: u64 = critical.iter().map(|v| u64::from(v.vcpus)).sum();

    let mut left_mib = capacity_mib;
    let mut left_vcpus = capacity_vcpus;
    let mut not_fitting = Vec::new();
    for v in critical {
        let vcpus = u64::from(v.vcpus);
        let wider = v.vcpus > h.cores;
        if v.ram_mib <= left_mib && vcpus <= left_vcpus && !wider {
            left_mib -= v.ram_mib;
            left_vcpus -= vcpus;
        } else {
            not_fitting.push(VmShortfall {
                vm: v.name.clone(),
                priority: v.priority,
                ram_mib_short: v.ram_mib.saturating_sub(left_mib),
                vcpus_over: vcpus.saturating_sub(left_vcpus),
                wider_than_host: wider,
            });
        }
    }

    let ram = RamFit {
        total_mib: h.ram_mib,
        reserved_mib,
        capacity_mib,
        need_mib,
        short_mib: need_mib.saturating_sub(capacity_mib),
        spare_mib: capacity_mib.saturating_sub(need_mib),
    };
    let vcpus = VcpuFit {
        cores: h.cores,
        reserved_cores,
        vcpus_per_core: p.vcpus_per_core,
        capacity: capacity_vcpus,
        need: need_vcpus,
        over: need_vcpus.saturating_sub(capacity_vcpus),
        spare: capacity_vcpus.saturating_sub(need_vcpus),
    };

    let left_out = |pred: fn(&VmShortfall) -> bool| -> String {
        let names: Vec<&str> = not_fitting
            .iter()
            .filter(|s| pred(s))
            .map(|s| s.vm.as_str())
            .collect();
        if names.is_empty() {
            String::new()
        } else {
            format!(
                " Running alone, {} could not start: {}.",
                h.name,
                names.join(", ")
            )
        }
    };
    if ram.short_mib > 0 {
        problems.push(Problem {
            code: ProblemCode::RamShort,
            subject: h.name.clone(),
            message: format!(
                "{host} has {cap} of RAM for VMs ({total}, less {res} kept for the host itself); the critical VMs need {need}: {short} short. Add RAM to {host} or mark fewer VMs critical.{out}",
                host = h.name,
                cap = mib(capacity_mib),
                total = mib(h.ram_mib),
                res = mib(reserved_mib),
                need = mib(need_mib),
                short = mib(ram.short_mib),
                out = left_out(|s| s.ram_mib_short > 0),
            ),
        });
    }
    if vcpus.over > 0 {
        problems.push(Problem {
            code: ProblemCode::VcpusOver,
            subject: h.name.clone(),
            message: format!(
                "{host} can give VMs {cap} vCPU{cs} ({usable} of its {cores} core{cores_s}, {res} kept for the host itself, × {ratio} vCPUs per core); the critical VMs have {need} vCPUs: {over} too many. Give those VMs fewer vCPUs, put a CPU with more cores in {host}, or mark fewer VMs critical.{out}",
                host = h.name,
                cap = capacity_vcpus,
                cs = plural(capacity_vcpus),
                usable = h.cores - reserved_cores,
                cores = h.cores,
                cores_s = plural(u64::from(h.cores)),
                res = reserved_cores,
                ratio = p.vcpus_per_core,
                need = need_vcpus,
                over = vcpus.over,
                out = left_out(|s| s.vcpus_over > 0),
            ),
        });
    }
    for v in critical.iter().filter(|v| v.vcpus > h.cores) {
        problems.push(Problem {
            code: ProblemCode::VmWiderThanHost,
            subject: h.name.clone(),
            message: format!(
                "VM '{vm}' has {n} vCPUs but {host} has only {cores} core{s}; a VM with more vCPUs than its host has cores runs very slowly there. Give '{vm}' at most {cores} vCPU{s}, or put a CPU with more cores in {host}.",
                vm = v.name,
                n = v.vcpus,
                host = h.name,
                cores = h.cores,
                s = plural(u64::from(h.cores)),
            ),
        });
    }

    HostVerdict {
        host: h.name.clone(),
        fits: not_fitting.is_empty(),
        ram,
        vcpus,
        not_fitting,
        free_disk_gib: h.free_disk_gib,
    }
}

/// With every host up, all VMs (critical or not) must at least fit the hosts' capacity together.
/// Sums only: a VM cannot be split across hosts, so this is a lower bound on what is needed.
fn all_vms_fit(input: &SizingInput, hosts: &[HostVerdict], problems: &mut Vec<Problem>) {
    if hosts.len() < 2 || input.vms.is_empty() {
        return; // with one host, the per-host check already covers it (for critical VMs)
    }
    let cap_mib: u64 = hosts.iter().map(|h| h.ram.capacity_mib).sum();
    let need_mib: u64 = input
        .vms
        .iter()
        .map(|v| v.ram_mib)
        .fold(0, u64::saturating_add);
    let cap_vcpus: u64 = hosts.iter().map(|h| h.vcpus.capacity).sum();
    let need_vcpus: u64 = input.vms.iter().map(|v| u64::from(v.vcpus)).sum();
    if need_mib > cap_mib {
        problems.push(Problem {
            code: ProblemCode::AllVmsShort,
            subject: "all".into(),
            message: format!(
                "Even with all hosts up, the VMs need {need} of RAM but the hosts have {cap} for VMs together: {short} short, so some VMs could not run at all. Add RAM to the hosts or protect fewer VMs.",
                need = mib(need_mib),
                cap = mib(cap_mib),
                short = mib(need_mib - cap_mib),
            ),
        });
    }
    if need_vcpus > cap_vcpus {
        problems.push(Problem {
            code: ProblemCode::AllVmsShort,
            subject: "all".into(),
            message: format!(
                "Even with all hosts up, the VMs have {need_vcpus} vCPUs but the hosts can give VMs {cap_vcpus} together: {} too many. Give VMs fewer vCPUs, add cores to the hosts, or protect fewer VMs.",
                need_vcpus - cap_vcpus
            ),
        });
    }
}

fn size_store(
    input: &SizingInput,
    problems: &mut Vec<Problem>,
    notes: &mut Vec<String>,
) -> StoreVerdict {
    let need_gib: u64 = input
        .vms
        .iter()
        .map(|v| v.disk_gib)
        .fold(0, u64::saturating_add);
    let nodes: Vec<StoreNodeFit> = input
        .storage
        .iter()
        .map(|s| {
            let short = s.free_disk_gib.map_or(0, |f| need_gib.saturating_sub(f));
            StoreNodeFit {
                node: s.name.clone(),
                free_gib: s.free_disk_gib,
                fits: s.free_disk_gib.map(|_| short == 0),
                short_gib: short,
            }
        })
        .collect();
    for n in &nodes {
        match (n.fits, n.free_gib) {
            (Some(false), Some(free)) => problems.push(Problem {
                code: ProblemCode::StoreShort,
                subject: n.node.clone(),
                message: format!(
                    "{node} has {free} GiB free for the VM store; the VMs' disks need {need_gib} GiB there (each storage node holds a full copy of every disk): {short} GiB short. Give {node} a bigger disk, or protect fewer or smaller VMs.",
                    node = n.node,
                    short = n.short_gib,
                ),
            }),
            (None, _) => notes.push(format!(
                "The free space of storage node {} is unknown; it must hold {need_gib} GiB (a full copy of every VM disk).",
                n.node
            )),
            _ => {}
        }
    }
    let known: Vec<bool> = nodes.iter().filter_map(|n| n.fits).collect();
    let fits = if known.is_empty() {
        None
    } else {
        Some(known.iter().all(|f| *f))
    };
    StoreVerdict {
        need_gib,
        nodes,
        fits,
    }
}

/// MiB for people: "512 MiB", "16 GiB", "15.5 GiB".
pub(crate) fn mib(v: u64) -> String {
    if v < 1024 {
        format!("{v} MiB")
    } else if v.is_multiple_of(1024) {
        format!("{} GiB", v / 1024)
    } else {
        let s = format!("{:.1}", v as f64 / 1024.0);
        format!("{} GiB", s.strip_suffix(".0").unwrap_or(&s))
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, cores: u32, ram_gib: u64) -> HostSpec {
        HostSpec {
            name: name.into(),
            cores,
            ram_mib: ram_gib * 1024,
            free_disk_gib: None,
        }
    }

    fn vm(name: &str, vcpus: u32, ram_gib: u64, priority: u32, critical: bool) -> VmSpec {
        VmSpec {
            name: name.into(),
            vcpus,
            ram_mib: ram_gib * 1024,
            disk_gib: 50,
            priority,
            critical,
        }
    }

    fn input(hosts: Vec<HostSpec>, vms: Vec<VmSpec>) -> SizingInput {
        SizingInput {
            hosts,
            storage: vec![],
            vms,
            params: SizingParams::default(),
        }
    }

    fn invalid(i: &SizingInput) -> String {
        match size(i) {
            Err(e @ Error::InvalidInput(_)) => {
                assert_eq!(e.code(), "invalid_input");
                e.to_string()
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn reserve_is_2_gib_or_10_percent() {
        let p = SizingParams::default();
        assert_eq!(host_reserve_ram_mib(16 * 1024, &p), 2048); // 10 % = 1.6 GiB < 2 GiB
        assert_eq!(host_reserve_ram_mib(64 * 1024, &p), 6553); // 10 % of 65536, rounded down
        assert_eq!(host_reserve_ram_mib(1024, &p), 1024); // never more than the host has
        assert_eq!(vcpu_capacity(8, &p), 28); // (8 - 1) × 4
        assert_eq!(vcpu_capacity(1, &p), 0);
        let p11 = SizingParams {
            vcpus_per_core: 1.1,
            ..p
        };
        assert_eq!(vcpu_capacity(11, &p11), 11); // 10 × 1.1, not 10.999...
    }

    #[test]
    fn no_vms_fits_with_a_note() {
        let r = size(&input(
            vec![host("host1", 8, 32), host("host2", 8, 32)],
            vec![],
        ))
        .unwrap();
        assert!(r.ok);
        assert!(r.hosts.iter().all(|h| h.fits && h.not_fitting.is_empty()));
        assert_eq!(r.hosts[0].ram.capacity_mib, 32 * 1024 - 3276);
        assert_eq!(r.hosts[0].ram.need_mib, 0);
        assert_eq!(r.store.need_gib, 0);
        assert_eq!(r.store.fits, None);
        assert!(r.notes[0].contains("No VMs"));
    }

    #[test]
    fn no_critical_vms_keeps_nothing_for_failover() {
        let r = size(&input(
            vec![host("host1", 4, 16), host("host2", 4, 16)],
            vec![vm("web", 2, 4, 0, false), vm("files", 2, 4, 0, false)],
        ))
        .unwrap();
        assert!(r.ok, "{:?}", r.problems);
        assert_eq!(r.hosts[1].ram.need_mib, 0);
        assert_eq!(r.hosts[1].vcpus.spare, 12);
        assert!(r
            .notes
            .iter()
            .any(|n| n.contains("No VM is marked critical")));
    }

    #[test]
    fn exact_fit_passes() {
        // 18 GiB: reserve max(2 GiB, 1.8 GiB) = 2 GiB, 16 GiB for VMs; 4 cores: 3 × 4 = 12 vCPUs.
        let r = size(&input(
            vec![host("host1", 4, 18), host("host2", 4, 18)],
            vec![
                vm("db", 4, 10, 10, true),
                vm("mail", 4, 4, 5, true),
                vm("dc", 4, 2, 1, true),
            ],
        ))
        .unwrap();
        assert!(r.ok, "{:?}", r.problems);
        for h in &r.hosts {
            assert!(h.fits);
            assert_eq!((h.ram.capacity_mib, h.ram.need_mib), (16 * 1024, 16 * 1024));
            assert_eq!((h.ram.short_mib, h.ram.spare_mib), (0, 0));
            assert_eq!((h.vcpus.capacity, h.vcpus.need, h.vcpus.over), (12, 12, 0));
        }
        assert!(r.notes.is_empty(), "{:?}", r.notes);
    }

    #[test]
    fn smaller_host_is_short_with_a_plain_sentence() {
        let r = size(&input(
            vec![host("host1", 8, 64), host("host2", 4, 18)],
            vec![
                vm("db", 4, 12, 10, true),
                vm("mail", 2, 8, 5, true),
                vm("web", 2, 2, 1, false),
            ],
        ))
        .unwrap();
        assert!(!r.ok);
        assert!(r.hosts[0].fits);
        let h2 = &r.hosts[1];
        assert!(!h2.fits);
        assert_eq!(h2.ram.capacity_mib, 16 * 1024);
        assert_eq!(h2.ram.need_mib, 20 * 1024);
        assert_eq!(h2.ram.short_mib, 4 * 1024);
        // db (priority 10) goes first and fits; mail lacks 4 GiB.
        assert_eq!(
            h2.not_fitting,
            vec![VmShortfall {
                vm: "mail".into(),
                priority: 5,
                ram_mib_short: 4 * 1024,
                vcpus_over: 0,
                wider_than_host: false,
            }]
        );
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        let p = &r.problems[0];
        assert_eq!(
            (p.code, p.subject.as_str()),
            (ProblemCode::RamShort, "host2")
        );
        assert!(
            p.message.starts_with(
                "host2 has 16 GiB of RAM for VMs (18 GiB, less 2 GiB kept for the host itself); the critical VMs need 20 GiB: 4 GiB short. Add RAM to host2 or mark fewer VMs critical."
            ),
            "{}",
            p.message
        );
        assert!(p
            .message
            .ends_with("Running alone, host2 could not start: mail."));
        assert!(r
            .notes
            .iter()
            .any(|n| n.contains("1 VM is not marked critical")));
    }

    #[test]
    fn greedy_by_priority_then_skips_to_smaller_vms() {
        // 16 GiB for VMs. Priorities: big (9, 10 GiB) fits, huge (8, 8 GiB) does not, small (1, 4
        // GiB) still does.
        let r = size(&input(
            vec![host("h", 16, 18)],
            vec![
                vm("small", 1, 4, 1, true),
                vm("huge", 1, 8, 8, true),
                vm("big", 1, 10, 9, true),
            ],
        ))
        .unwrap();
        let h = &r.hosts[0];
        assert_eq!(h.not_fitting.len(), 1);
        assert_eq!(h.not_fitting[0].vm, "huge");
        assert_eq!(h.not_fitting[0].ram_mib_short, 2 * 1024);
        assert_eq!(h.ram.short_mib, 6 * 1024);
    }

    #[test]
    fn equal_priorities_keep_the_given_order() {
        let r = size(&input(
            vec![host("h", 16, 10)],
            vec![vm("a", 1, 6, 0, true), vm("b", 1, 6, 0, true)],
        ))
        .unwrap();
        assert_eq!(r.hosts[0].not_fitting[0].vm, "b");
    }

    #[test]
    fn vcpus_over_and_vm_wider_than_host() {
        let r = size(&input(
            vec![host("host1", 4, 64)],
            vec![
                vm("db", 8, 4, 5, true),
                vm("app", 4, 4, 4, true),
                vm("web", 3, 4, 3, true),
            ],
        ))
        .unwrap();
        let h = &r.hosts[0];
        assert_eq!((h.vcpus.capacity, h.vcpus.need, h.vcpus.over), (12, 15, 3));
        // db is wider than the host (8 vCPUs, 4 cores): left out; app and web then fit.
        assert_eq!(h.not_fitting.len(), 1);
        assert!(h.not_fitting[0].wider_than_host);
        assert_eq!(h.not_fitting[0].vcpus_over, 0);
        let codes: Vec<ProblemCode> = r.problems.iter().map(|p| p.code).collect();
        assert_eq!(
            codes,
            vec![ProblemCode::VcpusOver, ProblemCode::VmWiderThanHost]
        );
        assert!(r.problems[0].message.contains("can give VMs 12 vCPUs (3 of its 4 cores, 1 kept for the host itself, × 4 vCPUs per core); the critical VMs have 15 vCPUs: 3 too many"), "{}", r.problems[0].message);
        assert!(r.problems[1].message.contains("Give 'db' at most 4 vCPUs"));
    }

    #[test]
    fn overcommit_ratio_is_a_parameter() {
        let mut i = input(vec![host("h", 4, 64)], vec![vm("a", 4, 4, 0, true)]);
        i.params.vcpus_per_core = 1.0;
        let r = size(&i).unwrap();
        assert_eq!(r.hosts[0].vcpus.capacity, 3);
        assert!(!r.ok);
        i.params.vcpus_per_core = 2.0;
        assert!(size(&i).unwrap().ok);
    }

    #[test]
    fn single_core_host_has_nothing_for_vms() {
        let r = size(&input(
            vec![host("tiny", 1, 8)],
            vec![vm("a", 1, 1, 0, true)],
        ))
        .unwrap();
        assert_eq!(r.hosts[0].vcpus.capacity, 0);
        assert_eq!(r.hosts[0].vcpus.over, 1);
        assert!(r.problems[0]
            .message
            .contains("can give VMs 0 vCPUs (0 of its 1 core, 1 kept"));
    }

    #[test]
    fn all_vms_together_must_fit_both_hosts() {
        let r = size(&input(
            vec![host("host1", 8, 18), host("host2", 8, 18)],
            vec![
                vm("a", 1, 12, 0, false),
                vm("b", 1, 12, 0, false),
                vm("c", 1, 12, 0, false),
            ],
        ))
        .unwrap();
        assert!(!r.ok);
        assert_eq!(r.problems.len(), 1);
        assert_eq!(r.problems[0].code, ProblemCode::AllVmsShort);
        assert!(r.problems[0].message.contains(
            "need 36 GiB of RAM but the hosts have 32 GiB for VMs together: 4 GiB short"
        ));
    }

    #[test]
    fn store_needs_one_full_copy_per_storage_node() {
        let mut i = input(
            vec![host("host1", 8, 64), host("host2", 8, 64)],
            vec![vm("a", 1, 1, 0, true), vm("b", 1, 1, 0, false)],
        );
        i.storage = vec![
            StorageSpec {
                name: "stor1".into(),
                free_disk_gib: Some(100),
            },
            StorageSpec {
                name: "stor2".into(),
                free_disk_gib: Some(80),
            },
            StorageSpec {
                name: "stor3".into(),
                free_disk_gib: None,
            },
        ];
        let r = size(&i).unwrap();
        assert_eq!(r.store.need_gib, 100);
        assert_eq!(r.store.nodes[0].fits, Some(true)); // exact fit
        assert_eq!(r.store.nodes[1].fits, Some(false));
        assert_eq!(r.store.nodes[1].short_gib, 20);
        assert_eq!(r.store.nodes[2].fits, None);
        assert_eq!(r.store.fits, Some(false));
        assert!(!r.ok);
        let p = r
            .problems
            .iter()
            .find(|p| p.code == ProblemCode::StoreShort)
            .unwrap();
        assert_eq!(p.subject, "stor2");
        assert!(p
            .message
            .contains("stor2 has 80 GiB free for the VM store; the VMs' disks need 100 GiB there"));
        assert!(r.notes.iter().any(|n| n.contains("stor3 is unknown")));
    }

    #[test]
    fn invalid_input_says_what_to_fix() {
        let e = invalid(&input(vec![], vec![]));
        assert!(e.contains("no hosts given"), "{e}");

        let e = invalid(&input(
            vec![host("host1", 4, 16)],
            vec![vm("db", 0, 4, 0, true)],
        ));
        assert!(
            e.contains("VM 'db' has 0 vCPUs; a VM needs at least 1"),
            "{e}"
        );

        let e = invalid(&input(
            vec![host("host1", 4, 16)],
            vec![vm("db", 1, 4, 0, true), vm("db", 2, 4, 0, false)],
        ));
        assert!(e.contains("VM 'db' is listed twice"), "{e}");

        // Every mistake at once, so the user fixes the form in one go.
        let mut bad_vm = vm("x", 1, 0, 0, false);
        bad_vm.ram_mib = 0;
        let e = invalid(&input(
            vec![host("host1", 0, 16), host("host1", 4, 0), host(" ", 1, 1)],
            vec![bad_vm],
        ));
        for want in [
            "host 'host1' has 0 cores",
            "host 'host1' is listed twice",
            "host 'host1' has 0 MiB of RAM",
            "a host has no name",
            "VM 'x' has 0 MiB of RAM",
        ] {
            assert!(e.contains(want), "missing {want:?} in {e}");
        }

        let mut i = input(vec![host("h", 4, 16)], vec![]);
        i.params.vcpus_per_core = 0.0;
        assert!(invalid(&i).contains("vcpus_per_core is 0"));
        i.params.vcpus_per_core = f64::NAN;
        assert!(invalid(&i).contains("vcpus_per_core"));

        let mut i = input(vec![host("h", 4, 16)], vec![]);
        i.storage = vec![
            StorageSpec {
                name: "s".into(),
                free_disk_gib: None,
            };
            2
        ];
        assert!(invalid(&i).contains("storage node 's' is listed twice"));
    }

    #[test]
    fn serde_round_trip_for_the_app() {
        let json = r#"{"hosts":[{"name":"host1","cores":4,"ram_mib":18432}],
            "vms":[{"name":"db","vcpus":2,"ram_mib":4096,"disk_gib":40,"critical":true}]}"#;
        let i: SizingInput = serde_json::from_str(json).unwrap();
        assert_eq!(i.params, SizingParams::default());
        assert_eq!(i.vms[0].priority, 0);
        let r = size(&i).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["ok"], true);
        assert_eq!(v["hosts"][0]["ram"]["need_mib"], 4096);
        assert_eq!(v["store"]["need_gib"], 40);
        let back: SizingReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        // A misspelt field is an error, not silently ignored.
        assert!(serde_json::from_str::<SizingInput>(r#"{"hosts":[],"vm":[]}"#).is_err());

        let p = Problem {
            code: ProblemCode::RamShort,
            subject: "h".into(),
            message: "m".into(),
        };
        assert_eq!(serde_json::to_value(&p).unwrap()["code"], "ram_short");
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(mib(512), "512 MiB");
        assert_eq!(mib(16 * 1024), "16 GiB");
        assert_eq!(mib(15 * 1024 + 512), "15.5 GiB");
        assert_eq!(mib(16 * 1024 - 1), "16 GiB");
    }
}

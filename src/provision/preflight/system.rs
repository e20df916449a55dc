//! The checks of the machine itself: operating system, CPU cores, RAM and free disk space where
//! the node will keep its data.

use super::{first_line, noun, remote, shell_quote, Judgement};
use super::{NodeFacts, PreflightOptions, RoleLimits};
use crate::node::Session;
use crate::nodes::{NodeSpec, Role};
use crate::provision::sizing::mib;

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

pub(super) fn unquote(v: &str) -> String {
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

pub(super) fn judge_os(os: &OsRelease) -> Judgement {
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

pub(super) async fn probe_os(
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
// cores

pub(super) fn judge_cores(cores: u32, role: Role, l: &RoleLimits) -> Judgement {
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

pub(super) async fn probe_cores(
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

pub(super) fn judge_ram(ram_mib: u64, role: Role, l: &RoleLimits) -> Judgement {
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

pub(super) async fn probe_ram(
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
pub(super) fn disk_command(path: &str) -> String {
    format!(
        "p={}; while [ ! -e \"$p\" ]; do p=$(dirname \"$p\"); done; echo \"$p\"; df -Pk \"$p\"",
        shell_quote(path)
    )
}

pub(super) fn judge_disk(
    path: &str,
    existing: &str,
    df: &DfLine,
    role: Role,
    l: &RoleLimits,
) -> Judgement {
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

pub(super) async fn probe_disk(
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

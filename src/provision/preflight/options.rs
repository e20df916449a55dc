//! What the checks look for: the least and recommended resources per role, the packages, the
//! clock and latency thresholds and the time limits, with their documented defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::packages::valid_package_name;
use crate::error::{Error, Result};
use crate::nodes::Role;

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

    pub(super) fn data_path(&self, role: Role) -> &str {
        match role {
            Role::Host => &self.host_data_path,
            Role::Storage => &self.storage_data_path,
        }
    }

    pub(super) fn limits(&self, role: Role) -> &RoleLimits {
        match role {
            Role::Host => &self.host_limits,
            Role::Storage => &self.storage_limits,
        }
    }

    pub(super) fn packages(&self, role: Role) -> &[String] {
        match role {
            Role::Host => &self.host_packages,
            Role::Storage => &self.storage_packages,
        }
    }

    pub(super) fn command_timeout(&self) -> Duration {
        Duration::from_secs(self.command_timeout_secs)
    }
}

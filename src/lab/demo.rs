//! The lab's demo guest: kernel and initramfs built from Debian packages, a qcow2 disk on the
//! replicated store, defined and started on host1 (unless it already runs on either host).

use std::path::PathBuf;

use super::guest::{self, DomainType, GuestAssets, GuestSpec};
use super::{console_addr, Lab, DEMO_VM, STORE_MOUNT};
use crate::error::{Error, Result};
use crate::hypervisor::HostConn;
use crate::progress::Progress;

/// The demo guest's disk: 64 MiB hold about 131,000 records, nearly two hours of writing.
const DISK_MIB: u64 = 64;

pub fn ensure(
    lab: &Lab,
    assets: &GuestAssets,
    domain_type: DomainType,
    progress: &dyn Progress,
) -> Result<()> {
    let disk = PathBuf::from(format!("{STORE_MOUNT}/{DEMO_VM}.qcow2"));
    let disk_s = disk.to_string_lossy().to_string();
    if lab.exec_output("host1", &["test", "-e", &disk_s]).is_err() {
        let cmd = guest::create_disk_command(&disk, DISK_MIB);
        let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
        lab.exec_output("host1", &refs)?;
    }

    let targets = lab.host_targets()?;
    let mut conns = Vec::new();
    for t in &targets {
        conns.push(HostConn::open_blocking(t)?);
    }
    for c in &conns {
        if let Some(d) = c.domain_blocking(DEMO_VM)? {
            if !d.state.is_migratable() {
                c.start_blocking(DEMO_VM)?;
                progress.message(&format!("started {DEMO_VM} on {}", c.host()));
            }
            return Ok(());
        }
    }
    let host1 = conns
        .first()
        .ok_or_else(|| Error::Lab("the lab has no host".into()))?;
    let spec = GuestSpec::new(DEMO_VM, assets, &disk, console_addr(), domain_type);
    host1.define_blocking(&guest::domain_xml(&spec))?;
    host1.start_blocking(DEMO_VM)?;
    progress.message(&format!(
        "demo guest '{DEMO_VM}' started on host1 (domain type {domain_type}, disk on the replicated store)"
    ));
    Ok(())
}

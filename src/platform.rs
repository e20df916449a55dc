//! The platform as the inventory knows it: which hosts there are and how to reach their libvirt,
//! with every host key pinned from the inventory (never trust-on-use at connect time).

use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::hypervisor::HostTarget;
use crate::inventory::Inventory;
use crate::nodes::{NodeSpec, Role};

/// Write a known_hosts file from the host keys pinned in the inventory, next to the inventory.
pub fn write_known_hosts(inv: &Inventory) -> Result<PathBuf> {
    let dir = inv
        .path()
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let path = dir.join("known_hosts");
    let mut text = String::new();
    for n in inv.nodes()? {
        if let Some(k) = &n.host_key {
            let host = if n.ssh_port == 22 {
                n.address.clone()
            } else {
                format!("[{}]:{}", n.address, n.ssh_port)
            };
            text.push_str(&format!("{host} {k}\n"));
        }
    }
    std::fs::write(&path, text).ctx(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The hosts of the platform, ready to connect to.
pub fn host_targets(inv: &Inventory) -> Result<Vec<HostTarget>> {
    let known = write_known_hosts(inv)?;
    let hosts: Vec<HostTarget> = inv
        .nodes()?
        .iter()
        .filter(|n| n.role == Role::Host)
        .map(|n| host_target(n, &known))
        .collect();
    if hosts.is_empty() {
        return Err(Error::InvalidInput(format!(
            "the inventory {} lists no hosts; bring the lab up (`twofold lab up`) or provision the platform first",
            inv.path().display()
        )));
    }
    Ok(hosts)
}

/// How Twofold (`uri`) and the other hosts (`peer_uri`, run inside a host) reach a host's libvirt.
pub fn host_target(n: &NodeSpec, known_hosts: &Path) -> HostTarget {
    // Inside a host, root's own key and known_hosts (made by the lab or by setup) let its
    // libvirtd reach the other host for peer-to-peer migration.
    let mut peer = n.clone();
    peer.key = Some(PathBuf::from("/root/.ssh/id_ed25519"));
    HostTarget {
        name: n.name.clone(),
        uri: n.libvirt_uri(Some(known_hosts)),
        peer_uri: peer.libvirt_uri(Some(Path::new("/root/.ssh/known_hosts"))),
        migration_address: Some(n.address.clone()),
    }
}

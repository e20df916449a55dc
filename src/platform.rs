//! The platform as the inventory knows it: which hosts there are and how to reach their libvirt,
//! with every host key pinned from the inventory (never trust-on-use at connect time).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::hypervisor::HostTarget;
use crate::inventory::Inventory;
use crate::nodes::{NodeSpec, Role};

/// Write a known_hosts file from the host keys pinned in the inventory, next to the inventory.
/// Every status look asks for it: the file is replaced (whole, see [`crate::files`]) only when a
/// key or an address changed.
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
    crate::files::replace_if_changed(&path, text.as_bytes(), 0o644)?;
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn node(name: &str, role: Role, key: &str) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            role,
            address: format!("10.0.0.{}", name.len()),
            ssh_port: 22,
            user: "root".into(),
            key: None,
            host_key: Some(key.into()),
        }
    }

    /// The status look asks for known_hosts every time; only a changed key writes the file.
    #[test]
    fn known_hosts_is_written_only_when_a_key_changes() {
        let dir = tempfile::tempdir().unwrap();
        let inv = Inventory::open(&dir.path().join("twofold.db")).unwrap();
        inv.upsert_node(&node("host1", Role::Host, "ssh-ed25519 AAAAone"))
            .unwrap();
        let path = write_known_hosts(&inv).unwrap();
        assert_eq!(path, dir.path().join("known_hosts"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "10.0.0.5 ssh-ed25519 AAAAone\n"
        );
        let first = std::fs::metadata(&path).unwrap();
        assert_eq!(first.mode() & 0o777, 0o644);
        for _ in 0..3 {
            host_targets(&inv).unwrap();
        }
        let after = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (after.ino(), after.mtime(), after.mtime_nsec()),
            (first.ino(), first.mtime(), first.mtime_nsec()),
            "unchanged keys, untouched file"
        );

        inv.upsert_node(&node("host1", Role::Host, "ssh-ed25519 AAAAtwo"))
            .unwrap();
        host_targets(&inv).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "10.0.0.5 ssh-ed25519 AAAAtwo\n"
        );
        assert_ne!(std::fs::metadata(&path).unwrap().ino(), first.ino());
    }
}

//! The libvirt side of a lab guest: its domain definition and its empty disk.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{kernel_cmdline, DomainType, GuestAssets};

/// A lab guest as libvirt should run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSpec {
    pub name: String,
    pub uuid: uuid::Uuid,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub disk_path: PathBuf,
    /// Image format of the disk, `qcow2`.
    pub disk_format: String,
    /// The console server its serial port connects to.
    pub console: SocketAddr,
    pub domain_type: DomainType,
}

impl GuestSpec {
    /// A 128 MiB, one-vCPU guest with a qcow2 disk and a fresh UUID.
    pub fn new(
        name: &str,
        assets: &GuestAssets,
        disk_path: &Path,
        console: SocketAddr,
        domain_type: DomainType,
    ) -> GuestSpec {
        GuestSpec {
            name: name.to_string(),
            uuid: uuid::Uuid::new_v4(),
            memory_mib: 128,
            vcpus: 1,
            kernel: assets.kernel.clone(),
            initrd: assets.initrd.clone(),
            disk_path: disk_path.to_path_buf(),
            disk_format: "qcow2".into(),
            console,
            domain_type,
        }
    }
}

pub use crate::vm::xml::xml_escape;

/// The libvirt domain of a lab guest: direct kernel boot, one virtio disk, no network, serial
/// console as a TCP client of the lab's console server.
pub fn domain_xml(spec: &GuestSpec) -> String {
    crate::vm::xml::domain_xml(&crate::vm::xml::DomainSpec {
        name: spec.name.clone(),
        uuid: spec.uuid,
        domain_type: spec.domain_type,
        vcpus: spec.vcpus,
        memory_mib: spec.memory_mib,
        disk: spec.disk_path.clone(),
        disk_format: spec.disk_format.clone(),
        boot: crate::vm::xml::Boot::Kernel {
            kernel: spec.kernel.clone(),
            initrd: spec.initrd.clone(),
            cmdline: kernel_cmdline(&spec.name),
        },
        console: crate::vm::xml::Console::Tcp(spec.console),
        protection: None,
    })
}

/// The command that creates a guest's empty qcow2 disk of `size_mib` MiB (run on a host node).
pub fn create_disk_command(path: &Path, size_mib: u64) -> Vec<String> {
    vec![
        "qemu-img".into(),
        "create".into(),
        "-q".into(),
        "-f".into(),
        "qcow2".into(),
        path.to_string_lossy().into_owned(),
        format!("{size_mib}M"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_xml_for_tcg_and_kvm() {
        let assets = GuestAssets {
            kernel: "/c/vmlinuz".into(),
            initrd: "/c/initrd.img".into(),
            kernel_version: "6.1".into(),
        };
        let mut spec = GuestSpec::new(
            "demo<&'>",
            &assets,
            Path::new("/store/demo.qcow2"),
            "10.251.77.1:7070".parse().unwrap(),
            DomainType::Qemu,
        );
        let xml = domain_xml(&spec);
        assert!(xml.contains("<domain type='qemu'>"));
        assert!(xml.contains("<name>demo&lt;&amp;&apos;&gt;</name>"));
        assert!(xml.contains("<model fallback='allow'>qemu64</model>"));
        assert!(xml.contains(
            "<cmdline>console=ttyS0 quiet panic=-1 twofold.name=demo&lt;&amp;&apos;&gt;</cmdline>"
        ));
        assert!(xml.contains("cache='none' io='native'"));
        assert!(xml.contains("<source file='/store/demo.qcow2'/>"));
        assert!(xml.contains("<source mode='connect' host='10.251.77.1' service='7070'>"));
        assert!(xml.contains("<reconnect enabled='yes' timeout='1'/>"));
        assert!(xml.contains("<on_crash>destroy</on_crash>"));
        assert!(!xml.contains("<interface"));
        assert_eq!(xml.matches("<protocol type='raw'/>").count(), 2);
        spec.domain_type = DomainType::Kvm;
        let xml = domain_xml(&spec);
        assert!(xml.contains("<domain type='kvm'>"));
        assert!(xml.contains("host-model"));
        assert!(!xml.contains("qemu64"));
    }

    #[test]
    fn disk_command() {
        assert_eq!(
            create_disk_command(Path::new("/s/d.qcow2"), 64).join(" "),
            "qemu-img create -q -f qcow2 /s/d.qcow2 64M"
        );
    }
}

//! Libvirt domain XML for the VMs Twofold creates: virtio disk on the shared store opened with
//! O_DIRECT (what a live migration on shared storage needs), the VM paused rather than fed I/O
//! errors when the store stops answering, and Twofold's protection settings in the domain's
//! metadata, so that a host's libvirt alone says which VMs to restart first.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// XML namespace of Twofold's domain metadata.
pub const METADATA_NS: &str = "https://twofold.dev/xmlns/vm/1";

/// How libvirt runs a guest: hardware virtualization, or QEMU's emulator (TCG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainType {
    Kvm,
    Qemu,
}

impl DomainType {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainType::Kvm => "kvm",
            DomainType::Qemu => "qemu",
        }
    }

    pub fn parse(s: &str) -> Option<DomainType> {
        match s.trim().to_ascii_lowercase().as_str() {
            "kvm" => Some(DomainType::Kvm),
            "qemu" | "tcg" => Some(DomainType::Qemu),
            _ => None,
        }
    }
}

impl std::fmt::Display for DomainType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the VM boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// From its disk.
    Disk,
    /// From an install ISO attached as a CD-ROM (then from the disk once installed).
    Cdrom { iso: PathBuf },
    /// A kernel and initramfs given directly (paths on the host).
    Kernel {
        kernel: PathBuf,
        initrd: PathBuf,
        cmdline: String,
    },
}

/// Where the VM's serial console goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Console {
    /// A pseudo-terminal on the host (`virsh console`).
    Pty,
    /// A TCP client of this server (the lab's console server), reconnecting every second.
    Tcp(SocketAddr),
}

/// A VM as libvirt should run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSpec {
    pub name: String,
    pub uuid: uuid::Uuid,
    pub domain_type: DomainType,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk: PathBuf,
    /// `qcow2` or `raw`.
    pub disk_format: String,
    pub boot: Boot,
    pub console: Console,
    /// Twofold's protection settings, kept in the domain's metadata when set.
    pub protection: Option<(bool, u32)>,
}

/// Re-exported where VM definitions were always built; the one definition is [`crate::xml`].
pub use crate::xml::xml_escape;

fn path(p: &std::path::Path) -> String {
    xml_escape(&p.to_string_lossy())
}

/// The domain XML of `spec`.
pub fn domain_xml(spec: &DomainSpec) -> String {
    let cpu = match spec.domain_type {
        // TCG emulates a generic CPU; `host-model` would ask for features TCG lacks.
        DomainType::Qemu => {
            "  <cpu mode='custom' match='exact' check='none'>\n    <model fallback='allow'>qemu64</model>\n  </cpu>\n"
        }
        DomainType::Kvm => "  <cpu mode='host-model' check='partial'/>\n",
    };
    let (os_boot, cdrom) = match &spec.boot {
        Boot::Disk => ("    <boot dev='hd'/>\n".to_string(), String::new()),
        Boot::Cdrom { iso } => (
            "    <boot dev='cdrom'/>\n    <boot dev='hd'/>\n".to_string(),
            format!(
                "    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='{}'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
",
                path(iso)
            ),
        ),
        Boot::Kernel {
            kernel,
            initrd,
            cmdline,
        } => (
            format!(
                "    <kernel>{}</kernel>\n    <initrd>{}</initrd>\n    <cmdline>{}</cmdline>\n",
                path(kernel),
                path(initrd),
                xml_escape(cmdline)
            ),
            String::new(),
        ),
    };
    let console = match &spec.console {
        Console::Pty => "    <serial type='pty'>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
"
        .to_string(),
        Console::Tcp(addr) => {
            let source = format!(
                "<source mode='connect' host='{}' service='{}'>\
                 <reconnect enabled='yes' timeout='1'/></source>\
                 <protocol type='raw'/>",
                xml_escape(&addr.ip().to_string()),
                addr.port()
            );
            format!(
                "    <serial type='tcp'>
      {source}
      <target port='0'/>
    </serial>
    <console type='tcp'>
      {source}
      <target type='serial' port='0'/>
    </console>
"
            )
        }
    };
    let metadata = match spec.protection {
        Some((protected, priority)) => format!(
            "  <metadata>
    <twofold:vm xmlns:twofold='{METADATA_NS}'>
      <twofold:protected>{protected}</twofold:protected>
      <twofold:priority>{priority}</twofold:priority>
    </twofold:vm>
  </metadata>
"
        ),
        None => String::new(),
    };
    format!(
        "<domain type='{dtype}'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
{metadata}  <memory unit='MiB'>{mem}</memory>
  <currentMemory unit='MiB'>{mem}</currentMemory>
  <vcpu placement='static'>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
{os_boot}  </os>
  <features>
    <acpi/>
  </features>
{cpu}  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <!-- cache='none' (O_DIRECT, no host page cache) is what libvirt requires for a safe live
         migration on shared storage; io='native' is only valid together with cache='none'.
         error_policy='stop' pauses the VM when the store refuses a write (no quorum) instead
         of handing the guest an I/O error it may not survive. -->
    <disk type='file' device='disk'>
      <driver name='qemu' type='{format}' cache='none' io='native' error_policy='stop'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
{cdrom}{console}    <memballoon model='none'/>
  </devices>
</domain>
",
        dtype = spec.domain_type.as_str(),
        name = xml_escape(&spec.name),
        uuid = spec.uuid,
        mem = spec.memory_mib,
        vcpus = spec.vcpus,
        format = xml_escape(&spec.disk_format),
        disk = path(&spec.disk),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(boot: Boot) -> DomainSpec {
        DomainSpec {
            name: "erp".into(),
            uuid: uuid::Uuid::nil(),
            domain_type: DomainType::Kvm,
            vcpus: 2,
            memory_mib: 2048,
            disk: "/var/lib/twofold/store/images/erp.qcow2".into(),
            disk_format: "qcow2".into(),
            boot,
            console: Console::Pty,
            protection: Some((true, 80)),
        }
    }

    #[test]
    fn cdrom_boot_attaches_the_iso_read_only_and_keeps_the_disk_safe() {
        let xml = domain_xml(&spec(Boot::Cdrom {
            iso: "/store/images/erp-install.iso".into(),
        }));
        assert!(
            xml.contains("<boot dev='cdrom'/>\n    <boot dev='hd'/>"),
            "{xml}"
        );
        assert!(xml.contains("<source file='/store/images/erp-install.iso'/>"));
        assert!(xml.contains("<readonly/>"));
        assert!(xml.contains("cache='none' io='native' error_policy='stop'"));
        assert!(xml.contains("<twofold:priority>80</twofold:priority>"));
        assert!(xml.contains("<serial type='pty'>"));
        assert!(!xml.contains("<kernel>"));
    }

    #[test]
    fn kernel_boot_and_tcp_console_are_escaped() {
        let mut s = spec(Boot::Kernel {
            kernel: "/k&k".into(),
            initrd: "/i".into(),
            cmdline: "a<b".into(),
        });
        s.console = Console::Tcp("10.0.0.1:7070".parse().unwrap());
        s.protection = None;
        s.domain_type = DomainType::Qemu;
        let xml = domain_xml(&s);
        assert!(xml.contains("<kernel>/k&amp;k</kernel>"), "{xml}");
        assert!(xml.contains("<cmdline>a&lt;b</cmdline>"));
        assert!(xml.contains("host='10.0.0.1' service='7070'"));
        assert!(xml.contains("<domain type='qemu'>"));
        assert!(xml.contains("qemu64"));
        assert!(!xml.contains("<metadata>"));
    }
}

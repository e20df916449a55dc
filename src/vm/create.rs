//! Creating a VM on the platform: its disk in the `twofold` storage pool on the replicated store
//! (so both hosts can run it), defined and started on the chosen host, and recorded in the
//! inventory as protected with a restart priority.
//!
//! Every check comes before anything changes: the name is free on every host and in the store,
//! the host and pool exist, the source file is what it claims to be, the store has room. If a
//! later step fails, what the earlier ones made (volumes, the definition) is removed again.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::xml::{domain_xml, Boot, Console, DomainSpec, DomainType};
use super::{scan_blocking, InventoryAccess};
use crate::error::{Error, Result};
use crate::hypervisor::{HostConn, HostTarget};
use crate::inventory::{Inventory, Severity};
use crate::progress::Progress;
use crate::storage::layout::POOL;

const GIB: u64 = 1 << 30;
/// Room kept free on the store beyond what a new VM needs (metadata, other VMs' growth).
const STORE_HEADROOM: u64 = GIB;

/// What to boot the new VM from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Source {
    /// An empty disk and this install ISO (a file on this computer), copied to the store.
    Iso { path: PathBuf },
    /// A ready disk image (qcow2 or raw, a file on this computer), copied to the store as the
    /// VM's disk.
    Image { path: PathBuf },
    /// An empty disk, booting this kernel and initramfs (files on the hosts) directly; the lab's
    /// test guest.
    Kernel {
        kernel: PathBuf,
        initrd: PathBuf,
        cmdline: String,
    },
}

/// A VM to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSpec {
    pub name: String,
    pub host: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    /// Size of the VM's disk. With an image, the disk is at least the image's size.
    pub disk_gib: u64,
    pub source: Source,
    /// Restart it on the other host when its host dies.
    pub protected: bool,
    /// 0-100, higher restarts first.
    pub priority: u32,
    /// Serial console to a TCP server (the lab's console server); a pty when `None`.
    #[serde(default)]
    pub console: Option<std::net::SocketAddr>,
    /// Define it without starting it.
    #[serde(default)]
    pub no_start: bool,
}

/// What was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Created {
    pub name: String,
    pub uuid: String,
    pub host: String,
    pub disk: String,
    pub iso: Option<String>,
    pub domain_type: DomainType,
    pub started: bool,
    pub protected: bool,
    pub priority: u32,
}

impl CreateSpec {
    /// Check what can be checked without a host. Each problem says what to do.
    pub fn validate(&self) -> Result<()> {
        let mut errs = Vec::new();
        if !valid_name(&self.name) {
            errs.push(format!(
                "'{}' is not a usable VM name: use 1 to 64 letters, digits, '-' or '_', starting with a letter or digit",
                self.name
            ));
        }
        if !(1..=64).contains(&self.vcpus) {
            errs.push(format!(
                "{} vCPUs is out of range; give 1 to 64",
                self.vcpus
            ));
        }
        if !(64..=1 << 20).contains(&self.memory_mib) {
            errs.push(format!(
                "{} MiB of RAM is out of range; give 64 MiB to 1 TiB (e.g. 2048 for 2 GiB)",
                self.memory_mib
            ));
        }
        if !(1..=65536).contains(&self.disk_gib) {
            errs.push(format!(
                "a {} GiB disk is out of range; give 1 to 65536 GiB",
                self.disk_gib
            ));
        }
        if self.priority > 100 {
            errs.push(format!(
                "priority {} is out of range; give 0 to 100 (higher restarts first)",
                self.priority
            ));
        }
        match &self.source {
            Source::Iso { path } => {
                if let Err(e) = check_iso(path) {
                    errs.push(e);
                }
            }
            Source::Image { path } => {
                if let Err(e) = image_format(path) {
                    errs.push(e);
                }
            }
            Source::Kernel { kernel, initrd, .. } => {
                for (what, p) in [("kernel", kernel), ("initramfs", initrd)] {
                    if !p.is_absolute() {
                        errs.push(format!(
                            "the {what} path {} must be absolute (a file on the hosts)",
                            p.display()
                        ));
                    }
                }
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidInput(format!(
                "cannot create VM '{}': {}. Nothing was changed",
                self.name,
                errs.join("; ")
            )))
        }
    }

    fn disk_volume(&self) -> String {
        format!("{}.qcow2", self.name)
    }

    fn iso_volume(&self) -> String {
        format!("{}-install.iso", self.name)
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && n.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// An ISO 9660 image has "CD001" at byte 32769.
fn check_iso(path: &Path) -> std::result::Result<u64, String> {
    let mut f = open_source(path, "install ISO")?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut magic = [0u8; 5];
    let ok = f.seek(SeekFrom::Start(32769)).is_ok() && f.read_exact(&mut magic).is_ok();
    if !ok || &magic != b"CD001" {
        return Err(format!(
            "{} is not an ISO image (no ISO 9660 signature); give the installer's .iso file",
            path.display()
        ));
    }
    Ok(len)
}

/// `qcow2` (by its magic) or `raw` (any other file whose size is a whole number of sectors).
fn image_format(path: &Path) -> std::result::Result<(&'static str, u64), String> {
    let mut f = open_source(path, "disk image")?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut magic = [0u8; 4];
    if f.read_exact(&mut magic).is_ok() && &magic == b"QFI\xfb" {
        return Ok(("qcow2", len));
    }
    if len == 0 || len % 512 != 0 {
        return Err(format!(
            "{} is neither a qcow2 image nor a raw disk image (its size, {len} bytes, is not a whole number of 512-byte sectors)",
            path.display()
        ));
    }
    Ok(("raw", len))
}

fn open_source(path: &Path, what: &str) -> std::result::Result<File, String> {
    let f =
        File::open(path).map_err(|e| format!("cannot open the {what} {} ({e})", path.display()))?;
    match f.metadata() {
        Ok(m) if m.is_file() && m.len() > 0 => Ok(f),
        Ok(_) => Err(format!(
            "the {what} {} is empty or not a regular file",
            path.display()
        )),
        Err(e) => Err(format!("cannot read the {what} {} ({e})", path.display())),
    }
}

/// The virtual size of a qcow2 image (bytes 24..32 of its header, big-endian).
fn qcow2_virtual_size(path: &Path) -> Result<u64> {
    let mut f =
        File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut header = [0u8; 32];
    f.read_exact(&mut header)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    Ok(u64::from_be_bytes(
        header[24..32].try_into().expect("8 bytes"),
    ))
}

/// Create the VM (see the module docs). Records a job (kind `create`) and events.
pub fn create_blocking(
    hosts: &[HostTarget],
    inv: &Inventory,
    spec: &CreateSpec,
    progress: &dyn Progress,
) -> Result<Created> {
    create_with(hosts, inv, spec, progress)
}

fn create_with(
    hosts: &[HostTarget],
    inv: &impl InventoryAccess,
    spec: &CreateSpec,
    progress: &dyn Progress,
) -> Result<Created> {
    spec.validate()?;
    if !hosts.iter().any(|h| h.name == spec.host) {
        return Err(Error::UnknownHost {
            name: spec.host.clone(),
            known: hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    // The name must be free everywhere: two VMs of one name would be one VM to failover.
    let mut conn = None;
    for scan in scan_blocking(hosts) {
        let (c, doms) = scan.outcome.map_err(|e| {
            Error::InvalidInput(format!(
                "cannot check {} for a VM named '{}' ({e}); every host must answer before a VM is created, so that no two VMs share a name. Nothing was changed",
                scan.target.name, spec.name
            ))
        })?;
        if doms.iter().any(|d| d.name == spec.name) {
            return Err(Error::InvalidInput(format!(
                "a VM named '{}' already exists on {}; choose another name. Nothing was changed",
                spec.name, scan.target.name
            )));
        }
        if scan.target.name == spec.host {
            conn = Some(c);
        }
    }
    let conn = conn.expect("the target host is among the scanned hosts");
    if inv
        .with(|inv| inv.vms())?
        .iter()
        .any(|v| v.name == spec.name)
    {
        return Err(Error::InvalidInput(format!(
            "the inventory already has a VM named '{}' (perhaps on a host that was removed); choose another name. Nothing was changed",
            spec.name
        )));
    }

    let pool = conn.pool_blocking(POOL)?.ok_or_else(|| {
        Error::InvalidInput(format!(
            "{} has no storage pool '{POOL}'; set the platform up first (twofold setup apply). Nothing was changed",
            spec.host
        ))
    })?;
    if !pool.active {
        return Err(Error::InvalidInput(format!(
            "the storage pool '{POOL}' on {} is not running (is the VM store mounted at {}?); run twofold setup verify. Nothing was changed",
            spec.host, pool.path
        )));
    }
    for vol in [spec.disk_volume(), spec.iso_volume()] {
        if conn.volume_path_blocking(POOL, &vol)?.is_some() {
            return Err(Error::InvalidInput(format!(
                "the store already holds a volume '{vol}' (a disk of a VM that was removed?); it was not touched. Choose another name, or delete that volume if it is not needed. Nothing was changed"
            )));
        }
    }
    let (upload_bytes, disk_bytes) = match &spec.source {
        Source::Iso { path } => (
            check_iso(path).map_err(Error::InvalidInput)?,
            spec.disk_gib * GIB,
        ),
        Source::Image { path } => {
            let (format, len) = image_format(path).map_err(Error::InvalidInput)?;
            let virtual_size = if format == "qcow2" {
                qcow2_virtual_size(path)?
            } else {
                len
            };
            (len, virtual_size.max(spec.disk_gib * GIB))
        }
        Source::Kernel { .. } => (0, spec.disk_gib * GIB),
    };
    // Uploads take their size now; a new qcow2 disk takes little until written, but the VM will
    // fill it: refuse what cannot fit at all.
    let need = upload_bytes + STORE_HEADROOM;
    if pool.available_bytes < need || pool.capacity_bytes < disk_bytes {
        return Err(Error::InvalidInput(format!(
            "the VM store has {:.1} GiB free of {:.1} GiB; VM '{}' needs {:.1} GiB now and up to {:.1} GiB as its disk fills. Free space on the storage nodes or give a smaller disk. Nothing was changed",
            pool.available_bytes as f64 / GIB as f64,
            pool.capacity_bytes as f64 / GIB as f64,
            spec.name,
            need as f64 / GIB as f64,
            disk_bytes as f64 / GIB as f64,
        )));
    }

    let job = inv.with(|inv| inv.start_job("create", &spec.name))?;
    let mut made = Made::new(&conn);
    let result = build(&conn, spec, disk_bytes, &mut made, progress);
    match result {
        Ok(created) => {
            made.keep();
            inv.with(|inv| -> Result<()> {
                inv.record_vm(
                    &created.name,
                    &created.uuid,
                    Some(&created.host),
                    if created.started {
                        "running"
                    } else {
                        "shutoff"
                    },
                    spec.vcpus,
                    spec.memory_mib,
                )?;
                inv.set_vm_protection(&created.name, spec.protected, spec.priority.into())?;
                inv.finish_job(
                    &job,
                    Ok(&serde_json::to_value(&created).unwrap_or_default()),
                )?;
                inv.add_event(
                    Severity::Info,
                    "vm",
                    &format!(
                        "created VM '{}' on {}{}",
                        created.name,
                        created.host,
                        if spec.protected {
                            format!(", protected, priority {}", spec.priority)
                        } else {
                            String::new()
                        }
                    ),
                )
            })?;
            Ok(created)
        }
        Err(e) => {
            let undo = made.undo();
            let msg = match undo {
                Ok(()) => format!("{e}. What was made for it was removed again"),
                Err(u) => format!("{e}. Removing what was made for it failed too: {u}"),
            };
            let _ = inv.with(|inv| -> Result<()> {
                inv.finish_job(&job, Err(&msg))?;
                inv.add_event(
                    Severity::Error,
                    "vm",
                    &format!("creating VM '{}' failed: {msg}", spec.name),
                )
            });
            Err(e)
        }
    }
}

fn build(
    conn: &HostConn,
    spec: &CreateSpec,
    disk_bytes: u64,
    made: &mut Made<'_>,
    progress: &dyn Progress,
) -> Result<Created> {
    let disk_vol = spec.disk_volume();
    let mut iso = None;
    let (disk, disk_format, boot) = match &spec.source {
        Source::Iso { path } => {
            let len = check_iso(path).map_err(Error::InvalidInput)?;
            let mut f = File::open(path)
                .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
            let iso_vol = spec.iso_volume();
            made.volumes.push(iso_vol.clone());
            let p = conn.upload_volume_blocking(POOL, &iso_vol, "raw", &mut f, len, progress)?;
            iso = Some(p.clone());
            made.volumes.push(disk_vol.clone());
            let d = conn.create_volume_blocking(POOL, &disk_vol, "qcow2", disk_bytes)?;
            (d, "qcow2", Boot::Cdrom { iso: p.into() })
        }
        Source::Image { path } => {
            let (format, len) = image_format(path).map_err(Error::InvalidInput)?;
            let mut f = File::open(path)
                .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
            made.volumes.push(disk_vol.clone());
            let d = conn.upload_volume_blocking(POOL, &disk_vol, format, &mut f, len, progress)?;
            (d, format, Boot::Disk)
        }
        Source::Kernel {
            kernel,
            initrd,
            cmdline,
        } => {
            made.volumes.push(disk_vol.clone());
            let d = conn.create_volume_blocking(POOL, &disk_vol, "qcow2", disk_bytes)?;
            (
                d,
                "qcow2",
                Boot::Kernel {
                    kernel: kernel.clone(),
                    initrd: initrd.clone(),
                    cmdline: cmdline.clone(),
                },
            )
        }
    };
    let domain_type = if conn.supports_kvm_blocking()? {
        DomainType::Kvm
    } else {
        DomainType::Qemu
    };
    let xml = domain_xml(&DomainSpec {
        name: spec.name.clone(),
        uuid: uuid::Uuid::new_v4(),
        domain_type,
        vcpus: spec.vcpus,
        memory_mib: spec.memory_mib,
        disk: disk.clone().into(),
        disk_format: disk_format.into(),
        boot,
        console: spec.console.map(Console::Tcp).unwrap_or(Console::Pty),
        protection: Some((spec.protected, spec.priority)),
    });
    let info = conn.define_blocking(&xml)?;
    made.defined = Some(spec.name.clone());
    if !spec.no_start {
        conn.start_blocking(&spec.name)?;
        progress.message(&format!(
            "VM '{}' started on {} ({domain_type})",
            spec.name,
            conn.host()
        ));
    }
    Ok(Created {
        name: spec.name.clone(),
        uuid: info.uuid,
        host: conn.host().to_string(),
        disk,
        iso,
        domain_type,
        started: !spec.no_start,
        protected: spec.protected,
        priority: spec.priority,
    })
}

/// What a creation made so far, removed again if it fails.
struct Made<'a> {
    conn: &'a HostConn,
    volumes: Vec<String>,
    defined: Option<String>,
    keep: bool,
}

impl<'a> Made<'a> {
    fn new(conn: &'a HostConn) -> Made<'a> {
        Made {
            conn,
            volumes: Vec::new(),
            defined: None,
            keep: false,
        }
    }

    fn keep(&mut self) {
        self.keep = true;
    }

    fn undo(&mut self) -> Result<()> {
        if self.keep {
            return Ok(());
        }
        self.keep = true;
        let mut first_err = None;
        if let Some(name) = self.defined.take() {
            if let Ok(Some(d)) = self.conn.domain_blocking(&name) {
                if d.state.is_migratable() {
                    if let Err(e) = self.conn.destroy_blocking(&name) {
                        first_err.get_or_insert(e);
                    }
                }
                if let Err(e) = self.conn.undefine_blocking(&name) {
                    first_err.get_or_insert(e);
                }
            }
        }
        for v in self.volumes.drain(..).rev() {
            if let Err(e) = self.conn.delete_volume_blocking(POOL, &v) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests;

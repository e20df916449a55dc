//! The lab's test guest: Debian's cloud kernel, an initramfs made of busybox-static, the virtio disk
//! modules and the workload (`resources/guest/workload.c`), booted directly by libvirt
//! (`<kernel>`, `<initrd>`). The workload writes sequence-numbered, checksummed records to its disk
//! and prints a heartbeat to the serial console every 100 ms; [`super::checker`] proves from both
//! that nothing acknowledged was lost.

mod accel;
mod domain;
mod initramfs;
mod kernel;
mod workload;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::progress::Progress;

/// The workload's source, compiled at lab time with `gcc -static -O2`.
pub const WORKLOAD_C: &str = include_str!("../../../resources/guest/workload.c");
/// The initramfs's `/init`.
pub const INIT_SH: &str = include_str!("../../../resources/guest/init.sh");
/// Bumped whenever the way the image is put together changes (part of the cache key).
const BUILDER_VERSION: &str = "1";

pub use accel::{detect_domain_type, ChildGuard, DomainType};
pub use domain::{create_disk_command, domain_xml, xml_escape, GuestSpec};
use initramfs::{elf_is_dynamic, find_busybox};
use kernel::find_kernel_deb;

/// Kernel and initramfs of the lab guest, world-readable (QEMU runs as libvirt-qemu).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestAssets {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub kernel_version: String,
}

/// The kernel command line of lab guest `name`.
pub fn kernel_cmdline(name: &str) -> String {
    format!("console=ttyS0 quiet panic=-1 twofold.name={name}")
}

fn lab_err(msg: impl Into<String>) -> Error {
    Error::Lab(msg.into())
}

/// Builds (or finds in `cache`) the lab guest's kernel and initramfs. Rebuilds only when an input
/// changed: the kernel package, the busybox binary, gcc, the workload source or the init script.
///
/// The kernel package is looked up in `cache/debs`, then `$TWOFOLD_CACHE/debs`, then
/// /var/cache/twofold/debs (where installer/install-deps.sh downloads it).
pub fn build_assets(cache: &Path, progress: &dyn Progress) -> Result<GuestAssets> {
    let deb = find_kernel_deb(cache)?;
    let busybox = find_busybox()?;
    let busybox_bytes = std::fs::read(&busybox).ctx(|| format!("reading {}", busybox.display()))?;
    if elf_is_dynamic(&busybox_bytes) {
        return Err(lab_err(format!(
            "{} is dynamically linked and cannot run in the guest's initramfs; install \
             busybox-static (installer/install-deps.sh)",
            busybox.display()
        )));
    }
    let gcc = tool_version("gcc", &["--version"]).ok_or_else(|| {
        lab_err("gcc is missing: run installer/install-deps.sh (installs gcc and libc6-dev)")
    })?;
    let deb_name = deb
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let deb_len = std::fs::metadata(&deb).map(|m| m.len()).unwrap_or(0);

    let mut h = Fnv64::new();
    for part in [
        BUILDER_VERSION.as_bytes(),
        deb_name.as_bytes(),
        &deb_len.to_le_bytes(),
        &busybox_bytes,
        gcc.as_bytes(),
        WORKLOAD_C.as_bytes(),
        INIT_SH.as_bytes(),
    ] {
        h.write(&(part.len() as u64).to_le_bytes());
        h.write(part);
    }
    let key = format!("{:016x}", h.finish());

    let guest_dir = cache.join("guest");
    mkdir_0755(cache)?;
    mkdir_0755(&guest_dir)?;
    warn_if_unreachable(cache, progress);
    let out = guest_dir.join(&key);
    if let Some(assets) = read_built(&out) {
        progress.message(&format!(
            "lab guest image up to date (kernel {})",
            assets.kernel_version
        ));
        return Ok(assets);
    }

    static BUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let build = guest_dir.join(format!(".build-{}-{n}-{key}", std::process::id()));
    let _cleanup = RemoveOnDrop(build.clone());
    if build.exists() {
        std::fs::remove_dir_all(&build).ctx(|| format!("removing {}", build.display()))?;
    }
    mkdir_0755(&build)?;
    let staged = build.join("out");
    mkdir_0755(&staged)?;

    progress.begin("building the lab guest image", Some(5));
    progress.message(&format!("unpacking {deb_name}"));
    let kernel::Kernel {
        version,
        vmlinuz,
        moddir,
        modules: order,
    } = kernel::unpack(&deb, &deb_name, &build, progress)?;
    progress.update(2, None);

    progress.message("compiling the workload (gcc -static -O2)");
    let workload_bytes = workload::compile(&build)?;
    progress.update(3, None);

    let initrd = initramfs::write(
        &build,
        &busybox,
        &busybox_bytes,
        &workload_bytes,
        &moddir,
        &order,
    )?;
    progress.update(4, None);

    let assets = GuestAssets {
        kernel: staged.join("vmlinuz"),
        initrd: staged.join("initrd.img"),
        kernel_version: version.clone(),
    };
    std::fs::copy(&vmlinuz, &assets.kernel).ctx(|| "copying vmlinuz".into())?;
    std::fs::rename(&initrd, &assets.initrd).ctx(|| "moving the initramfs".into())?;
    std::fs::write(staged.join("kernel-version"), &version)
        .ctx(|| "writing kernel-version".into())?;
    let inputs = format!(
        "kernel_deb={deb_name}\nbusybox={}\ngcc={}\nmodules={}\n",
        busybox.display(),
        gcc.lines().next().unwrap_or(""),
        order.join(" ")
    );
    std::fs::write(staged.join("inputs.txt"), inputs).ctx(|| "writing inputs.txt".into())?;
    for f in ["vmlinuz", "initrd.img", "kernel-version", "inputs.txt"] {
        chmod(&staged.join(f), 0o644)?;
    }
    // Publish atomically; a concurrent builder may have won the race, then use its result.
    if let Err(e) = std::fs::rename(&staged, &out) {
        if read_built(&out).is_none() {
            return Err(Error::io(format!("publishing {}", out.display()), e));
        }
    }
    progress.update(5, None);
    progress.finish();
    let built = read_built(&out).ok_or_else(|| {
        lab_err(format!(
            "the guest image in {} is incomplete",
            out.display()
        ))
    })?;
    progress.message(&format!("lab guest image built in {}", out.display()));
    Ok(built)
}

fn read_built(out: &Path) -> Option<GuestAssets> {
    let version = std::fs::read_to_string(out.join("kernel-version")).ok()?;
    let assets = GuestAssets {
        kernel: out.join("vmlinuz"),
        initrd: out.join("initrd.img"),
        kernel_version: version.trim().to_string(),
    };
    (assets.kernel.is_file() && assets.initrd.is_file()).then_some(assets)
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mkdir_0755(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
        chmod(dir, 0o755)?;
    }
    Ok(())
}

fn chmod(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .ctx(|| format!("setting permissions of {}", path.display()))
}

/// QEMU runs as libvirt-qemu: it must be able to traverse every folder above the image.
fn warn_if_unreachable(dir: &Path, progress: &dyn Progress) {
    for d in dir.ancestors() {
        if let Ok(m) = std::fs::metadata(d) {
            if m.permissions().mode() & 0o001 == 0 {
                progress.message(&format!(
                    "warning: {} is not searchable by other users; QEMU running as libvirt-qemu \
                     will not be able to read the guest kernel (chmod o+x it)",
                    d.display()
                ));
                return;
            }
        }
    }
}

fn tool_version(tool: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(tool).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| {
        lab_err(format!(
            "cannot run {what}: {e}; run installer/install-deps.sh"
        ))
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(lab_err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// FNV-1a, 64 bit: the cache key of the guest image (not a security boundary).
struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Fnv64 {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests;

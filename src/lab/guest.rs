//! The lab's test guest: Debian's cloud kernel, an initramfs made of busybox-static, the virtio disk
//! modules and the workload (`resources/guest/workload.c`), booted directly by libvirt
//! (`<kernel>`, `<initrd>`). The workload writes sequence-numbered, checksummed records to its disk
//! and prints a heartbeat to the serial console every 100 ms; [`super::checker`] proves from both
//! that nothing acknowledged was lost.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::progress::Progress;

/// The workload's source, compiled at lab time with `gcc -static -O2`.
pub const WORKLOAD_C: &str = include_str!("../../resources/guest/workload.c");
/// The initramfs's `/init`.
pub const INIT_SH: &str = include_str!("../../resources/guest/init.sh");
/// Bumped whenever the way the image is put together changes (part of the cache key).
const BUILDER_VERSION: &str = "1";
/// Modules the guest needs for its disk; their dependencies come from modules.dep.
const ROOT_MODULES: [&str; 2] = ["virtio_pci", "virtio_blk"];
/// Where installer/install-deps.sh puts the kernel package.
const DEFAULT_DEB_DIR: &str = "/var/cache/twofold/debs";
/// How long the KVM probe waits for the guest's first heartbeat.
const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(20);

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
    let root = build.join("deb");
    run(
        Command::new("dpkg").arg("-x").arg(&deb).arg(&root),
        "dpkg -x (unpacking the kernel package)",
    )?;
    progress.update(1, None);

    let version = kernel_version(&root)?;
    let vmlinuz = root.join("boot").join(format!("vmlinuz-{version}"));
    if !vmlinuz.is_file() {
        return Err(lab_err(format!(
            "{deb_name} has no boot/vmlinuz-{version}; is it a linux-image package?"
        )));
    }
    let moddir = root.join("lib/modules").join(&version);
    let dep_file = moddir.join("modules.dep");
    if !dep_file.is_file() {
        // Packages ship without modules.dep (postinst runs depmod): make it in the unpacked tree.
        run(
            Command::new("depmod").arg("-b").arg(&root).arg(&version),
            "depmod (install kmod: installer/install-deps.sh)",
        )?;
    }
    let deps_text =
        std::fs::read_to_string(&dep_file).ctx(|| format!("reading {}", dep_file.display()))?;
    let deps = parse_modules_dep(&deps_text);
    let order = module_load_order(&deps, &ROOT_MODULES)?;
    progress.message(&format!(
        "kernel {version}, disk modules: {}",
        order
            .iter()
            .map(|p| module_name(p))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    progress.update(2, None);

    progress.message("compiling the workload (gcc -static -O2)");
    let src = build.join("workload.c");
    std::fs::write(&src, WORKLOAD_C).ctx(|| format!("writing {}", src.display()))?;
    let workload = build.join("workload");
    run(
        Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&workload)
            .arg(&src),
        "gcc -static (needs libc6-dev: installer/install-deps.sh)",
    )?;
    let workload_bytes = std::fs::read(&workload).ctx(|| "reading the compiled workload".into())?;
    if elf_is_dynamic(&workload_bytes) {
        return Err(lab_err(
            "gcc -static produced a dynamic executable; install libc6-dev",
        ));
    }
    progress.update(3, None);

    let mut cpio = Cpio::default();
    for d in [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "run",
        "etc",
        "root",
        "lib",
        "lib/modules",
    ] {
        cpio.dir(d);
    }
    cpio.char_dev("dev/console", 0o600, 5, 1);
    cpio.char_dev("dev/null", 0o666, 1, 3);
    cpio.file("init", 0o755, INIT_SH.as_bytes());
    cpio.file("bin/busybox", 0o755, &busybox_bytes);
    for applet in busybox_applets(&busybox)? {
        if applet != "bin/busybox" && applet != "linuxrc" {
            cpio.symlink(&applet, "/bin/busybox");
        }
    }
    cpio.file("bin/workload", 0o755, &workload_bytes);
    let mut load_order = String::new();
    for rel in &order {
        let name = module_name(rel);
        let data = read_module(&moddir.join(rel))?;
        cpio.file(&format!("lib/modules/{name}.ko"), 0o644, &data);
        let _ = writeln!(load_order, "{name}.ko");
    }
    cpio.file("lib/modules/load.order", 0o644, load_order.as_bytes());
    let cpio_path = build.join("initrd.cpio");
    std::fs::write(&cpio_path, cpio.finish()).ctx(|| "writing the initramfs".into())?;
    run(
        Command::new("gzip")
            .args(["-n", "-9", "-f"])
            .arg(&cpio_path),
        "gzip",
    )?;
    progress.update(4, None);

    let assets = GuestAssets {
        kernel: staged.join("vmlinuz"),
        initrd: staged.join("initrd.img"),
        kernel_version: version.clone(),
    };
    std::fs::copy(&vmlinuz, &assets.kernel).ctx(|| "copying vmlinuz".into())?;
    std::fs::rename(build.join("initrd.cpio.gz"), &assets.initrd)
        .ctx(|| "moving the initramfs".into())?;
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

fn deb_dirs(cache: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![cache.join("debs")];
    if let Some(c) = std::env::var_os("TWOFOLD_CACHE") {
        dirs.push(PathBuf::from(c).join("debs"));
    }
    dirs.push(PathBuf::from(DEFAULT_DEB_DIR));
    dirs.dedup();
    dirs
}

fn find_kernel_deb(cache: &Path) -> Result<PathBuf> {
    let dirs = deb_dirs(cache);
    for dir in &dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut debs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                n.starts_with("linux-image-") && n.contains("-cloud-amd64_") && n.ends_with(".deb")
            })
            .collect();
        debs.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
        if let Some(newest) = debs.pop() {
            return Ok(newest);
        }
    }
    Err(lab_err(format!(
        "no cloud kernel .deb (linux-image-*-cloud-amd64_*.deb) in {}: run installer/install-deps.sh",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    )))
}

/// Compares strings with digit runs compared as numbers (6.1.0-9 < 6.1.0-10).
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let na = std::str::from_utf8(&a[..da])
                    .unwrap_or("0")
                    .trim_start_matches('0');
                let nb = std::str::from_utf8(&b[..db])
                    .unwrap_or("0")
                    .trim_start_matches('0');
                let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn find_busybox() -> Result<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox", "/usr/sbin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            lab_err("busybox is missing: install busybox-static (installer/install-deps.sh)")
        })
}

/// Applet paths relative to / (`bin/sh`, `sbin/insmod`, ...), from the busybox binary itself.
fn busybox_applets(busybox: &Path) -> Result<Vec<String>> {
    let out = Command::new(busybox)
        .arg("--list-full")
        .output()
        .ctx(|| format!("running {} --list-full", busybox.display()))?;
    let list: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_start_matches('/').to_string())
        .filter(|l| !l.is_empty() && !l.contains(".."))
        .collect();
    for needed in ["sh", "insmod", "mount", "sleep", "cat"] {
        if !list.iter().any(|l| l.rsplit('/').next() == Some(needed)) {
            return Err(lab_err(format!(
                "{} has no '{needed}' applet; install Debian's busybox-static",
                busybox.display()
            )));
        }
    }
    Ok(list)
}

/// True if an ELF executable asks for a program interpreter (a dynamic loader).
fn elf_is_dynamic(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 {
        return true; // not a 64-bit ELF: treat as unusable
    }
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= elf.len()
            && u32::from_le_bytes([elf[o], elf[o + 1], elf[o + 2], elf[o + 3]]) == PT_INTERP
    })
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

fn kernel_version(root: &Path) -> Result<String> {
    let dir = root.join("lib/modules");
    let mut versions: Vec<String> = std::fs::read_dir(&dir)
        .ctx(|| format!("listing {} (is the package a kernel image?)", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    versions.sort();
    match versions.as_slice() {
        [v] => Ok(v.clone()),
        _ => Err(lab_err(format!(
            "expected one kernel version in {}, found {versions:?}",
            dir.display()
        ))),
    }
}

/// `modules.dep`: module path -> dependency paths (relative to the modules folder).
fn parse_modules_dep(text: &str) -> Vec<(String, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let (m, deps) = l.split_once(':')?;
            Some((
                m.trim().to_string(),
                deps.split_whitespace().map(str::to_string).collect(),
            ))
        })
        .collect()
}

/// A module's name from its path: `kernel/drivers/virtio/virtio-foo.ko.xz` -> `virtio_foo`.
fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

/// Paths of `roots` and everything they depend on, each after its dependencies.
fn module_load_order(deps: &[(String, Vec<String>)], roots: &[&str]) -> Result<Vec<String>> {
    let find = |name: &str| {
        deps.iter()
            .find(|(p, _)| module_name(p) == name)
            .map(|(p, _)| p.clone())
    };
    fn visit(
        path: &str,
        deps: &[(String, Vec<String>)],
        order: &mut Vec<String>,
        stack: &mut Vec<String>,
    ) -> Result<()> {
        if order.iter().any(|p| p == path) {
            return Ok(());
        }
        if stack.iter().any(|p| p == path) {
            return Err(lab_err(format!("module dependency cycle through {path}")));
        }
        stack.push(path.to_string());
        let own = deps
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, d)| d.clone())
            .ok_or_else(|| {
                lab_err(format!(
                    "{path} is listed as a dependency but not in modules.dep"
                ))
            })?;
        for d in &own {
            visit(d, deps, order, stack)?;
        }
        stack.pop();
        order.push(path.to_string());
        Ok(())
    }
    let mut order = Vec::new();
    for root in roots {
        let path = find(root).ok_or_else(|| {
            lab_err(format!(
                "the kernel has no {root} module; the guest needs a kernel with virtio as modules \
                 (Debian's linux-image-cloud-amd64)"
            ))
        })?;
        visit(&path, deps, &mut order, &mut Vec::new())?;
    }
    Ok(order)
}

/// A module file, decompressed: busybox's insmod is not guaranteed to read compressed modules.
fn read_module(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool: Option<(&str, &[&str])> = if name.ends_with(".ko.xz") {
        Some(("xz", &["-dc"]))
    } else if name.ends_with(".ko.zst") {
        Some(("zstd", &["-dcq"]))
    } else if name.ends_with(".ko.gz") {
        Some(("gzip", &["-dc"]))
    } else {
        None
    };
    match tool {
        None => std::fs::read(path).ctx(|| format!("reading {}", path.display())),
        Some((tool, args)) => {
            let out = Command::new(tool)
                .args(args)
                .arg(path)
                .output()
                .map_err(|e| lab_err(format!("cannot run {tool} to decompress {name}: {e}")))?;
            if !out.status.success() {
                return Err(lab_err(format!(
                    "{tool} could not decompress {name}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            Ok(out.stdout)
        }
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

/// A newc ("070701") cpio archive built in memory: owner root, mtime 0, so builds are reproducible
/// and device nodes need no privileges.
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), nlink: u32, data: &[u8]) {
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0,
            0,
            nlink,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            let _ = write!(&mut self.out, "{f:08x}");
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040_755, (0, 0), 2, &[]);
    }
    fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, 0o100_000 | perm, (0, 0), 1, data);
    }
    fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120_777, (0, 0), 1, target.as_bytes());
    }
    fn char_dev(&mut self, name: &str, perm: u32, major: u32, minor: u32) {
        self.entry(name, 0o020_000 | perm, (major, minor), 1, &[]);
    }
    fn finish(mut self) -> Vec<u8> {
        self.ino = 0;
        self.entry("TRAILER!!!", 0, (0, 0), 1, &[]);
        self.out
    }
}

pub use crate::vm::xml::DomainType;

/// Decides how lab guests run: `TWOFOLD_DOMAIN_TYPE=kvm|qemu` if set; else KVM only if /dev/kvm
/// exists and the real guest (kernel + initramfs, `-accel kvm -cpu host`) prints its first
/// heartbeat within a few seconds (a nested /dev/kvm can exist and still hang a Linux guest);
/// else QEMU (TCG). The probe's result is cached in `cache/kvm-probe` until the machine reboots;
/// the decision is written to `cache/domain-type`.
pub fn detect_domain_type(cache: &Path, assets: &GuestAssets) -> DomainType {
    let decided = if let Some(t) = std::env::var("TWOFOLD_DOMAIN_TYPE")
        .ok()
        .and_then(|v| DomainType::parse(&v))
    {
        tracing::info!("domain type {t} from TWOFOLD_DOMAIN_TYPE");
        t
    } else if !Path::new("/dev/kvm").exists() {
        tracing::info!("no /dev/kvm: lab guests run under TCG");
        DomainType::Qemu
    } else {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .unwrap_or_default()
            .trim()
            .to_string();
        let probe_file = cache.join("kvm-probe");
        let cached = std::fs::read_to_string(&probe_file).ok().and_then(|s| {
            let mut w = s.split_whitespace();
            (w.next() == Some(boot_id.as_str()))
                .then(|| w.next().and_then(DomainType::parse))
                .flatten()
        });
        match cached {
            Some(t) => t,
            None => {
                let (t, detail) = match probe_kvm(assets) {
                    Ok(ms) => (DomainType::Kvm, format!("first heartbeat after {ms} ms")),
                    Err(why) => (DomainType::Qemu, why),
                };
                tracing::info!("KVM probe: {t} ({detail})");
                let _ = std::fs::write(&probe_file, format!("{boot_id} {t} {detail}\n"));
                t
            }
        }
    };
    let _ = std::fs::write(cache.join("domain-type"), format!("{decided}\n"));
    decided
}

/// Boots the guest under KVM without a disk; Ok(ms to the first heartbeat) or why it failed.
fn probe_kvm(assets: &GuestAssets) -> std::result::Result<u128, String> {
    let started = Instant::now();
    let child = Command::new("qemu-system-x86_64")
        .args(["-accel", "kvm", "-cpu", "host", "-m", "128", "-smp", "1"])
        .args([
            "-nodefaults",
            "-no-reboot",
            "-display",
            "none",
            "-monitor",
            "none",
        ])
        .args(["-serial", "stdio", "-kernel"])
        .arg(&assets.kernel)
        .arg("-initrd")
        .arg(&assets.initrd)
        .arg("-append")
        .arg(format!("{} twofold.disk=none", kernel_cmdline("kvm-probe")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run qemu-system-x86_64: {e}"))?;
    let mut guard = ChildGuard::new(child);
    let stdout = guard.stdout().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("TFHB ") {
                let _ = tx.send(());
                break;
            }
        }
    });
    let res = rx.recv_timeout(KVM_PROBE_TIMEOUT);
    let elapsed = started.elapsed().as_millis();
    match res {
        Ok(()) => Ok(elapsed),
        Err(_) => {
            guard.kill();
            let mut stderr = String::new();
            if let Some(mut e) = guard.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            let stderr = stderr.trim().replace('\n', " ");
            Err(if stderr.is_empty() {
                format!("no heartbeat within {}s", KVM_PROBE_TIMEOUT.as_secs())
            } else {
                format!("qemu failed: {stderr}")
            })
        }
    }
}

/// A child process that is killed (and reaped) when the guard goes away.
pub struct ChildGuard {
    pub child: Child,
}

impl ChildGuard {
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard { child }
    }

    fn stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

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
    use crate::lab::checker::{check_heartbeats, check_records, encode_record, Record};
    use crate::lab::console::{unix_ms, ConsoleServer};
    use crate::progress::NoProgress;
    use std::io::Write;

    #[test]
    fn load_order_resolves_dependencies() {
        let dep = "\
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko.zst: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
";
        let order = module_load_order(&parse_modules_dep(dep), &ROOT_MODULES).unwrap();
        let names: Vec<String> = order.iter().map(|p| module_name(p)).collect();
        let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
        assert_eq!(names.len(), 6, "{names:?}");
        assert!(pos("virtio_ring") < pos("virtio"));
        assert!(pos("virtio") < pos("virtio_pci"));
        assert!(pos("virtio_pci_modern_dev") < pos("virtio_pci"));
        assert!(pos("virtio_pci_legacy_dev") < pos("virtio_pci"));
        assert_eq!(names.last().unwrap(), "virtio_blk");
        assert!(module_load_order(&parse_modules_dep(dep), &["nvme"]).is_err());
    }

    #[test]
    fn natural_order_of_kernel_packages() {
        let mut v = [
            "linux-image-6.1.0-10-cloud-amd64_6.1.38-1_amd64.deb",
            "linux-image-6.1.0-9-cloud-amd64_6.1.27-1_amd64.deb",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert!(v[1].contains("6.1.0-10"));
    }

    #[test]
    fn cpio_newc_layout() {
        let mut c = Cpio::default();
        c.file("init", 0o755, b"#!/bin/sh\n");
        let out = c.finish();
        assert!(out.starts_with(b"070701"));
        assert_eq!(out.len() % 4, 0);
        let hdr = std::str::from_utf8(&out[..110]).unwrap();
        assert_eq!(&hdr[14..22], "000081ed"); // mode: regular file 0755
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
    }

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

    #[test]
    fn domain_type_parsing() {
        assert_eq!(DomainType::parse("KVM"), Some(DomainType::Kvm));
        assert_eq!(DomainType::parse("tcg"), Some(DomainType::Qemu));
        assert_eq!(DomainType::parse("xen"), None);
    }

    // ---- the real guest under QEMU (needs the packages of installer/install-deps.sh) ----

    /// QEMU guests in tests run one at a time: two TCG guests on two cores disturb each other's
    /// timing.
    static QEMU_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn test_cache() -> PathBuf {
        std::env::var_os("TWOFOLD_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/cache/twofold"))
    }

    fn qemu_img(args: &[&str]) {
        let out = Command::new("qemu-img")
            .args(args)
            .output()
            .expect("qemu-img");
        assert!(
            out.status.success(),
            "qemu-img {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Boots the guest under TCG with its serial connected to `console`, lets it run for `run`
    /// after its first heartbeat, then kills QEMU (a crash). Returns (QEMU start, first heartbeat).
    fn boot(
        assets: &GuestAssets,
        name: &str,
        disk: &Path,
        server: &ConsoleServer,
        run: Duration,
    ) -> (i64, i64) {
        let console = server.local_addr();
        let started = unix_ms();
        let child = Command::new("qemu-system-x86_64")
            .args([
                "-accel",
                "tcg",
                "-m",
                "128",
                "-smp",
                "1",
                "-nographic",
                "-no-reboot",
            ])
            .args(["-nic", "none", "-kernel"])
            .arg(&assets.kernel)
            .arg("-initrd")
            .arg(&assets.initrd)
            .arg("-append")
            .arg(kernel_cmdline(name))
            .arg("-drive")
            .arg(format!("file={},if=virtio,format=qcow2", disk.display()))
            .arg("-chardev")
            .arg(format!(
                "socket,id=s0,host={},port={}",
                console.ip(),
                console.port()
            ))
            .args(["-serial", "chardev:s0", "-monitor", "none"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("qemu-system-x86_64 (run installer/install-deps.sh)");
        let mut guard = ChildGuard::new(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let first = loop {
            if let Some(ms) = first_line_ms(&server.guest_log(name), "TFHB", started) {
                break ms;
            }
            if let Ok(Some(status)) = guard.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = guard.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("qemu exited early ({status}): {err}");
            }
            assert!(
                Instant::now() < deadline,
                "no heartbeat from {name} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(run);
        guard.kill(); // a crash: SIGKILL, no shutdown
        (started, first)
    }

    fn first_line_ms(log: &Path, prefix: &str, since: i64) -> Option<i64> {
        std::fs::read_to_string(log).ok()?.lines().find_map(|l| {
            let (ms, text) = l.split_once('\t')?;
            let ms: i64 = ms.parse().ok()?;
            (ms >= since && text.starts_with(prefix)).then_some(ms)
        })
    }

    fn raw_records(disk: &Path, acked: u64) -> crate::lab::checker::RecordReport {
        let raw = disk.with_extension("raw");
        qemu_img(&[
            "convert",
            "-O",
            "raw",
            &disk.to_string_lossy(),
            &raw.to_string_lossy(),
        ]);
        let mut f = std::fs::File::open(&raw).unwrap();
        check_records(&mut f, acked).unwrap()
    }

    #[test]
    fn real_guest_loses_nothing_across_a_crash_and_a_restart() {
        let _lock = QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let cache = test_cache();
        let assets = build_assets(&cache, &NoProgress).expect("guest assets");
        let work = tempfile::tempdir_in("/var/tmp").unwrap();
        let disk = work.path().join("g1.qcow2");
        let cmd = create_disk_command(&disk, 64);
        let out = Command::new(&cmd[0]).args(&cmd[1..]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let server =
            ConsoleServer::start("127.0.0.1:0".parse().unwrap(), &work.path().join("console"))
                .unwrap();
        let log = server.guest_log("g1");
        let console_log = server.dir().join("console.log");

        // First boot, then a crash (SIGKILL) after ~8 s.
        let (t1, first_hb) = boot(&assets, "g1", &disk, &server, Duration::from_secs(8));
        let boot_line = std::fs::read_to_string(&console_log)
            .unwrap()
            .lines()
            .find(|l| l.contains("TFBOOT"))
            .map(str::to_string)
            .unwrap_or_default();
        eprintln!(
            "boot 1: first heartbeat {} ms after QEMU started; {boot_line}",
            first_hb - t1
        );
        let hb = check_heartbeats(&log, "g1", t1, None).unwrap();
        eprintln!("boot 1 heartbeats: {hb:?}");
        assert!(hb.lines >= 40, "{hb:?}");
        assert_eq!(hb.boots, vec![1]);
        assert_eq!(hb.first_seq, Some(1));
        assert!(hb.missing.is_empty(), "{hb:?}");
        assert!(hb.max_gap_ms < 1000, "{hb:?}");
        assert!(hb.max_acked > 20, "{hb:?}");
        let rec = raw_records(&disk, hb.max_acked);
        eprintln!(
            "boot 1 records: highest {} runs {:?}",
            rec.highest_valid, rec.boot_runs
        );
        assert!(rec.is_clean(), "{rec:?}");
        assert!(rec.highest_valid >= hb.max_acked);
        assert_eq!(rec.header_boot, Some(1));
        let highest1 = rec.highest_valid;

        // Second boot on the same disk: boot 2, continues after the highest record.
        let (t2, first_hb2) = boot(&assets, "g1", &disk, &server, Duration::from_secs(5));
        eprintln!(
            "boot 2: first heartbeat {} ms after QEMU started",
            first_hb2 - t2
        );
        let hb2 = check_heartbeats(&log, "g1", t2, None).unwrap();
        eprintln!("boot 2 heartbeats: {hb2:?}");
        assert_eq!(hb2.boots, vec![2], "{hb2:?}");
        assert!(hb2.missing.is_empty(), "{hb2:?}");
        assert!(hb2.max_acked > highest1, "{hb2:?}");
        let rec2 = raw_records(&disk, hb2.max_acked);
        eprintln!(
            "boot 2 records: highest {} runs {:?}",
            rec2.highest_valid, rec2.boot_runs
        );
        assert!(rec2.is_clean(), "{rec2:?}");
        assert_eq!(rec2.header_boot, Some(2));
        assert_eq!(rec2.boot_runs.len(), 2, "{rec2:?}");
        assert_eq!(
            (rec2.boot_runs[0].boot, rec2.boot_runs[0].last_seq),
            (1, highest1)
        );
        assert_eq!(
            (rec2.boot_runs[1].boot, rec2.boot_runs[1].first_seq),
            (2, highest1 + 1)
        );
        server.stop();
    }

    #[test]
    fn kvm_probe_decides_and_is_cached() {
        let _lock = QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let assets = build_assets(&test_cache(), &NoProgress).expect("guest assets");
        let cache = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let first = detect_domain_type(cache.path(), &assets);
        let probe_ms = t.elapsed().as_millis();
        let probe = std::fs::read_to_string(cache.path().join("kvm-probe")).unwrap_or_default();
        eprintln!(
            "domain type {first} after {probe_ms} ms; probe: {}",
            probe.trim()
        );
        let t = Instant::now();
        assert_eq!(detect_domain_type(cache.path(), &assets), first);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "second call uses the cached probe"
        );
        let written = std::fs::read_to_string(cache.path().join("domain-type")).unwrap();
        assert_eq!(written.trim(), first.as_str());
        if !Path::new("/dev/kvm").exists() {
            assert_eq!(first, DomainType::Qemu);
        }
    }

    #[test]
    fn real_guest_scans_a_full_64_mib_disk_quickly() {
        let _lock = QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let assets = build_assets(&test_cache(), &NoProgress).expect("guest assets");
        let work = tempfile::tempdir_in("/var/tmp").unwrap();
        // A 64 MiB disk already full of valid records from boot 1 (the worst case for the scan).
        let raw = work.path().join("full.raw");
        let sectors = 64 * 1024 * 1024 / 512u64;
        {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&raw).unwrap());
            f.write_all(&[0u8; 512]).unwrap();
            for seq in 1..sectors {
                let r = Record {
                    seq,
                    boot: 1,
                    mono_ns: 0,
                    unix_ns: 0,
                    name: "full".into(),
                };
                f.write_all(&encode_record(&r)).unwrap();
            }
        }
        let disk = work.path().join("full.qcow2");
        qemu_img(&[
            "convert",
            "-O",
            "qcow2",
            &raw.to_string_lossy(),
            &disk.to_string_lossy(),
        ]);
        let server =
            ConsoleServer::start("127.0.0.1:0".parse().unwrap(), &work.path().join("console"))
                .unwrap();
        boot(&assets, "full", &disk, &server, Duration::from_secs(2));
        let text = std::fs::read_to_string(server.dir().join("console.log")).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("TFBOOT"))
            .expect("TFBOOT line");
        eprintln!("{line}");
        let scan_ms: u64 = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("scan_ms="))
            .and_then(|v| v.parse().ok())
            .expect("scan_ms");
        assert!(line.contains(&format!("next_record={sectors}")), "{line}");
        assert!(line.contains("boot=2"), "{line}");
        assert!(scan_ms < 2000, "scanning 64 MiB took {scan_ms} ms");
        assert!(text.contains("disk full"), "the writer reports a full disk");
        let hb = check_heartbeats(&server.guest_log("full"), "full", 0, None).unwrap();
        assert!(hb.lines > 10, "heartbeat goes on with a full disk: {hb:?}");
        server.stop();
    }
}

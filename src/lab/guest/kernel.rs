//! The guest's kernel: Debian's cloud kernel package, found in the package caches and unpacked
//! with `dpkg -x`, and the virtio disk modules it needs with their dependencies, in load order.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{lab_err, run};
use crate::error::{IoContext, Result};
use crate::progress::Progress;

/// Modules the guest needs for its disk; their dependencies come from modules.dep.
pub(super) const ROOT_MODULES: [&str; 2] = ["virtio_pci", "virtio_blk"];
/// Where installer/install-deps.sh puts the kernel package.
pub(super) const DEFAULT_DEB_DIR: &str = "/var/cache/twofold/debs";

pub(super) fn deb_dirs(cache: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![cache.join("debs")];
    if let Some(c) = std::env::var_os("TWOFOLD_CACHE") {
        dirs.push(PathBuf::from(c).join("debs"));
    }
    dirs.push(PathBuf::from(DEFAULT_DEB_DIR));
    dirs.dedup();
    dirs
}

pub(super) fn find_kernel_deb(cache: &Path) -> Result<PathBuf> {
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
pub(super) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
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

pub(super) fn kernel_version(root: &Path) -> Result<String> {
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
pub(super) fn parse_modules_dep(text: &str) -> Vec<(String, Vec<String>)> {
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
pub(super) fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

/// Paths of `roots` and everything they depend on, each after its dependencies.
pub(super) fn module_load_order(
    deps: &[(String, Vec<String>)],
    roots: &[&str],
) -> Result<Vec<String>> {
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
pub(super) fn read_module(path: &Path) -> Result<Vec<u8>> {
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

/// The kernel package, unpacked: its version, its image, its modules folder and the disk modules
/// with their dependencies in load order (paths relative to the modules folder).
pub(super) struct Kernel {
    pub version: String,
    pub vmlinuz: PathBuf,
    pub moddir: PathBuf,
    pub modules: Vec<String>,
}

/// Unpack the kernel package `deb` (file name `deb_name`) under `build/deb` and find its disk
/// modules. Reports the unpacking as the image build's first step.
pub(super) fn unpack(
    deb: &Path,
    deb_name: &str,
    build: &Path,
    progress: &dyn Progress,
) -> Result<Kernel> {
    let root = build.join("deb");
    run(
        Command::new("dpkg").arg("-x").arg(deb).arg(&root),
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
    Ok(Kernel {
        version,
        vmlinuz,
        moddir,
        modules: order,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

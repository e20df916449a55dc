//! The guest's initramfs: a newc cpio archive of busybox-static (with a link per applet), the
//! workload and the disk modules, built in memory.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::kernel::{module_name, read_module};
use super::{lab_err, run, INIT_SH};
use crate::error::{IoContext, Result};

pub(super) fn find_busybox() -> Result<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox", "/usr/sbin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            lab_err("busybox is missing: install busybox-static (installer/install-deps.sh)")
        })
}

/// Applet paths relative to / (`bin/sh`, `sbin/insmod`, ...), from the busybox binary itself.
pub(super) fn busybox_applets(busybox: &Path) -> Result<Vec<String>> {
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
pub(super) fn elf_is_dynamic(elf: &[u8]) -> bool {
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

/// A newc ("070701") cpio archive built in memory: owner root, mtime 0, so builds are reproducible
/// and device nodes need no privileges.
#[derive(Default)]
pub(super) struct Cpio {
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

    pub(super) fn dir(&mut self, name: &str) {
        self.entry(name, 0o040_755, (0, 0), 2, &[]);
    }
    pub(super) fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, 0o100_000 | perm, (0, 0), 1, data);
    }
    pub(super) fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120_777, (0, 0), 1, target.as_bytes());
    }
    pub(super) fn char_dev(&mut self, name: &str, perm: u32, major: u32, minor: u32) {
        self.entry(name, 0o020_000 | perm, (major, minor), 1, &[]);
    }
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.ino = 0;
        self.entry("TRAILER!!!", 0, (0, 0), 1, &[]);
        self.out
    }
}

/// Put the initramfs together (`/init`, busybox and its applet links, the workload, the disk
/// modules and their load order) and write it gzipped under `build`; returns its path.
pub(super) fn write(
    build: &Path,
    busybox: &Path,
    busybox_bytes: &[u8],
    workload: &[u8],
    moddir: &Path,
    modules: &[String],
) -> Result<PathBuf> {
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
    cpio.file("bin/busybox", 0o755, busybox_bytes);
    for applet in busybox_applets(busybox)? {
        if applet != "bin/busybox" && applet != "linuxrc" {
            cpio.symlink(&applet, "/bin/busybox");
        }
    }
    cpio.file("bin/workload", 0o755, workload);
    let mut load_order = String::new();
    for rel in modules {
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
    Ok(build.join("initrd.cpio.gz"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

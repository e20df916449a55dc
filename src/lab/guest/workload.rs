//! The guest's workload (`resources/guest/workload.c`), compiled statically at lab time so that it
//! runs in the initramfs without a C library.

use std::path::Path;
use std::process::Command;

use super::initramfs::elf_is_dynamic;
use super::{lab_err, run, WORKLOAD_C};
use crate::error::{IoContext, Result};

/// Compile the workload under `build`; returns the executable.
pub(super) fn compile(build: &Path) -> Result<Vec<u8>> {
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
    Ok(workload_bytes)
}

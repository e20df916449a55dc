//! How lab guests run: under KVM when this machine's KVM really boots the guest, else under QEMU's
//! emulation (TCG), decided once per boot of the machine.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{kernel_cmdline, GuestAssets};
pub use crate::vm::xml::DomainType;

/// How long the KVM probe waits for the guest's first heartbeat.
pub(super) const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(20);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_type_parsing() {
        assert_eq!(DomainType::parse("KVM"), Some(DomainType::Kvm));
        assert_eq!(DomainType::parse("tcg"), Some(DomainType::Qemu));
        assert_eq!(DomainType::parse("xen"), None);
    }
}

//! The hosts' hardware virtualization: the CPU's vmx/svm flag and /dev/kvm, and whether this
//! machine is itself a virtual machine.

use std::collections::HashSet;

use super::{remote, Judgement, PreflightOptions, Status};
use crate::node::Session;
use crate::nodes::NodeSpec;

pub(super) const CPU_VIRT_COMMAND: &str = "grep -m1 -E '^flags[[:space:]]*:' /proc/cpuinfo; if [ -c /dev/kvm ]; then echo kvm=yes; else echo kvm=no; fi";

/// Parse the output of [`CPU_VIRT_COMMAND`]: the CPU flags and whether /dev/kvm exists.
pub(super) fn parse_cpu_virt(text: &str) -> (HashSet<String>, bool) {
    let mut flags = HashSet::new();
    let mut kvm = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("flags") {
            if let Some((_, list)) = rest.split_once(':') {
                flags.extend(list.split_whitespace().map(str::to_string));
            }
        } else if line.trim() == "kvm=yes" {
            kvm = true;
        }
    }
    (flags, kvm)
}

pub(super) fn judge_cpu_virt(flags: &HashSet<String>, kvm: bool) -> Judgement {
    let vendor = if flags.contains("vmx") {
        Some("Intel VT-x")
    } else if flags.contains("svm") {
        Some("AMD-V")
    } else {
        None
    };
    let nested = flags.contains("hypervisor");
    let why = "A host runs VMs with KVM, the CPU's hardware virtualization; without it QEMU would emulate every instruction and VMs would run many times slower.";
    match (kvm, vendor) {
        (true, _) if nested => Judgement::warn(
            "KVM is available (/dev/kvm), but this machine is itself a virtual machine",
            "VMs on this host would run nested, inside another hypervisor: slower, and live migration and failover are less reliable. That is fine for a trial, not for the business's VMs.",
            "For production, install the host directly on the hardware.",
        ),
        (true, v) => Judgement::pass(
            format!(
                "KVM is available (/dev/kvm{})",
                v.map(|v| format!(", CPU with {v}")).unwrap_or_default()
            ),
            "The host can run VMs with hardware virtualization.",
        ),
        (false, Some(v)) => Judgement::fail(
            format!("the CPU has {v}, but /dev/kvm is missing"),
            format!("{why} The KVM kernel module is not loaded, or the firmware has virtualization turned off."),
            "Load the module as root: 'modprobe kvm_intel' (Intel) or 'modprobe kvm_amd' (AMD). If that reports 'disabled by bios', turn on Intel VT-x or AMD-V (often called 'Virtualization Technology' or 'SVM Mode') in the machine's firmware (BIOS/UEFI) setup, then switch the machine off and on.",
        ),
        (false, None) if nested => Judgement::fail(
            "this machine is a virtual machine without nested virtualization (no vmx or svm CPU flag, no /dev/kvm)",
            why,
            "Turn on nested virtualization for this VM in the hypervisor that runs it, or better, install the host directly on the hardware.",
        ),
        (false, None) => Judgement::fail(
            "the CPU offers no hardware virtualization (no vmx or svm flag) and /dev/kvm is missing",
            why,
            "Turn on Intel VT-x or AMD-V (often called 'Virtualization Technology' or 'SVM Mode') in the machine's firmware (BIOS/UEFI) setup, then switch the machine off and on. If there is no such setting, this CPU cannot be a host.",
        ),
    }
}

pub(super) async fn probe_cpu_virt(
    node: &NodeSpec,
    s: &Session,
    opts: &PreflightOptions,
) -> Judgement {
    match remote(s, CPU_VIRT_COMMAND, opts).await {
        Err(e) => Judgement::unable(&node.name, "the CPU's features", &e),
        Ok(out) => {
            let (flags, kvm) = parse_cpu_virt(&out.stdout_text());
            let j = judge_cpu_virt(&flags, kvm);
            if j.status == Status::Fail && opts.allow_emulation {
                Judgement::warn(
                    j.found,
                    "Without hardware virtualization QEMU emulates every instruction: VMs run many times slower. Accepted because emulation was allowed (a lab or a trial).",
                    j.fix,
                )
            } else {
                j
            }
        }
    }
}

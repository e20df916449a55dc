//! The parsing and judging, without a machine.

use super::*;
use super::{clock::*, network::*, packages::*, system::*, virtualization::*};

fn spec(name: &str, role: Role, address: &str) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        role,
        address: address.into(),
        ssh_port: 22,
        user: "root".into(),
        key: None,
        host_key: None,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const DEBIAN_12: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"#;

#[test]
fn os_release_parses_and_judges() {
    let os = parse_os_release(DEBIAN_12);
    assert_eq!(os.id, "debian");
    assert_eq!(os.version_id.as_deref(), Some("12"));
    assert_eq!(
        os.pretty_name.as_deref(),
        Some("Debian GNU/Linux 12 (bookworm)")
    );
    let j = judge_os(&os);
    assert_eq!(j.status, Status::Pass);
    assert_eq!(j.found, "Debian GNU/Linux 12 (bookworm)");
    assert!(j.fix.is_empty());

    let d11 = parse_os_release(&DEBIAN_12.replace("\"12\"", "\"11\""));
    assert_eq!(judge_os(&d11).status, Status::Warn);
    // Debian testing has no VERSION_ID.
    let testing = parse_os_release("ID=debian\nPRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\n");
    assert_eq!(judge_os(&testing).status, Status::Warn);

    let ubuntu = parse_os_release(
        "# comment\n\nNAME='Ubuntu'\nID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\nPRETTY_NAME=\"Ubuntu 24.04 \\\"Noble\\\"\"\n",
    );
    assert_eq!(ubuntu.id_like, vec!["debian"]);
    assert_eq!(
        ubuntu.pretty_name.as_deref(),
        Some("Ubuntu 24.04 \"Noble\"")
    );
    let j = judge_os(&ubuntu);
    assert_eq!(j.status, Status::Warn);
    assert!(j.fix.contains("Debian 12"));

    let fedora = parse_os_release("ID=fedora\nVERSION_ID=40\nPRETTY_NAME=\"Fedora Linux 40\"\n");
    let j = judge_os(&fedora);
    assert_eq!(
        (j.status, j.found.as_str()),
        (Status::Fail, "Fedora Linux 40")
    );
    assert!(j.fix.contains("Install Debian 12"));
    // A Debian derivative that is not Debian or Ubuntu.
    let mint = parse_os_release("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n");
    assert_eq!(judge_os(&mint).status, Status::Fail);

    let empty = judge_os(&parse_os_release(""));
    assert_eq!(empty.status, Status::Fail);
    assert!(empty.found.contains("no operating system name"));
}

#[test]
fn cpu_virt_needs_kvm() {
    let (flags, kvm) = parse_cpu_virt("flags\t\t: fpu vme vmx sse2\nkvm=yes\n");
    assert!(flags.contains("vmx") && kvm);
    let j = judge_cpu_virt(&flags, kvm);
    assert_eq!(j.status, Status::Pass);
    assert!(j.found.contains("Intel VT-x"), "{}", j.found);

    let (flags, kvm) = parse_cpu_virt("flags : fpu svm\nkvm=no\n");
    let j = judge_cpu_virt(&flags, kvm);
    assert_eq!(j.status, Status::Fail);
    assert!(j.found.contains("AMD-V"));
    assert!(j.fix.contains("modprobe kvm_amd"));

    let (flags, kvm) = parse_cpu_virt("flags : fpu sse2\nkvm=no\n");
    let j = judge_cpu_virt(&flags, kvm);
    assert_eq!(j.status, Status::Fail);
    assert!(j.fix.contains("firmware (BIOS/UEFI)"), "{}", j.fix);

    // /dev/kvm without the flags (some kernels provide KVM otherwise): KVM works, that counts.
    let (flags, kvm) = parse_cpu_virt("flags : fpu sse2\nkvm=yes\n");
    assert_eq!(judge_cpu_virt(&flags, kvm).status, Status::Pass);

    // Inside a VM.
    let (flags, kvm) = parse_cpu_virt("flags : fpu vmx hypervisor\nkvm=yes\n");
    assert_eq!(judge_cpu_virt(&flags, kvm).status, Status::Warn);
    let (flags, kvm) = parse_cpu_virt("flags : fpu hypervisor\nkvm=no\n");
    let j = judge_cpu_virt(&flags, kvm);
    assert_eq!(j.status, Status::Fail);
    assert!(j.fix.contains("nested virtualization"));
}

#[test]
fn cores_by_role() {
    let h = RoleLimits::host_default();
    let s = RoleLimits::storage_default();
    assert_eq!(judge_cores(1, Role::Host, &h).status, Status::Fail);
    assert_eq!(judge_cores(2, Role::Host, &h).status, Status::Warn);
    let j = judge_cores(4, Role::Host, &h);
    assert_eq!((j.status, j.found.as_str()), (Status::Pass, "4 cores"));
    let j = judge_cores(1, Role::Storage, &s);
    assert_eq!((j.status, j.found.as_str()), (Status::Warn, "1 core"));
    assert_eq!(judge_cores(2, Role::Storage, &s).status, Status::Pass);
}

#[test]
fn meminfo_and_ram() {
    let text = "MemTotal:        8073280 kB\nMemFree:          123456 kB\n";
    assert_eq!(parse_meminfo(text), Some(8073280));
    assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
    assert_eq!(parse_meminfo("MemTotal: lots\n"), None);

    let h = RoleLimits::host_default();
    // An 8 GiB machine reports about 7.7 GiB: still a pass.
    let j = judge_ram(8073280 / 1024, Role::Host, &h);
    assert_eq!(
        (j.status, j.found.as_str()),
        (Status::Pass, "7.7 GiB of RAM")
    );
    assert_eq!(judge_ram(3900, Role::Host, &h).status, Status::Warn);
    assert_eq!(judge_ram(1900, Role::Host, &h).status, Status::Fail);
    let s = RoleLimits::storage_default();
    assert_eq!(judge_ram(1900, Role::Storage, &s).status, Status::Pass);
    assert_eq!(judge_ram(512, Role::Storage, &s).status, Status::Fail);
}

#[test]
fn df_parses() {
    let text = "/var/lib\nFilesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/vda         264212084 22990448  72295440      25% /\n";
    let df = parse_df(text).unwrap();
    assert_eq!(
        df,
        DfLine {
            filesystem: "/dev/vda".into(),
            total_kib: 264212084,
            used_kib: 22990448,
            available_kib: 72295440,
            mount_point: "/".into(),
        }
    );
    let spaced = "Filesystem 1024-blocks Used Available Capacity Mounted on\nmy fs 100 50 50 50% /mnt/my data\n";
    let df = parse_df(spaced).unwrap();
    assert_eq!(df.filesystem, "my fs");
    assert_eq!(df.mount_point, "/mnt/my data");
    assert_eq!(df.available_kib, 50);
    assert_eq!(parse_df("df: /nope: No such file or directory\n"), None);
    assert_eq!(parse_df(""), None);
}

#[test]
fn disk_by_role() {
    let df = |avail_gib: u64, mount: &str| DfLine {
        filesystem: "/dev/sda1".into(),
        total_kib: 1 << 40,
        used_kib: 0,
        available_kib: avail_gib * 1024 * 1024,
        mount_point: mount.into(),
    };
    let h = RoleLimits::host_default();
    let s = RoleLimits::storage_default();
    let j = judge_disk("/var/lib/libvirt", "/var/lib", &df(50, "/"), Role::Host, &h);
    assert_eq!(j.status, Status::Pass);
    assert_eq!(
        j.found,
        "50 GiB free on / (/var/lib/libvirt does not exist yet and will be created there)"
    );
    let j = judge_disk(
        "/var/lib/libvirt",
        "/var/lib/libvirt",
        &df(3, "/"),
        Role::Host,
        &h,
    );
    assert_eq!(j.status, Status::Fail);
    assert!(j.found.starts_with("3 GiB free at /var/lib/libvirt"));
    assert_eq!(
        judge_disk("/srv", "/srv", &df(50, "/srv"), Role::Storage, &s).status,
        Status::Warn
    );
    assert_eq!(
        judge_disk("/srv", "/srv", &df(500, "/srv"), Role::Storage, &s).status,
        Status::Pass
    );
    // Enough space, but on the root filesystem.
    let j = judge_disk("/srv", "/srv", &df(500, "/"), Role::Storage, &s);
    assert_eq!(j.status, Status::Warn);
    assert!(j.reason.contains("root filesystem"));
    assert!(disk_command("/srv/it's").contains(r"p='/srv/it'\''s'"));
}

#[test]
fn packages_missing_warn_with_the_apt_command() {
    let wanted = strings(&["libvirt-daemon-system", "qemu-utils", "glusterfs-client"]);
    // qemu-utils removed but its configuration kept ("rc "), glusterfs-client unknown.
    let out = "libvirt-daemon-system ii \nqemu-utils rc \n";
    let missing = parse_dpkg_status(out, &wanted).unwrap();
    assert_eq!(missing, strings(&["qemu-utils", "glusterfs-client"]));

    let j = judge_packages("host1", Role::Host, &wanted, Some(&missing), false);
    assert_eq!(j.status, Status::Warn);
    assert_eq!(j.found, "not installed: qemu-utils, glusterfs-client");
    assert_eq!(j.fix, "apt-get install -y qemu-utils glusterfs-client");

    let j = judge_packages("host1", Role::Host, &wanted, Some(&missing), true);
    assert_eq!(j.status, Status::Fail);
    assert_eq!(
        j.fix,
        "Run as root on host1: apt-get update && apt-get install -y qemu-utils glusterfs-client"
    );

    let all = "libvirt-daemon-system ii \nqemu-utils ii \nglusterfs-client:amd64 ii \n";
    let j = judge_packages(
        "host1",
        Role::Host,
        &wanted,
        parse_dpkg_status(all, &wanted).as_deref(),
        false,
    );
    assert_eq!(j.status, Status::Pass);

    assert_eq!(parse_dpkg_status("no-dpkg\n", &wanted), None);
    assert_eq!(
        judge_packages("n", Role::Storage, &wanted, None, false).status,
        Status::Fail
    );
    assert_eq!(
        packages_command(&strings(&["a1", "b2"])),
        "command -v dpkg-query >/dev/null 2>&1 || { echo no-dpkg; exit 0; }; dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' a1 b2 2>/dev/null; exit 0"
    );
    assert!(valid_package_name("qemu-system-x86"));
    assert!(valid_package_name("libstdc++6"));
    for bad in ["", "a", "Qemu", "-x", "x y", "x;rm", "x'"] {
        assert!(!valid_package_name(bad), "{bad:?}");
    }
}

#[test]
fn clock_offset_compensates_half_the_round_trip() {
    // Sent at 1000 ms, answered at 1100 ms; the node read 1050 ms + 2 s on its clock.
    let (off, rtt) = clock_offset(1_000_000_000, 3_050_000_000, 1_100_000_000);
    assert!((off - 2.0).abs() < 1e-9, "{off}");
    assert!((rtt - 0.1).abs() < 1e-9);

    let o = PreflightOptions::default();
    let j = judge_clock(0.1, 0.002, Some(true), &o);
    assert_eq!(j.status, Status::Pass);
    assert!(j
        .found
        .starts_with("0.100 s ahead of this computer's clock"));
    assert_eq!(judge_clock(-0.6, 0.002, None, &o).status, Status::Warn);
    let j = judge_clock(-6.0, 0.002, None, &o);
    assert_eq!(j.status, Status::Fail);
    assert!(j.found.contains("6.000 s behind"), "{}", j.found);
    assert!(j.fix.contains("chrony"));
    // Right now, but not kept right.
    let j = judge_clock(0.01, 0.002, Some(false), &o);
    assert_eq!(j.status, Status::Warn);
    assert!(j.found.ends_with("time synchronization is off"));
    // Exactly at the threshold still passes.
    assert_eq!(judge_clock(0.5, 0.0, None, &o).status, Status::Pass);
}

#[test]
fn reach_parses_and_judges() {
    let rtts =
        parse_reach("1700000000.000100 1700000000.000300\n1700000000,5 1700000000,5015\nbad\n");
    assert_eq!(rtts.len(), 2);
    assert!((rtts[0] - 0.0002).abs() < 1e-6, "{rtts:?}");
    assert!((rtts[1] - 0.0015).abs() < 1e-6, "{rtts:?}");

    let o = PreflightOptions::default();
    let peer = spec("stor1", Role::Storage, "10.0.0.12");
    let j = judge_reach("host1", &peer, 0, &[0.0004, 0.0002], "", &o);
    assert_eq!(j.status, Status::Pass);
    assert_eq!(j.found, "host1 reaches 10.0.0.12:22; round trip 0.20 ms");
    let j = judge_reach("host1", &peer, 0, &[0.012], "", &o);
    assert_eq!(j.status, Status::Warn);
    assert!(j.fix.contains("same local network"));
    // Timed out after one connection: what was measured counts.
    assert_eq!(
        judge_reach("host1", &peer, 124, &[0.001], "", &o).status,
        Status::Pass
    );
    let j = judge_reach("host1", &peer, 124, &[], "", &o);
    assert_eq!(j.status, Status::Fail);
    assert_eq!(j.found, "no answer from 10.0.0.12:22 within 3 s");
    let j = judge_reach(
        "host1",
        &peer,
        3,
        &[],
        "bash: connect: Connection refused\nbash: line 1: /dev/tcp/10.0.0.12/22: Connection refused\n",
        &o,
    );
    assert_eq!(j.status, Status::Fail);
    assert_eq!(
        j.found,
        "host1 cannot connect to 10.0.0.12:22: Connection refused"
    );
    assert!(j.fix.contains("SSH server of stor1"));
    let j = judge_reach(
        "host1",
        &peer,
        3,
        &[],
        "bash: connect: No route to host\n",
        &o,
    );
    assert!(j.fix.contains("network cables"));
    assert_eq!(
        judge_reach("host1", &peer, 127, &[], "bash: command not found", &o).status,
        Status::Fail
    );

    let v6 = spec("stor2", Role::Storage, "fd00::12");
    let j = judge_reach("host1", &v6, 124, &[], "", &o);
    assert_eq!(j.found, "no answer from [fd00::12]:22 within 3 s");

    let cmd = reach_command("10.0.0.12", 22, 3);
    assert!(cmd.starts_with("timeout 3 bash -c 'for i in 1 2 3; do"));
    assert!(cmd.ends_with("twofold-reach '10.0.0.12' 22"));
}

#[test]
fn resolve_parses_and_judges() {
    let map = parse_resolve("stor1 10.0.0.12\nstor1 fe80::1\nhost2 127.0.1.1\n");
    assert_eq!(map["stor1"], strings(&["10.0.0.12", "fe80::1"]));

    let stor1 = spec("stor1", Role::Storage, "10.0.0.12");
    let j = judge_resolve("host1", &stor1, &map["stor1"]);
    assert_eq!(j.status, Status::Pass);

    let host2 = spec("host2", Role::Host, "10.0.0.2");
    let j = judge_resolve("host1", &host2, &map["host2"]);
    assert_eq!(j.status, Status::Warn);
    assert_eq!(
        j.found,
        "on host1, 'host2' resolves to 127.0.1.1, but the node list gives 10.0.0.2"
    );
    assert!(j.fix.contains("'10.0.0.2 host2'"));

    let j = judge_resolve("host1", &stor1, &[]);
    assert_eq!(j.status, Status::Warn);
    assert_eq!(j.found, "host1 cannot resolve the name 'stor1'");
    assert!(
        j.fix
            .starts_with("Setup writes the line '10.0.0.12 stor1' to /etc/hosts on host1"),
        "{}",
        j.fix
    );

    // Given by DNS name: any address will do.
    let named = spec("stor2", Role::Storage, "stor2.example.com");
    assert_eq!(
        judge_resolve("host1", &named, &strings(&["192.0.2.7"])).status,
        Status::Pass
    );
    assert!(judge_resolve("host1", &named, &[])
        .fix
        .contains("with stor2's IP address"));
    assert_eq!(
        resolve_command(&["a", "b"]),
        "for n in 'a' 'b'; do timeout 5 getent hosts \"$n\" | while read -r ip rest; do printf '%s %s\\n' \"$n\" \"$ip\"; done; done; exit 0"
    );
}

#[test]
fn options_are_validated() {
    PreflightOptions::default().validate().unwrap();
    let o = PreflightOptions {
        host_data_path: "var/lib/libvirt".into(),
        storage_packages: strings(&["glusterfs-server", "x; rm -rf /"]),
        clock_warn_secs: 10.0,
        command_timeout_secs: 0,
        ..Default::default()
    };
    let e = o.validate().unwrap_err();
    assert_eq!(e.code(), "invalid_input");
    let e = e.to_string();
    for want in [
        "host_data_path 'var/lib/libvirt' is not an absolute path",
        "'x; rm -rf /' is not a Debian package name",
        "clock_warn_secs (10) and clock_fail_secs (5)",
        "command_timeout_secs is 0",
    ] {
        assert!(e.contains(want), "missing {want:?} in {e}");
    }
    let mut o = PreflightOptions::default();
    o.storage_limits.min_ram_mib = 1 << 20;
    assert!(o
        .validate()
        .unwrap_err()
        .to_string()
        .contains("storage_limits"));
    // From the app, with defaults for what it leaves out; misspelt fields are refused.
    let o: PreflightOptions = serde_json::from_str(r#"{"no_install": true}"#).unwrap();
    assert!(o.no_install && o.storage_data_path == "/srv");
    assert!(serde_json::from_str::<PreflightOptions>(r#"{"no_instal": true}"#).is_err());
}

fn result(node: &str, check: CheckId, status: Status, peer: Option<&str>) -> CheckResult {
    Judgement {
        status,
        found: "f".into(),
        reason: "r".into(),
        fix: String::new(),
    }
    .into_result(node, check, peer)
}

#[test]
fn report_summary_and_serialization() {
    let facts = vec![NodeFacts {
        node: "host1".into(),
        role: Role::Host,
        os: Some("Debian GNU/Linux 12 (bookworm)".into()),
        cores: Some(8),
        ram_mib: Some(32000),
        data_path: "/var/lib/libvirt".into(),
        free_disk_gib: Some(100),
        clock_offset_ms: Some(1.5),
    }];
    let r = PreflightReport::new(
        vec![
            result("host1", CheckId::Os, Status::Pass, None),
            result("host1", CheckId::CpuVirt, Status::Pass, None),
        ],
        facts.clone(),
    );
    assert!(r.passed());
    assert_eq!(r.summary, "All 2 checks on 1 node passed.");

    let r = PreflightReport::new(
        vec![
            result("host1", CheckId::Os, Status::Pass, None),
            result("host1", CheckId::Packages, Status::Warn, None),
        ],
        facts.clone(),
    );
    assert!(r.passed());
    assert_eq!(
        r.summary,
        "2 checks on 1 node: 1 passed, 1 with warnings. Setup can go ahead; read the warnings first."
    );

    let r = PreflightReport::new(
        vec![
            result("host1", CheckId::CpuVirt, Status::Fail, None),
            result("host1", CheckId::Reach, Status::Fail, Some("stor1")),
            result("host1", CheckId::Resolve, Status::Warn, Some("stor1")),
        ],
        facts,
    );
    assert!(!r.passed());
    assert_eq!(r.count(Status::Fail), 2);
    assert_eq!(
        r.summary,
        "3 checks on 1 node: 0 passed, 1 with warnings, 2 failed: host1 (hardware virtualization), host1 (network connection to stor1). Fix what failed, then run the checks again."
    );
    assert_eq!(
        r.get("host1", CheckId::Reach, Some("stor1"))
            .unwrap()
            .status,
        Status::Fail
    );
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["passed"], false);
    assert_eq!(v["results"][0]["check"], "cpu_virt");
    assert_eq!(v["results"][0]["status"], "fail");
    assert!(v["results"][0].get("peer").is_none());
    assert_eq!(v["results"][1]["peer"], "stor1");
    assert_eq!(v["facts"][0]["role"], "host");

    let hosts = r.sizing_hosts();
    assert_eq!((hosts[0].cores, hosts[0].ram_mib), (8, 32000));
    assert!(r.sizing_storage().is_empty());
    for id in [CheckId::Os, CheckId::CpuVirt, CheckId::Resolve] {
        assert_eq!(serde_json::to_value(id).unwrap(), id.as_str());
    }
    assert!(!CheckId::per_node(Role::Storage).contains(&CheckId::CpuVirt));
}

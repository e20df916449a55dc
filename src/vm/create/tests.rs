//! Checks made before anything changes, against libvirt's test driver (the whole creation runs
//! against real libvirt and the replicated store in the lab tests).

use std::io::Write;

use super::*;
use crate::hypervisor::tests::{dom, test_host, unreachable_host, Recorder};

fn kernel_spec(name: &str, host: &str) -> CreateSpec {
    CreateSpec {
        name: name.into(),
        host: host.into(),
        vcpus: 1,
        memory_mib: 128,
        disk_gib: 1,
        source: Source::Kernel {
            kernel: "/boot/vmlinuz".into(),
            initrd: "/boot/initrd.img".into(),
            cmdline: "console=ttyS0".into(),
        },
        protected: true,
        priority: 50,
        console: None,
        no_start: false,
    }
}

/// A test host with a `twofold` pool of `avail_gib` free and one volume, `old.qcow2`. The test
/// driver's pools hold 100 GiB and count free space as that minus their volumes' allocation.
fn host_with_pool(dir: &Path, name: &str, avail_gib: u64) -> HostTarget {
    let t = test_host(dir, name, &[dom("web", true)]);
    let path = dir.join(format!("{name}.xml"));
    let body = std::fs::read_to_string(&path).unwrap();
    let pool = format!(
        "<pool type='dir'><name>{POOL}</name>\
         <target><path>/store/images</path></target>\
         <volume type='file'><name>old.qcow2</name><capacity unit='GiB'>1</capacity>\
         <allocation unit='GiB'>{}</allocation>\
         <target><path>/store/images/old.qcow2</path></target></volume></pool>",
        100 - avail_gib
    );
    std::fs::write(&path, body.replace("</node>", &format!("{pool}</node>"))).unwrap();
    t
}

fn err_of(hosts: &[HostTarget], inv: &Inventory, spec: &CreateSpec) -> Error {
    create_blocking(hosts, inv, spec, &Recorder::default()).unwrap_err()
}

/// Nothing changed: no job, no event, no VM in the inventory.
fn assert_untouched(inv: &Inventory) {
    assert!(inv.jobs(10).unwrap().is_empty());
    assert!(inv.events(10).unwrap().is_empty());
    assert!(inv.vms().unwrap().is_empty());
}

#[test]
fn bad_specs_are_refused_with_every_problem_named() {
    let mut s = kernel_spec("-bad name", "host1");
    s.vcpus = 0;
    s.memory_mib = 10;
    s.disk_gib = 0;
    s.priority = 101;
    let e = s.validate().unwrap_err().to_string();
    for part in [
        "not a usable VM name",
        "0 vCPUs",
        "10 MiB",
        "0 GiB disk",
        "priority 101",
        "Nothing was changed",
    ] {
        assert!(e.contains(part), "{part}: {e}");
    }
    let mut s = kernel_spec("ok", "host1");
    s.source = Source::Kernel {
        kernel: "vmlinuz".into(),
        initrd: "/i".into(),
        cmdline: String::new(),
    };
    assert!(s
        .validate()
        .unwrap_err()
        .to_string()
        .contains("must be absolute"));
    assert!(valid_name("erp-2_db") && !valid_name("") && !valid_name(&"a".repeat(65)));
}

#[test]
fn source_files_must_be_what_they_claim() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = kernel_spec("vm1", "host1");

    let missing = dir.path().join("missing.iso");
    spec.source = Source::Iso { path: missing };
    assert!(spec
        .validate()
        .unwrap_err()
        .to_string()
        .contains("cannot open the install ISO"));

    let not_iso = dir.path().join("notes.iso");
    std::fs::write(&not_iso, vec![7u8; 40_000]).unwrap();
    spec.source = Source::Iso { path: not_iso };
    assert!(spec
        .validate()
        .unwrap_err()
        .to_string()
        .contains("not an ISO image"));

    let iso = dir.path().join("real.iso");
    let mut data = vec![0u8; 40_000];
    data[32769..32774].copy_from_slice(b"CD001");
    std::fs::write(&iso, &data).unwrap();
    spec.source = Source::Iso { path: iso };
    spec.validate().unwrap();

    let odd = dir.path().join("odd.img");
    std::fs::write(&odd, vec![1u8; 1000]).unwrap();
    spec.source = Source::Image { path: odd };
    assert!(spec
        .validate()
        .unwrap_err()
        .to_string()
        .contains("neither a qcow2"));

    let empty = dir.path().join("empty.img");
    std::fs::File::create(&empty).unwrap();
    spec.source = Source::Image { path: empty };
    assert!(spec.validate().unwrap_err().to_string().contains("empty"));

    let q = dir.path().join("disk.qcow2");
    let mut f = std::fs::File::create(&q).unwrap();
    let mut header = vec![0u8; 512];
    header[..4].copy_from_slice(b"QFI\xfb");
    header[24..32].copy_from_slice(&(5 * GIB).to_be_bytes());
    f.write_all(&header).unwrap();
    assert_eq!(image_format(&q).unwrap().0, "qcow2");
    assert_eq!(qcow2_virtual_size(&q).unwrap(), 5 * GIB);
}

#[test]
fn refuses_unknown_hosts_taken_names_and_a_missing_pool_changing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inv = Inventory::open_in_memory().unwrap();
    let hosts = vec![
        host_with_pool(dir.path(), "host1", 50),
        test_host(dir.path(), "host2", &[dom("db", false)]),
    ];

    let e = err_of(&hosts, &inv, &kernel_spec("vm1", "host9"));
    assert_eq!(e.code(), "unknown_host", "{e}");

    // Taken on the other host, even though it is shut off there.
    let e = err_of(&hosts, &inv, &kernel_spec("db", "host1"));
    assert!(e.to_string().contains("already exists on host2"), "{e}");

    // A disk of that name already in the store is never overwritten.
    let e = err_of(&hosts, &inv, &kernel_spec("old", "host1"));
    assert!(
        e.to_string().contains("already holds a volume 'old.qcow2'"),
        "{e}"
    );

    // host2 has no pool: the platform is not set up there.
    let e = err_of(&hosts, &inv, &kernel_spec("vm1", "host2"));
    assert!(e.to_string().contains("no storage pool 'twofold'"), "{e}");
    assert!(e.to_string().contains("setup apply"), "{e}");

    // A host that does not answer: the name cannot be checked there.
    let hosts3 = vec![hosts[0].clone(), unreachable_host("host2")];
    let e = err_of(&hosts3, &inv, &kernel_spec("vm1", "host1"));
    assert!(e.to_string().contains("every host must answer"), "{e}");

    assert_untouched(&inv);
}

#[test]
fn refuses_what_the_store_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let inv = Inventory::open_in_memory().unwrap();
    let hosts = vec![host_with_pool(dir.path(), "host1", 1)];
    // 1 GiB free, but every new VM keeps 1 GiB of headroom free.
    let mut spec = kernel_spec("vm1", "host1");
    let iso = dir.path().join("big.iso");
    let f = std::fs::File::create(&iso).unwrap();
    f.set_len(GIB / 2).unwrap();
    let mut data = vec![0u8; 32774];
    data[32769..32774].copy_from_slice(b"CD001");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&iso)
        .unwrap()
        .write_all(&data)
        .unwrap();
    spec.source = Source::Iso { path: iso };
    let e = err_of(&hosts, &inv, &spec);
    assert!(e.to_string().contains("GiB free"), "{e}");

    // A disk larger than the whole store.
    let mut spec = kernel_spec("vm1", "host1");
    spec.disk_gib = 500;
    let e = err_of(&hosts, &inv, &spec);
    assert!(e.to_string().contains("up to 500.0 GiB"), "{e}");
    assert_untouched(&inv);

    // A name the inventory already knows (a VM on a host that was removed).
    inv.record_vm("ghost", "u", Some("host9"), "shutoff", 1, 64)
        .unwrap();
    let e = err_of(&hosts, &inv, &kernel_spec("ghost", "host1"));
    assert!(
        e.to_string()
            .contains("inventory already has a VM named 'ghost'"),
        "{e}"
    );
}

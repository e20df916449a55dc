//! VMs on the platform provisioned from bare nodes: `twofold vm create` with its disk on the
//! replicated store (bad input refused with nothing changed; ISO and image uploads arriving
//! byte-identical on both storage nodes), and losing a host and a storage node together.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use twofold::hypervisor::{HostConn, VmState};
use twofold::lab::checker;
use twofold::lab::console::unix_ms;
use twofold::progress::NoProgress;
use twofold::storage::layout::{IMAGES, POOL};

use crate::setup::{outcome, setup_apply, stderr, wait_for, wait_heal, PROVISIONED};
use crate::Ctx;

/// The provisioned platform's inventory and node list.
fn provisioned() -> (PathBuf, PathBuf) {
    let guard = PROVISIONED.lock().unwrap();
    let f = guard
        .as_ref()
        .expect("runs after provisions_bare_nodes_and_refuses_bad_input");
    (f.path("twofold.db"), f.path("nodes.toml"))
}

fn cli(ctx: &Ctx, db: &Path, args: &[&str]) -> Output {
    Command::new(&ctx.twofold)
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

fn hosts(db: &Path) -> (HostConn, HostConn) {
    let inv = twofold::inventory::Inventory::open(db).unwrap();
    let t = twofold::platform::host_targets(&inv).unwrap();
    (
        HostConn::open_blocking(&t[0]).unwrap(),
        HostConn::open_blocking(&t[1]).unwrap(),
    )
}

/// What creating a VM would change: the store's images, both hosts' VMs, the inventory's VMs.
fn platform_state(ctx: &Ctx, db: &Path) -> String {
    let images = ctx
        .lab
        .exec_output("host1", &["sh", "-c", &format!("ls -l {IMAGES}")])
        .unwrap();
    let (h1, h2) = hosts(db);
    let doms: Vec<String> = [h1, h2]
        .iter()
        .flat_map(|h| h.list_domains_blocking().unwrap())
        .map(|d| format!("{} {}", d.name, d.state))
        .collect();
    let inv = twofold::inventory::Inventory::open(db).unwrap();
    let vms: Vec<String> = inv.vms().unwrap().into_iter().map(|v| v.name).collect();
    format!("{images}\n{doms:?}\n{vms:?}")
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// The copy of a store file on a storage node's brick.
fn brick_copy(ctx: &Ctx, node: &str, file: &str) -> PathBuf {
    ctx.lab
        .node_dir(node)
        .join("srv/twofold/bricks/vmstore/images")
        .join(file)
}

fn remove_vm(ctx: &Ctx, db: &Path, name: &str, volumes: &[&str]) {
    let (h1, h2) = hosts(db);
    for h in [&h1, &h2] {
        if let Ok(Some(d)) = h.domain_blocking(name) {
            if d.state.is_migratable() {
                let _ = h.destroy_blocking(name);
            }
            let _ = h.undefine_blocking(name);
        }
    }
    for v in volumes {
        let _ = h1.delete_volume_blocking(POOL, v);
    }
    let _ = ctx;
}

pub fn vm_create_puts_disks_on_the_store(ctx: &Ctx) {
    let (db, _) = provisioned();
    let dir = tempfile::tempdir().unwrap();
    let not_iso = dir.path().join("notes.iso");
    std::fs::write(&not_iso, vec![b'x'; 50_000]).unwrap();
    let missing = dir.path().join("missing.qcow2");

    let before = platform_state(ctx, &db);
    for (args, expect) in [
        (
            vec!["x", "--host", "host9", "--lab-guest"],
            "no host named 'host9'",
        ),
        (
            vec!["bad name!", "--host", "host1", "--lab-guest"],
            "not a usable VM name",
        ),
        (
            vec!["x", "--host", "host1", "--iso", not_iso.to_str().unwrap()],
            "not an ISO image",
        ),
        (
            vec!["x", "--host", "host1", "--image", missing.to_str().unwrap()],
            "cannot open the disk image",
        ),
        (
            vec!["x", "--host", "host1", "--lab-guest", "--memory-mib", "1"],
            "1 MiB of RAM is out of range",
        ),
        (
            vec!["x", "--host", "host1", "--lab-guest", "--disk-gib", "60000"],
            "GiB free",
        ),
        (
            vec!["x", "--host", "host1", "--lab-guest", "--priority", "101"],
            "priority 101 is out of range",
        ),
        (vec!["x", "--host", "host1"], "required arguments"),
        (
            vec!["x", "--host", "host1", "--lab-guest", "--iso", "a.iso"],
            "cannot be used with",
        ),
    ] {
        let mut full = vec!["vm", "create"];
        full.extend(&args);
        let out = cli(ctx, &db, &full);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr(&out).contains(expect), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(
        platform_state(ctx, &db),
        before,
        "a refused create changed something"
    );

    // An install ISO: uploaded to the store (identical on both storage nodes), attached as a
    // CD-ROM in front of an empty disk.
    let iso = dir.path().join("installer.iso");
    let mut data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    data[32769..32774].copy_from_slice(b"CD001");
    std::fs::write(&iso, &data).unwrap();
    let out = cli(
        ctx,
        &db,
        &[
            "vm",
            "create",
            "iso-vm",
            "--host",
            "host2",
            "--iso",
            iso.to_str().unwrap(),
            "--disk-gib",
            "2",
            "--memory-mib",
            "128",
            "--no-start",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", outcome(&out));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["host"], "host2");
    assert_eq!(created["started"], false);
    let want = sha256(&iso);
    for s in ["stor1", "stor2"] {
        assert_eq!(
            sha256(&brick_copy(ctx, s, "iso-vm-install.iso")),
            want,
            "{s}"
        );
    }
    let (_, h2) = hosts(&db);
    let xml = h2
        .connect()
        .lookup_domain_by_name("iso-vm")
        .unwrap()
        .xml_desc(0)
        .unwrap();
    assert!(
        xml.contains("device='cdrom'") && xml.contains("iso-vm-install.iso"),
        "{xml}"
    );

    // A disk image, protected: uploaded as the VM's disk, started, recorded with its priority.
    let raw = dir.path().join("disk.raw");
    let content: Vec<u8> = (0..4u32 << 20).map(|i| (i % 253) as u8).collect();
    std::fs::write(&raw, &content).unwrap();
    let qcow = dir.path().join("disk.qcow2");
    let st = Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow)
        .status()
        .unwrap();
    assert!(st.success());
    let out = cli(
        ctx,
        &db,
        &[
            "vm",
            "create",
            "img-vm",
            "--host",
            "host2",
            "--image",
            qcow.to_str().unwrap(),
            "--disk-gib",
            "1",
            "--memory-mib",
            "128",
            "--protect",
            "--priority",
            "80",
        ],
    );
    assert!(out.status.success(), "{}", outcome(&out));
    let want = sha256(&qcow);
    for s in ["stor1", "stor2"] {
        assert_eq!(sha256(&brick_copy(ctx, s, "img-vm.qcow2")), want, "{s}");
    }
    let d = h2.domain_blocking("img-vm").unwrap().unwrap();
    assert_eq!(d.state, VmState::Running);
    let inv = twofold::inventory::Inventory::open(&db).unwrap();
    let rec = inv
        .vms()
        .unwrap()
        .into_iter()
        .find(|v| v.name == "img-vm")
        .unwrap();
    assert!(rec.protected && rec.priority == 80, "{rec:?}");
    let xml = h2
        .connect()
        .lookup_domain_by_name("img-vm")
        .unwrap()
        .xml_desc(0)
        .unwrap();
    assert!(
        xml.contains("<twofold:priority>80</twofold:priority>"),
        "{xml}"
    );

    // Its name is taken now, on every host.
    let before = platform_state(ctx, &db);
    let out = cli(
        ctx,
        &db,
        &["vm", "create", "img-vm", "--host", "host1", "--lab-guest"],
    );
    assert!(
        stderr(&out).contains("already exists on host2"),
        "{}",
        stderr(&out)
    );
    assert_eq!(platform_state(ctx, &db), before);

    remove_vm(ctx, &db, "iso-vm", &["iso-vm.qcow2", "iso-vm-install.iso"]);
    remove_vm(ctx, &db, "img-vm", &["img-vm.qcow2"]);
}

/// Acknowledged records of `vm` so far (from its console log, since `since`).
fn acked(ctx: &Ctx, vm: &str, since: i64) -> u64 {
    let log = ctx.lab.console_dir().join(format!("{vm}.log"));
    checker::check_heartbeats(&log, vm, since, None)
        .map(|r| r.max_acked)
        .unwrap_or(0)
}

fn wait_acked_beyond(ctx: &Ctx, vm: &str, since: i64, beyond: u64, what: &str) -> f64 {
    let t = Instant::now();
    while acked(ctx, vm, since) <= beyond {
        assert!(t.elapsed() < Duration::from_secs(120), "{what}");
        std::thread::sleep(Duration::from_millis(500));
    }
    t.elapsed().as_secs_f64()
}

fn power(ctx: &Ctx, nodes: &[&str], on: bool) {
    for n in nodes {
        if on {
            ctx.lab.power_on(n).unwrap();
        } else {
            ctx.lab.power_off(n).unwrap();
        }
    }
}

/// One host and one storage node lost together. With the arbiter on host1: losing host2 and
/// stor1 leaves host1's arbiter and stor2, two of three, so the VM on host1 writes on; losing
/// host1 and stor1 leaves stor2 alone, so the store refuses writes and the VM on host2 pauses
/// (it stops cleanly: nothing acknowledged is lost, and it runs on when the nodes are back).
pub fn host_and_storage_node_lost_together(ctx: &Ctx) {
    let (db, nodes) = provisioned();
    ctx.lab
        .ensure_console_server(&ctx.twofold, &NoProgress)
        .unwrap();
    let vm = "pair-test";
    let start = unix_ms();
    let out = cli(
        ctx,
        &db,
        &[
            "vm",
            "create",
            vm,
            "--host",
            "host1",
            "--lab-guest",
            "--disk-gib",
            "1",
            "--memory-mib",
            "128",
            "--protect",
            "--priority",
            "90",
        ],
    );
    assert!(out.status.success(), "{}", outcome(&out));
    wait_for(|| acked(ctx, vm, start) >= 20);

    // host2 + stor1 lost: host1 keeps two of three bricks.
    let cut = unix_ms();
    let at_cut = acked(ctx, vm, start);
    power(ctx, &["host2", "stor1"], false);
    let secs = wait_acked_beyond(
        ctx,
        vm,
        start,
        at_cut + 50,
        "writes on host1 did not go on without host2 and stor1",
    );
    println!("  host2 + stor1 off: the VM on host1 wrote on after {secs:.1} s");
    let check = twofold::lab::check_guest_since(&ctx.lab, vm, cut).unwrap();
    assert!(
        check.records.is_clean() && check.heartbeats.missing_count() == 0,
        "{check}"
    );
    power(ctx, &["host2", "stor1"], true);
    let out = setup_apply(ctx, &db, &nodes);
    assert!(out.status.success(), "{}", outcome(&out));
    assert!(wait_heal(ctx), "healing did not finish");

    // host1 + stor1 lost, with the VM on host2: stor2 alone has no quorum.
    let out = cli(ctx, &db, &["vm", "migrate", vm, "--to", "host2"]);
    assert!(out.status.success(), "{}", outcome(&out));
    let (_, h2) = hosts(&db);
    let cut = unix_ms();
    power(ctx, &["host1", "stor1"], false);
    let t = Instant::now();
    loop {
        let state = h2.domain_blocking(vm).unwrap().map(|d| d.state);
        if state == Some(VmState::Paused) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the VM on host2 did not stop without quorum (state {state:?})"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "  host1 + stor1 off: the VM on host2 paused after {:.1} s (no quorum)",
        t.elapsed().as_secs_f64()
    );
    let at_pause = acked(ctx, vm, start);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        acked(ctx, vm, start),
        at_pause,
        "a paused VM acknowledged writes"
    );

    power(ctx, &["host1", "stor1"], true);
    let out = setup_apply(ctx, &db, &nodes);
    assert!(out.status.success(), "{}", outcome(&out));
    h2.connect()
        .lookup_domain_by_name(vm)
        .unwrap()
        .resume()
        .unwrap();
    wait_acked_beyond(
        ctx,
        vm,
        start,
        at_pause + 20,
        "the VM did not write on after resuming",
    );
    let check = twofold::lab::check_guest_since(&ctx.lab, vm, cut).unwrap();
    assert!(
        check.records.is_clean() && check.heartbeats.missing_count() == 0,
        "{check}"
    );
    assert!(wait_heal(ctx), "healing did not finish");
    remove_vm(ctx, &db, vm, &["pair-test.qcow2"]);
}

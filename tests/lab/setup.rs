//! Provisioning the lab from bare nodes (nothing but sshd) with `twofold setup`: bad input first
//! (each refused with nothing changed on any node), then plan, apply, verify, a second apply that
//! changes nothing, and the disk leases refusing a second copy of a running VM.

use std::path::{Path, PathBuf};

use twofold::hypervisor::HostConn;
use twofold::lab::guest::{self, GuestSpec};
use twofold::lab::{checker, UpOptions, NODES};
use twofold::nodes::NodeList;
use twofold::progress::NoProgress;
use twofold::storage::layout::STORE;

use crate::Ctx;

pub(crate) struct Files {
    dir: tempfile::TempDir,
}

/// The provisioned platform's files (inventory, node list, password), for the tests after it.
pub(crate) static PROVISIONED: std::sync::Mutex<Option<Files>> = std::sync::Mutex::new(None);

impl Files {
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// What provisioning would change on a node, to prove a refused request changed nothing.
fn node_state(ctx: &Ctx) -> Vec<String> {
    NODES
        .iter()
        .map(|n| {
            let files = ctx
                .lab
                .exec_output(
                    n.name,
                    &[
                        "sh",
                        "-c",
                        "cat ~/.ssh/authorized_keys /etc/hosts /etc/fstab 2>&1; ls -a /srv/twofold/bricks 2>&1; mountpoint /var/lib/twofold/store 2>&1; true",
                    ],
                )
                .unwrap();
            let daemons: Vec<usize> = ["glusterd", "libvirtd", "virtlockd"]
                .iter()
                .map(|d| ctx.lab.daemon_pids(n.name, d).unwrap().len())
                .collect();
            format!("{}: {files} {daemons:?}", n.name)
        })
        .collect()
}

/// Run `twofold setup`, accepting emulation where the lab's guests run under TCG (the lab hides
/// /dev/kvm from its nodes then, so hosts have no hardware virtualization to offer).
fn setup(ctx: &Ctx, db: &Path, args: &[&str]) -> std::process::Output {
    let mut args = args.to_vec();
    if tcg_lab(ctx) {
        args.push("--allow-emulation");
    }
    setup_raw(ctx, db, &args)
}

fn tcg_lab(ctx: &Ctx) -> bool {
    ctx.lab.status().unwrap().domain_type.as_deref() == Some("qemu")
}

fn setup_raw(ctx: &Ctx, db: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(&ctx.twofold)
        .arg("--db")
        .arg(db)
        .arg("setup")
        .args(args)
        .output()
        .unwrap()
}

pub(crate) fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// How a command ended, for a failed assertion: its exit status (or the signal that ended it),
/// then what it printed on stdout and stderr.
pub(crate) fn outcome(o: &std::process::Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn provisions_bare_nodes_and_refuses_bad_input(ctx: &Ctx) {
    let opts = UpOptions {
        bare: true,
        twofold_exe: ctx.twofold.clone(),
        inventory: None,
    };
    ctx.lab.up(&opts, &NoProgress).unwrap();
    let f = Files {
        dir: tempfile::tempdir().unwrap(),
    };
    let db = f.path("twofold.db");
    let nodes = f.path("nodes.toml");
    let list = ctx.lab.node_list().unwrap();
    std::fs::write(&nodes, list.to_toml()).unwrap();
    let pw = f.path("password");
    std::fs::write(&pw, ctx.lab.root_password().unwrap().expose()).unwrap();
    let wrong_pw = f.path("wrong-password");
    std::fs::write(&wrong_pw, "not-the-password").unwrap();
    let nodes_s = nodes.to_str().unwrap();

    let before = node_state(ctx);
    // Each bad node list (or password) is refused with a message that says what is wrong.
    let variant = |file: &str, change: &dyn Fn(&mut NodeList)| {
        let mut l = list.clone();
        change(&mut l);
        let path = f.path(file);
        std::fs::write(&path, l.to_toml()).unwrap();
        path
    };
    let forged = variant("forged.toml", &|l| {
        l.nodes[0].host_key = list.nodes[3].host_key.clone()
    });
    let gone = variant("gone.toml", &|l| l.nodes[1].address = "10.251.77.99".into());
    let dup = variant("dup.toml", &|l| {
        l.nodes[1].address = list.nodes[0].address.clone()
    });
    let junk = f.path("junk.toml");
    std::fs::write(&junk, "this is not = [a node list").unwrap();
    for (nodes_file, password, expect) in [
        (&nodes, &wrong_pw, "refused the login"),
        (&forged, &pw, "identity of host1 changed"),
        (&gone, &pw, "unreachable"),
        (&dup, &pw, "same address"),
        (&junk, &pw, "not a valid node list"),
    ] {
        let out = setup(
            ctx,
            &db,
            &[
                "apply",
                "--nodes",
                nodes_file.to_str().unwrap(),
                "--password-file",
                password.to_str().unwrap(),
            ],
        );
        assert!(!out.status.success(), "{expect}");
        assert!(stderr(&out).contains(expect), "{expect}: {}", stderr(&out));
    }
    // Hosts without hardware virtualization (the TCG lab's hosts) are refused unless allowed.
    if tcg_lab(ctx) {
        let out = setup_raw(
            ctx,
            &db,
            &[
                "apply",
                "--nodes",
                nodes_s,
                "--password-file",
                pw.to_str().unwrap(),
            ],
        );
        assert!(!out.status.success());
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(all.contains("FAIL host1 cpu_virt"), "{all}");
        assert!(
            all.contains("not ready") && all.contains("nothing was changed"),
            "{all}"
        );
    }
    // Hosts too small for N+1, and a store too small for the VMs' disks.
    let vms = |name: &str, ram: u64, disk: u64| {
        format!("[[vm]]\nname = \"{name}\"\nvcpus = 2\nram_mib = {ram}\ndisk_gib = {disk}\npriority = 10\ncritical = true\n")
    };
    for (file, text, expect) in [
        ("big-ram.toml", vms("erp", 4 << 20, 10), "too small for N+1"),
        (
            "big-disk.toml",
            vms("archive", 1024, 1 << 24),
            "too small for N+1",
        ),
        (
            "bad-vms.toml",
            "[[vm]]\nname = \"x\"\nram = 3\n".to_string(),
            "is not valid",
        ),
    ] {
        let path = f.path(file);
        std::fs::write(&path, text).unwrap();
        let out = setup(
            ctx,
            &db,
            &[
                "apply",
                "--nodes",
                nodes_s,
                "--password-file",
                pw.to_str().unwrap(),
                "--protect",
                path.to_str().unwrap(),
            ],
        );
        assert!(!out.status.success(), "{file}");
        assert!(stderr(&out).contains(expect), "{file}: {}", stderr(&out));
    }
    assert_eq!(
        before,
        node_state(ctx),
        "a refused setup must change nothing on any node"
    );

    // Plan, apply, verify, apply again.
    let out = setup(
        ctx,
        &db,
        &[
            "plan",
            "--nodes",
            nodes_s,
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", outcome(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Create the replicated VM store"), "{text}");
    assert_eq!(before, node_state(ctx), "plan changes nothing");
    let fits = f.path("fits.toml");
    std::fs::write(&fits, vms("web", 512, 5)).unwrap();
    let t = std::time::Instant::now();
    let out = setup(
        ctx,
        &db,
        &[
            "apply",
            "--nodes",
            nodes_s,
            "--password-file",
            pw.to_str().unwrap(),
            "--protect",
            fits.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", outcome(&out));
    println!(
        "  provisioned the bare lab in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["changed"].as_u64().unwrap() > 10, "{report}");
    // From now on Twofold's own key is enough: no password.
    let out = setup(ctx, &db, &["verify", "--nodes", nodes_s]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    let out = setup(ctx, &db, &["apply", "--nodes", nodes_s, "--json"]);
    assert!(out.status.success(), "{}", outcome(&out));
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        again["changed"].as_u64(),
        Some(0),
        "a second apply changes nothing: {again}"
    );
    let inv = twofold::inventory::Inventory::open(&db).unwrap();
    assert_eq!(inv.nodes().unwrap().len(), 4);

    leases_refuse_a_second_copy(ctx, &db);
    *PROVISIONED.lock().unwrap() = Some(f);
}

/// A VM running on host1 cannot be started on host2: its disk's lease is held.
fn leases_refuse_a_second_copy(ctx: &Ctx, db: &Path) {
    let inv = twofold::inventory::Inventory::open(db).unwrap();
    let hosts = twofold::platform::host_targets(&inv).unwrap();
    let assets = guest::build_assets(&ctx.lab.guest_cache(), &NoProgress).unwrap();
    let dtype = guest::detect_domain_type(&ctx.lab.guest_cache(), &assets);
    let disk = PathBuf::from(format!("{STORE}/lease-test.qcow2"));
    let cmd = guest::create_disk_command(&disk, 16);
    let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
    ctx.lab.exec_output("host1", &refs).unwrap();
    let spec = GuestSpec::new(
        "lease-test",
        &assets,
        &disk,
        twofold::lab::console_addr(),
        dtype,
    );
    let xml = guest::domain_xml(&spec);
    let h1 = HostConn::open_blocking(&hosts[0]).unwrap();
    let h2 = HostConn::open_blocking(&hosts[1]).unwrap();
    h1.define_blocking(&xml).unwrap();
    h1.start_blocking("lease-test").unwrap();
    h2.define_blocking(&xml).unwrap();
    let second = h2.start_blocking("lease-test");
    let _ = h1.destroy_blocking("lease-test");
    let _ = h1.undefine_blocking("lease-test");
    let _ = h2.destroy_blocking("lease-test");
    let _ = h2.undefine_blocking("lease-test");
    let err = second
        .expect_err("the second copy must be refused")
        .to_string();
    assert!(err.to_lowercase().contains("lock"), "{err}");
}

/// While a guest on the store writes, stor1 loses power: the guest sees no I/O error and loses no
/// acknowledged record (the arbiter on host1 and stor2 keep the quorum); when stor1 is back,
/// healing completes and both storage bricks hold identical copies.
pub fn storage_node_power_cut_loses_nothing(ctx: &Ctx) {
    let guard = PROVISIONED.lock().unwrap();
    let f = guard
        .as_ref()
        .expect("runs after provisions_bare_nodes_and_refuses_bad_input");
    let db = f.path("twofold.db");
    let nodes = f.path("nodes.toml");
    let inv = twofold::inventory::Inventory::open(&db).unwrap();
    let hosts = twofold::platform::host_targets(&inv).unwrap();
    ctx.lab
        .ensure_console_server(&ctx.twofold, &NoProgress)
        .unwrap();
    let name = "store-test";
    // Made the way an admin makes a VM: on the replicated store, protected.
    let out = std::process::Command::new(&ctx.twofold)
        .arg("--db")
        .arg(&db)
        .args([
            "vm",
            "create",
            name,
            "--host",
            "host1",
            "--lab-guest",
            "--disk-gib",
            "1",
            "--memory-mib",
            "128",
            "--protect",
            "--priority",
            "70",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", outcome(&out));
    let h1 = HostConn::open_blocking(&hosts[0]).unwrap();
    let log = ctx.lab.console_dir().join(format!("{name}.log"));
    let start = twofold::lab::console::unix_ms();
    wait_for(|| {
        checker::check_heartbeats(&log, name, start, None)
            .map(|r| r.max_acked >= 20)
            .unwrap_or(false)
    });

    let cut = twofold::lab::console::unix_ms();
    ctx.lab.power_off("stor1").unwrap();
    // Writes wait until the clients give stor1 up (GlusterFS's ping timeout, 20 s, counted from
    // its last answer), then go on with stor2 and the arbiter. Heartbeats never stop.
    let acked_at_cut = checker::check_heartbeats(&log, name, start, Some(cut))
        .unwrap()
        .max_acked;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let resumed_ms = loop {
        let r = checker::check_heartbeats(&log, name, cut, None).unwrap();
        if r.max_acked > acked_at_cut + 50 {
            break twofold::lab::console::unix_ms() - cut;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "writes did not go on without stor1: {r:?}"
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    };
    let during = checker::check_heartbeats(&log, name, cut, None).unwrap();
    println!(
        "  stor1 off: writes went on after {:.1} s; {} heartbeats, largest gap {} ms, acked {} -> {}",
        resumed_ms as f64 / 1000.0,
        during.lines,
        during.max_gap_ms,
        acked_at_cut,
        during.max_acked
    );
    let check = twofold::lab::check_guest_since(&ctx.lab, name, start).unwrap();
    assert!(check.ok(), "{check}");

    // stor1 comes back; setup brings its daemon back; healing makes both copies equal.
    ctx.lab.power_on("stor1").unwrap();
    let out = setup_apply(ctx, &db, &nodes);
    assert!(out.status.success(), "{}", outcome(&out));
    h1.connect()
        .lookup_domain_by_name(name)
        .unwrap()
        .suspend()
        .unwrap();
    let healed = wait_heal(ctx);
    let sums: Vec<String> = ["stor1", "stor2"]
        .iter()
        .map(|s| {
            let brick = ctx
                .lab
                .node_dir(s)
                .join("srv/twofold/bricks/vmstore/images")
                .join(format!("{name}.qcow2"));
            let out = std::process::Command::new("sha256sum")
                .arg(&brick)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let _ = h1.destroy_blocking(name);
    let _ = h1.undefine_blocking(name);
    assert!(healed, "healing did not finish within 3 minutes");
    assert!(
        !sums[0].is_empty() && sums[0] == sums[1],
        "bricks differ after healing: {sums:?}"
    );
    let check = twofold::lab::check_guest_since(&ctx.lab, name, start).unwrap();
    assert!(check.records.is_clean(), "{check}");
    let _ = h1.delete_volume_blocking(twofold::storage::layout::POOL, &format!("{name}.qcow2"));
}

pub(crate) fn setup_apply(ctx: &Ctx, db: &Path, nodes: &Path) -> std::process::Output {
    setup(ctx, db, &["apply", "--nodes", nodes.to_str().unwrap()])
}

pub(crate) fn wait_for(mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Trigger healing and wait until no brick has entries left to heal (bounded).
pub(crate) fn wait_heal(ctx: &Ctx) -> bool {
    let _ = ctx.lab.exec_output(
        "stor1",
        &["gluster", "--mode=script", "volume", "heal", "vmstore"],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while std::time::Instant::now() < deadline {
        if let Ok(info) = ctx.lab.exec_output(
            "stor1",
            &[
                "gluster",
                "--mode=script",
                "volume",
                "heal",
                "vmstore",
                "info",
            ],
        ) {
            let counts: Vec<&str> = info
                .lines()
                .filter(|l| l.starts_with("Number of entries:"))
                .collect();
            if counts.len() == 3 && counts.iter().all(|l| l.trim().ends_with(" 0")) {
                return true;
            }
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    false
}

//! Listing and live-migrating the lab's demo guest, with the guest's heartbeat and disk records as
//! the proof that nothing was lost; and every bad input refused with nothing changed.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use twofold::error::Error;
use twofold::hypervisor::{HostConn, LifecycleKind, MigrationCancel, MigrationStats, VmState};
use twofold::inventory::Inventory;
use twofold::lab::rounds::{self, Judge};
use twofold::lab::{console::unix_ms, DEMO_VM, MAX_GAP_MS};
use twofold::progress::NoProgress;
use twofold::vm;

use crate::Ctx;

/// Where the demo guest runs now (exactly one host).
fn demo_host(ctx: &Ctx) -> String {
    rounds::running_on(&ctx.hosts, &ctx.inventory(), DEMO_VM)
        .unwrap_or_else(|e| panic!("demo must run on exactly one host: {e}"))
}

/// Migrate through the engine, as the CLI and the app do.
fn migrate(ctx: &Ctx, inv: &Inventory, vm: &str, to: &str) -> twofold::Result<MigrationStats> {
    vm::migrate_blocking(
        &ctx.hosts,
        inv,
        vm,
        to,
        &NoProgress,
        &MigrationCancel::new(),
    )
}

fn other(host: &str) -> &'static str {
    rounds::other_host(host)
}

/// Wait until the guest has sent heartbeats for a while (it may still be booting).
fn wait_heartbeats(ctx: &Ctx, n: u64) {
    rounds::wait_heartbeats(&ctx.lab, DEMO_VM, n, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
}

pub fn vm_list_shows_demo_on_host1(ctx: &Ctx) {
    wait_heartbeats(ctx, 5);
    let list = vm::list_blocking(&ctx.hosts, &ctx.inventory()).unwrap();
    assert!(list.hosts.iter().all(|h| h.reachable), "{:?}", list.hosts);
    assert_eq!(demo_host(ctx), "host1");
    let out = ctx.cli(&["vm", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let demo = v["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == DEMO_VM)
        .expect("demo in vm list --json");
    assert_eq!(demo["host"], "host1");
    assert_eq!(demo["state"], "running");
    let out = ctx.cli(&["vm", "list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("demo") && table.contains("host1"), "{table}");
    let rec = ctx.inventory().vms().unwrap();
    assert!(rec
        .iter()
        .any(|r| r.name == DEMO_VM && r.host.as_deref() == Some("host1")));
}

/// Everything that must stay the same when a request is refused.
fn snapshot(ctx: &Ctx) -> (String, usize, Vec<(String, String)>) {
    let inv = ctx.inventory();
    let jobs = inv.jobs(1000).unwrap().len();
    let list = vm::list_blocking(&ctx.hosts, &inv).unwrap();
    let mut vms: Vec<(String, String)> = list
        .vms
        .iter()
        .map(|v| (format!("{}@{}", v.name, v.host), v.state.to_string()))
        .collect();
    vms.sort();
    (demo_host(ctx), jobs, vms)
}

pub fn bad_input_changes_nothing(ctx: &Ctx) {
    // A VM that exists but is not running.
    let host1 = HostConn::open_blocking(&ctx.hosts[0]).unwrap();
    let stopped_xml = "<domain type='qemu'><name>stopped-vm</name><memory unit='MiB'>64</memory>\
         <os><type arch='x86_64'>hvm</type></os></domain>";
    if host1.domain_blocking("stopped-vm").unwrap().is_none() {
        host1.define_blocking(stopped_xml).unwrap();
    }
    let before = snapshot(ctx);
    let inv = ctx.inventory();
    let mig = |vm: &str, to: &str| migrate(ctx, &inv, vm, to);
    match mig("no-such-vm", "host2") {
        Err(Error::UnknownVm { name, .. }) => assert_eq!(name, "no-such-vm"),
        other => panic!("unknown VM: {other:?}"),
    }
    match mig(DEMO_VM, "host9") {
        Err(e @ Error::UnknownHost { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("host9") && m.contains("host1") && m.contains("host2"),
                "{m}"
            );
        }
        other => panic!("unknown host: {other:?}"),
    }
    let on = demo_host(ctx);
    match mig(DEMO_VM, &on) {
        Err(Error::SameHost { host, .. }) => assert_eq!(host, on),
        other => panic!("same host: {other:?}"),
    }
    match mig("stopped-vm", "host2") {
        Err(Error::VmNotRunning { vm, .. }) => assert_eq!(vm, "stopped-vm"),
        other => panic!("not running: {other:?}"),
    }
    host1.undefine_blocking("stopped-vm").unwrap();
    let after = snapshot(ctx);
    assert_eq!(before.0, after.0, "the demo guest must not have moved");
    assert_eq!(before.1, after.1, "a refused request must not start a job");
    let after_vms: Vec<_> = after
        .2
        .iter()
        .filter(|v| !v.0.starts_with("stopped-vm"))
        .collect();
    let before_vms: Vec<_> = before
        .2
        .iter()
        .filter(|v| !v.0.starts_with("stopped-vm"))
        .collect();
    assert_eq!(before_vms, after_vms);
}

pub fn cli_bad_input_exits_nonzero(ctx: &Ctx) {
    let before = snapshot(ctx);
    let on = demo_host(ctx);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["vm", "migrate", "no-such-vm", "--to", "host2"],
            "no VM named 'no-such-vm'",
        ),
        (
            vec!["vm", "migrate", DEMO_VM, "--to", "host9"],
            "no host named 'host9'",
        ),
        (
            vec!["vm", "migrate", DEMO_VM, "--to", &on],
            "already runs on",
        ),
        (vec!["vm", "migrate", DEMO_VM], "--to"),
        (vec!["vm", "frobnicate"], "unrecognized subcommand"),
    ];
    for (args, expect) in cases {
        let out = ctx.cli(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            err.contains(expect),
            "{args:?}: expected '{expect}' in: {err}"
        );
    }
    // A broken inventory path is a clear error too.
    let out = std::process::Command::new(&ctx.twofold)
        .args(["--db", "/proc/nope/twofold.db", "vm", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("inventory"));
    assert_eq!(before, snapshot(ctx));
}

pub fn target_host_down_is_refused(ctx: &Ctx) {
    let on = demo_host(ctx);
    let target = other(&on);
    let before = snapshot(ctx);
    // Stop the target's libvirtd (as when the host is down), then ask for a migration there.
    ctx.lab.stop_daemon(target, "libvirtd").unwrap();
    assert!(ctx.lab.daemon_pids(target, "libvirtd").unwrap().is_empty());
    assert!(
        !ctx.lab
            .daemon_pids(on.as_str(), "libvirtd")
            .unwrap()
            .is_empty(),
        "only the target's libvirtd stops"
    );
    let inv = ctx.inventory();
    let r = migrate(ctx, &inv, DEMO_VM, target);
    let out = ctx.cli(&["vm", "migrate", DEMO_VM, "--to", target]);
    // Bring it back before asserting, so a failure here does not break later tests.
    ctx.lab
        .exec_output(
            target,
            &["libvirtd", "-d", "-f", "/etc/libvirt/libvirtd.conf"],
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while HostConn::open_blocking(ctx.hosts.iter().find(|h| h.name == target).unwrap()).is_err() {
        assert!(
            Instant::now() < deadline,
            "libvirtd on {target} did not come back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    match r {
        Err(Error::HostUnreachable { host, .. }) => assert_eq!(host, target),
        other => panic!("target down: {other:?}"),
    }
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unreachable"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(before.0, demo_host(ctx));
    assert_eq!(before.1, ctx.inventory().jobs(1000).unwrap().len());
}

/// What the guests said on their consoles since `since_unix_ms` other than whole heartbeats (the
/// kernel's and the workload's own messages: a panic, an I/O error; and pieces of a heartbeat line
/// torn apart, e.g. across the source's and the destination's console connections), the last 60
/// lines, for a failure's message.
fn guest_console(ctx: &Ctx, since_unix_ms: i64) -> String {
    let path = ctx.lab.console_dir().join("console.log");
    let text = std::fs::read(&path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()));
    let lines: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let (at, line) = l.split_once('\t')?;
            let at: i64 = at.parse().ok()?;
            let whole_heartbeat = line.starts_with("TFHB ") && line.contains(" acked=");
            (at >= since_unix_ms && !whole_heartbeat)
                .then(|| format!("+{} ms  {line}", at - since_unix_ms))
        })
        .collect();
    let tail = &lines[lines.len().saturating_sub(60)..];
    format!(
        "guest console since the first round (without heartbeats):\n{}",
        tail.join("\n")
    )
}

pub fn ten_round_trips_lose_nothing(ctx: &Ctx) {
    wait_heartbeats(ctx, 10);
    let inv = ctx.inventory();
    let on = demo_host(ctx);
    let start = unix_ms();
    let mut first_boot: Option<Option<u32>> = None;
    let run = rounds::migrate_rounds(
        &ctx.lab,
        DEMO_VM,
        &on,
        10,
        Judge::HeartbeatsAndDisk,
        rounds::twofold_migration(&ctx.hosts, &inv, DEMO_VM),
        |r| {
            println!(
                "  round {} (+{} ms to +{} ms): {} -> {} downtime {:?} ms, total {:?} ms, guest gap {} ms, acked {}",
                r.number,
                r.started_unix_ms - start,
                r.judged_unix_ms - start,
                r.from,
                r.to,
                r.moved.downtime_ms,
                r.moved.total_ms,
                r.heartbeats.max_gap_ms,
                r.heartbeats.max_acked
            );
            assert!(
                r.moved.downtime_ms.is_some(),
                "libvirt reports downtime: {:?}",
                r.moved
            );
            let problems = r.problems();
            assert!(
                problems.is_empty(),
                "round {}: {problems:?}\n{}",
                r.number,
                guest_console(ctx, start)
            );
            assert!(r.heartbeats.max_gap_ms <= MAX_GAP_MS);
            // The silence from the last heartbeat to the judgement is a gap too: a guest that
            // stopped (or restarted) inside the round must fail this round, not a later one.
            let silent = r.judged_unix_ms - r.heartbeats.last_unix_ms.unwrap_or(r.started_unix_ms);
            assert!(
                silent <= MAX_GAP_MS,
                "round {}: no heartbeat for the last {silent} ms of the round\n{}",
                r.number,
                guest_console(ctx, start)
            );
            // Every round is the same boot of the guest as the first: a live migration never
            // restarts it.
            let boot = *first_boot.get_or_insert_with(|| r.heartbeats.boots.first().copied());
            assert_eq!(
                r.heartbeats.boots,
                boot.into_iter().collect::<Vec<_>>(),
                "round {}: the guest restarted\n{}",
                r.number,
                guest_console(ctx, start)
            );
            assert_eq!(demo_host(ctx), r.to);
        },
    )
    .unwrap_or_else(|e| panic!("round trips: {e}"));
    let all = &run.whole;
    // Where the largest gap ended, on the same clock as the rounds above, to tell a gap inside a
    // migration from one between them.
    assert!(
        all.ok(),
        "{all}\nlargest gap ended at +{:?} ms\n{}",
        all.heartbeats.max_gap_at_unix_ms.map(|t| t - start),
        guest_console(ctx, start)
    );
    assert!(all.heartbeats.max_acked > 0);
    assert_eq!(all.heartbeats.boots.len(), 1, "the guest never rebooted");
    let jobs = ctx.inventory().jobs(100).unwrap();
    let done = jobs
        .iter()
        .filter(|j| j.kind == "migrate" && j.started_at >= start && j.error.is_none())
        .count();
    assert_eq!(done, 10, "each migration is a recorded job");
}

pub fn cli_migrate_reports_downtime(ctx: &Ctx) {
    let on = demo_host(ctx);
    let to = other(&on);
    let out = ctx.cli(&["vm", "migrate", DEMO_VM, "--to", to, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["to"], to);
    assert!(v["downtime_ms"].as_u64().is_some(), "{v}");
    assert!(v["total_ms"].as_u64().unwrap() > 0, "{v}");
    let back = ctx.cli(&["vm", "migrate", DEMO_VM, "--to", &on]);
    assert!(
        back.status.success(),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    let text = String::from_utf8_lossy(&back.stdout);
    assert!(
        text.contains("downtime") && text.contains("total"),
        "{text}"
    );
}

pub fn lifecycle_events_follow_migration(ctx: &Ctx) {
    let on = demo_host(ctx);
    let to = other(&on);
    let dest = HostConn::open_blocking(ctx.hosts.iter().find(|h| h.name == to).unwrap()).unwrap();
    let (tx, rx) = mpsc::channel();
    let _sub = dest.subscribe_lifecycle_blocking(tx).unwrap();
    let inv = ctx.inventory();
    migrate(ctx, &inv, DEMO_VM, to).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut kinds = Vec::new();
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(ev) if ev.domain == DEMO_VM => {
                kinds.push(ev.kind);
                if kinds.contains(&LifecycleKind::Started)
                    && kinds.contains(&LifecycleKind::Resumed)
                {
                    break;
                }
            }
            _ => {}
        }
    }
    assert!(
        kinds.contains(&LifecycleKind::Started),
        "destination saw the VM start: {kinds:?}"
    );
    let d = dest.domain_blocking(DEMO_VM).unwrap().unwrap();
    assert_eq!(d.state, VmState::Running);
}

//! Live-migration benchmark: the lab's demo guest migrated by Twofold and by plain
//! `virsh migrate --live --p2p` (the baseline) in the same run, alternating, with the same
//! libvirt settings (peer-to-peer, shared storage, same migration address). Prints, for each,
//! the median downtime (libvirt's completed-job statistics), total migration time, the wall
//! time of the command, and the guest's own largest heartbeat gap; then Twofold/virsh ratios.
//!
//! Run as root: `cargo bench --bench migration` (`TWOFOLD_BENCH_ROUNDS=N`, default 5 of each;
//! `TWOFOLD_KEEP_LAB=1` leaves the lab up).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use twofold::hypervisor::{HostTarget, MigrationCancel};
use twofold::inventory::Inventory;
use twofold::lab::{checker, console::unix_ms, Lab, UpOptions, DEMO_VM};
use twofold::progress::NoProgress;

#[derive(Default)]
struct Samples {
    downtime: Vec<f64>,
    total: Vec<f64>,
    wall: Vec<f64>,
    guest_gap: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if s.is_empty() {
        return f64::NAN;
    }
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn main() {
    // `cargo bench` passes --bench; a plain `cargo test` run of benches must not start a lab.
    if !std::env::args().any(|a| a == "--bench") {
        println!("migration benchmark: run with `cargo bench --bench migration`");
        return;
    }
    let rounds: usize = std::env::var("TWOFOLD_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=50).contains(n))
        .unwrap_or(5);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("bench.db");
    let lab = Lab::new();
    let result = std::panic::catch_unwind(|| run(&lab, &db, rounds));
    if std::env::var_os("TWOFOLD_KEEP_LAB").is_none() {
        let _ = lab.down(&NoProgress);
    }
    if result.is_err() {
        // Ends the engine's threads in order first (see `twofold::shutdown`).
        twofold::shutdown::exit(1);
    }
    twofold::shutdown::shutdown();
}

fn run(lab: &Lab, db: &std::path::Path, rounds: usize) {
    let opts = UpOptions {
        bare: false,
        twofold_exe: PathBuf::from(env!("CARGO_BIN_EXE_twofold")),
        inventory: Some(db.to_path_buf()),
    };
    let t = Instant::now();
    lab.up(&opts, &NoProgress).expect("lab up");
    println!("lab up in {:.1} s", t.elapsed().as_secs_f64());
    let inv = Inventory::open(db).unwrap();
    let hosts = lab.host_targets().unwrap();
    let log = lab.console_dir().join(format!("{DEMO_VM}.log"));
    wait_heartbeats(&log);

    let mut twofold = Samples::default();
    let mut virsh = Samples::default();
    let mut on = current_host(&hosts, &inv);
    // Alternate tools and directions so neither tool always gets the same direction.
    for i in 0..rounds * 2 {
        let to = if on == "host1" { "host2" } else { "host1" };
        let use_twofold = (i % 4 == 0) || (i % 4 == 3);
        let t0 = unix_ms();
        let start = Instant::now();
        let (downtime, total) = if use_twofold {
            let s = twofold::vm::migrate_blocking(
                &hosts,
                &inv,
                DEMO_VM,
                to,
                &NoProgress,
                &MigrationCancel::new(),
            )
            .expect("twofold migrate");
            (
                s.downtime_ms.unwrap_or(0) as f64,
                s.total_ms.unwrap_or(0) as f64,
            )
        } else {
            virsh_migrate(lab, &hosts, &on, to)
        };
        let wall = start.elapsed().as_secs_f64() * 1000.0;
        std::thread::sleep(Duration::from_millis(800));
        let hb = checker::check_heartbeats(&log, DEMO_VM, t0, None).unwrap();
        assert_eq!(
            hb.missing_count(),
            0,
            "heartbeats lost during migration {i}"
        );
        let s = if use_twofold {
            &mut twofold
        } else {
            &mut virsh
        };
        s.downtime.push(downtime);
        s.total.push(total);
        s.wall.push(wall);
        s.guest_gap.push(hb.max_gap_ms as f64);
        println!(
            "{:2} {:7} {} -> {}: downtime {:5.0} ms, total {:6.0} ms, command {:6.0} ms, guest gap {:4.0} ms",
            i + 1,
            if use_twofold { "twofold" } else { "virsh" },
            on,
            to,
            downtime,
            total,
            wall,
            hb.max_gap_ms
        );
        on = to.to_string();
    }
    println!();
    println!(
        "live migration, 128 MiB guest, disk on the replicated store, {rounds} runs each (medians)"
    );
    println!("{:26} {:>10} {:>10} {:>8}", "", "twofold", "virsh", "ratio");
    for (name, a, b) in [
        ("downtime (ms)", &twofold.downtime, &virsh.downtime),
        ("migration total (ms)", &twofold.total, &virsh.total),
        ("command wall time (ms)", &twofold.wall, &virsh.wall),
        (
            "guest heartbeat gap (ms)",
            &twofold.guest_gap,
            &virsh.guest_gap,
        ),
    ] {
        let (ma, mb) = (median(a), median(b));
        println!("{name:26} {ma:>10.0} {mb:>10.0} {:>8.2}", ma / mb);
    }
}

fn current_host(hosts: &[HostTarget], inv: &Inventory) -> String {
    twofold::vm::list_blocking(hosts, inv)
        .unwrap()
        .vms
        .into_iter()
        .find(|v| v.name == DEMO_VM && v.state.is_migratable())
        .expect("demo runs")
        .host
}

/// The baseline: plain virsh on the source host, same flags as Twofold uses.
fn virsh_migrate(lab: &Lab, hosts: &[HostTarget], from: &str, to: &str) -> (f64, f64) {
    let dest = hosts.iter().find(|h| h.name == to).unwrap();
    let migrate_uri = format!("tcp://{}", dest.migration_address.as_deref().unwrap());
    lab.exec_output(
        from,
        &[
            "virsh",
            "-c",
            "qemu:///system",
            "migrate",
            "--live",
            "--p2p",
            "--persistent",
            "--undefinesource",
            DEMO_VM,
            &dest.peer_uri,
            "--migrateuri",
            &migrate_uri,
        ],
    )
    .expect("virsh migrate");
    let info = lab
        .exec_output(
            to,
            &[
                "virsh",
                "-c",
                "qemu:///system",
                "domjobinfo",
                "--completed",
                DEMO_VM,
            ],
        )
        .expect("domjobinfo");
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (field("Total downtime"), field("Time elapsed"))
}

fn wait_heartbeats(log: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(r) = checker::check_heartbeats(log, DEMO_VM, unix_ms() - 60_000, None) {
            if r.lines >= 10 {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("no heartbeat from the demo guest");
}

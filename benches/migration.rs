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

use twofold::hypervisor::HostTarget;
use twofold::inventory::Inventory;
use twofold::lab::rounds::{self, Judge, Moved};
use twofold::lab::{Lab, UpOptions, DEMO_VM};
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
    rounds::wait_heartbeats(lab, DEMO_VM, 10, Duration::from_secs(120)).expect("demo guest");

    let on = rounds::running_on(&hosts, &inv, DEMO_VM).expect("demo runs");
    let mut twofold_move = rounds::twofold_migration(&hosts, &inv, DEMO_VM);
    // Alternate tools and directions so neither tool always gets the same direction.
    let uses_twofold = |round: u32| matches!((round - 1) % 4, 0 | 3);
    let run = rounds::migrate_rounds(
        lab,
        DEMO_VM,
        &on,
        u32::try_from(rounds * 2).unwrap(),
        Judge::Heartbeats,
        |round, from, to| {
            if uses_twofold(round) {
                twofold_move(round, from, to)
            } else {
                Ok(virsh_migrate(lab, &hosts, from, to))
            }
        },
        |r| {
            println!(
                "{:2} {:7} {} -> {}: downtime {:5} ms, total {:6} ms, command {:6} ms, guest gap {:4} ms",
                r.number,
                if uses_twofold(r.number) { "twofold" } else { "virsh" },
                r.from,
                r.to,
                r.moved.downtime_ms.map_or("?".into(), |v| v.to_string()),
                r.moved.total_ms.map_or("?".into(), |v| v.to_string()),
                r.wall_ms,
                r.heartbeats.max_gap_ms
            );
            assert_eq!(
                r.heartbeats.missing_count(),
                0,
                "heartbeats lost during migration {}",
                r.number
            );
        },
    )
    .expect("migrations");

    let mut twofold = Samples::default();
    let mut virsh = Samples::default();
    for r in &run.rounds {
        let s = if uses_twofold(r.number) {
            &mut twofold
        } else {
            &mut virsh
        };
        // A figure the tool did not report is left out of its median.
        s.downtime.extend(r.moved.downtime_ms.map(|v| v as f64));
        s.total.extend(r.moved.total_ms.map(|v| v as f64));
        s.wall.push(r.wall_ms as f64);
        s.guest_gap.push(r.heartbeats.max_gap_ms as f64);
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

/// The baseline: plain virsh on the source host, same flags as Twofold uses.
fn virsh_migrate(lab: &Lab, hosts: &[HostTarget], from: &str, to: &str) -> Moved {
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
            .and_then(|v| v.parse::<u64>().ok())
    };
    Moved {
        downtime_ms: field("Total downtime"),
        total_ms: field("Time elapsed"),
    }
}

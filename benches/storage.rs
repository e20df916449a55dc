//! Storage benchmark, in one run on the lab:
//!
//! 1. Provisioning: the time `twofold setup apply`'s engine takes from bare nodes (nothing but
//!    sshd) to a verified platform, and a second apply (nothing to change) for comparison.
//! 2. Disk throughput of a VM disk file on the replicated store (GlusterFS replica 3 arbiter 1,
//!    FUSE) against the same workload on a single-brick GlusterFS volume and on a local file:
//!    sequential 1 MiB and random 4 KiB, write and read, with O_DIRECT and native AIO (how QEMU
//!    opens a VM disk with cache='none' io='native'), run by fio on host1. Medians and ratios.
//! 3. Access path: the same image through FUSE and through libgfapi (QEMU's gluster driver),
//!    with `qemu-img bench` (QEMU's own block layer), sequential 1 MiB write and read.
//!
//! In the lab every node shares this machine's disk and the "network" is veth pairs: the ratios
//! show what replication and the access path cost in software, not what a real LAN adds.
//!
//! Run as root: `cargo bench --bench storage` (`TWOFOLD_BENCH_ROUNDS=N`, default 3;
//! `TWOFOLD_KEEP_LAB=1` leaves the lab up).

use std::path::PathBuf;
use std::time::Instant;

use twofold::lab::{Lab, UpOptions};
use twofold::progress::NoProgress;
use twofold::provision::apply::ApplyCancel;
use twofold::provision::connect::{self, Credentials};
use twofold::provision::{PreflightOptions, Setup, SetupRequest};

const FILE_MIB: u64 = 256;
const SINGLE: &str = "/var/lib/twofold/bench-single";
const LOCAL: &str = "/var/lib/twofold/bench-local";
const STORE: &str = twofold::storage::layout::STORE;

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("storage benchmark: run with `cargo bench --bench storage`");
        return;
    }
    let rounds: usize = std::env::var("TWOFOLD_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=20).contains(n))
        .unwrap_or(3);
    let lab = Lab::new();
    let result = std::panic::catch_unwind(|| run(&lab, rounds));
    cleanup(&lab);
    if std::env::var_os("TWOFOLD_KEEP_LAB").is_none() {
        let _ = lab.down(&NoProgress);
    }
    if result.is_err() {
        // Ends the engine's threads in order first (see `twofold::shutdown`).
        twofold::shutdown::exit(1);
    }
    twofold::shutdown::shutdown();
}

fn sh(lab: &Lab, node: &str, script: &str) -> String {
    lab.exec_output(node, &["sh", "-c", script])
        .unwrap_or_else(|e| panic!("{node}: {script}: {e}"))
}

fn run(lab: &Lab, rounds: usize) {
    provisioning(lab);
    single_brick_volume(lab);
    throughput(lab, rounds);
    access_path(lab, rounds);
}

/// Bare nodes, then the setup engine with root's password, as the wizard runs it.
fn provisioning(lab: &Lab) {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_twofold"));
    let opts = UpOptions {
        bare: true,
        twofold_exe: exe,
        inventory: None,
    };
    lab.up(&opts, &NoProgress).expect("bare lab up");
    let tmp = tempfile::tempdir().unwrap();
    let emulated = lab.status().unwrap().domain_type.as_deref() == Some("qemu");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let jobs = tmp.path().join("bench.db");
    let mut times = Vec::new();
    for _ in 0..2 {
        let started = Instant::now();
        rt.block_on(async {
            let (key, _) = connect::ensure_twofold_key(&tmp.path().join("keys"))
                .await
                .unwrap();
            let setup = Setup::connect(SetupRequest {
                nodes: lab.node_list().unwrap(),
                credentials: Credentials {
                    twofold_key: key,
                    password: Some(lab.root_password().unwrap()),
                    node_passwords: Default::default(),
                    trust_first_contact: false,
                },
                protect: Vec::new(),
                preflight: PreflightOptions {
                    allow_emulation: emulated,
                    ..PreflightOptions::default()
                },
            })
            .await
            .unwrap();
            setup.check(&NoProgress).await.unwrap().require().unwrap();
            let report = setup
                .apply(&jobs, &NoProgress, &ApplyCancel::new())
                .await
                .unwrap()
                .into_result()
                .unwrap();
            let verdict = setup.verify().await.unwrap();
            assert!(verdict.all_passed(), "verify failed after apply");
            times.push((started.elapsed().as_secs_f64(), report.changed));
        });
    }
    println!("\nProvisioning from bare nodes (connect, preflight, apply, verify)");
    println!(
        "  first run:  {:6.1} s  ({} steps changed)",
        times[0].0, times[0].1
    );
    println!(
        "  second run: {:6.1} s  ({} steps changed)  ratio first/second {:.1}",
        times[1].0,
        times[1].1,
        times[0].0 / times[1].0
    );
}

/// A one-brick GlusterFS volume on stor2, with the store's tuning, mounted on host1.
fn single_brick_volume(lab: &Lab) {
    sh(
        lab,
        "stor2",
        "mkdir -p /srv/twofold/bricks/bench-single && \
         { gluster --mode=script volume info bench-single >/dev/null 2>&1 || \
           gluster --mode=script volume create bench-single stor2:/srv/twofold/bricks/bench-single force; } && \
         for o in performance.quick-read=off performance.read-ahead=off performance.io-cache=off \
                  performance.open-behind=off performance.stat-prefetch=off network.remote-dio=disable \
                  performance.strict-o-direct=on cluster.eager-lock=enable; do \
           gluster --mode=script volume set bench-single ${o%%=*} ${o#*=} >/dev/null; done && \
         { gluster --mode=script volume info bench-single | grep -q 'Status: Started' || \
           gluster --mode=script volume start bench-single; }",
    );
    sh(
        lab,
        "host1",
        &format!(
            "mkdir -p {SINGLE} {LOCAL} && {{ mountpoint -q {SINGLE} || mount -t glusterfs stor2:/bench-single {SINGLE}; }}"
        ),
    );
}

fn cleanup(lab: &Lab) {
    let _ = lab.exec_output(
        "host1",
        &[
            "sh",
            "-c",
            &format!(
                "rm -f {STORE}/twofold-bench.img {STORE}/bench-gfapi.img {SINGLE}/twofold-bench.img {LOCAL}/twofold-bench.img; \
                 umount {SINGLE} 2>/dev/null; rmdir {SINGLE} 2>/dev/null; rm -rf {LOCAL}; true"
            ),
        ],
    );
    let _ = lab.exec_output(
        "stor2",
        &[
            "sh",
            "-c",
            "gluster --mode=script volume stop bench-single >/dev/null 2>&1; gluster --mode=script volume delete bench-single >/dev/null 2>&1; rm -rf /srv/twofold/bricks/bench-single; true",
        ],
    );
}

struct Workload {
    name: &'static str,
    rw: &'static str,
    bs: &'static str,
    depth: u32,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "sequential write 1 MiB",
        rw: "write",
        bs: "1M",
        depth: 4,
    },
    Workload {
        name: "sequential read 1 MiB",
        rw: "read",
        bs: "1M",
        depth: 4,
    },
    Workload {
        name: "random write 4 KiB",
        rw: "randwrite",
        bs: "4k",
        depth: 16,
    },
    Workload {
        name: "random read 4 KiB",
        rw: "randread",
        bs: "4k",
        depth: 16,
    },
];

const TARGETS: &[(&str, &str)] = &[
    ("replicated store", STORE),
    ("single brick", SINGLE),
    ("local file", LOCAL),
];

/// One fio run on host1; returns (MiB/s, IOPS).
fn fio(lab: &Lab, dir: &str, w: &Workload, seconds: u32) -> (f64, f64) {
    let out = lab
        .exec_output(
            "host1",
            &[
                "fio",
                "--name=vmdisk",
                &format!("--filename={dir}/twofold-bench.img"),
                &format!("--size={FILE_MIB}M"),
                "--direct=1",
                "--ioengine=libaio",
                &format!("--rw={}", w.rw),
                &format!("--bs={}", w.bs),
                &format!("--iodepth={}", w.depth),
                &format!("--runtime={seconds}"),
                "--time_based",
                "--ramp_time=1",
                "--randrepeat=0",
                "--output-format=json",
            ],
        )
        .unwrap_or_else(|e| panic!("fio on {dir}: {e}"));
    let start = out.find('{').expect("fio printed JSON");
    let v: serde_json::Value = serde_json::from_str(&out[start..]).expect("fio JSON");
    let side = if w.rw.contains("write") {
        "write"
    } else {
        "read"
    };
    let job = &v["jobs"][0][side];
    let bw = job["bw_bytes"].as_f64().unwrap_or(0.0) / 1048576.0;
    let iops = job["iops"].as_f64().unwrap_or(0.0);
    (bw, iops)
}

fn throughput(lab: &Lab, rounds: usize) {
    // Lay each file out in full first, so writes measure writing, not allocating.
    for (_, dir) in TARGETS {
        fio(lab, dir, &WORKLOADS[0], 3);
    }
    // samples[target][workload] = (MiB/s, IOPS) per round
    let mut samples = vec![vec![(Vec::new(), Vec::new()); WORKLOADS.len()]; TARGETS.len()];
    for round in 0..rounds {
        for k in 0..TARGETS.len() {
            // Rotate the order each round, so no target always runs first.
            let t = (k + round) % TARGETS.len();
            for (wi, w) in WORKLOADS.iter().enumerate() {
                let (bw, iops) = fio(lab, TARGETS[t].1, w, 4);
                samples[t][wi].0.push(bw);
                samples[t][wi].1.push(iops);
            }
        }
    }
    println!(
        "\nVM disk throughput on host1 (fio, O_DIRECT + native AIO, {FILE_MIB} MiB file, medians of {rounds})"
    );
    println!(
        "  {:<24} {:>22} {:>22} {:>22} {:>10} {:>10}",
        "workload", "replicated store", "single brick", "local file", "repl/local", "repl/single"
    );
    for (wi, w) in WORKLOADS.iter().enumerate() {
        let med: Vec<(f64, f64)> = (0..TARGETS.len())
            .map(|t| (median(&samples[t][wi].0), median(&samples[t][wi].1)))
            .collect();
        let cell = |(bw, iops): (f64, f64)| format!("{bw:8.1} MiB/s {iops:7.0} IOPS");
        println!(
            "  {:<24} {:>22} {:>22} {:>22} {:>10.2} {:>10.2}",
            w.name,
            cell(med[0]),
            cell(med[1]),
            cell(med[2]),
            med[0].0 / med[2].0,
            med[0].0 / med[1].0
        );
    }
}

/// `qemu-img bench` through FUSE (file, cache none, native AIO) and through libgfapi.
fn access_path(lab: &Lab, rounds: usize) {
    let img = format!("{STORE}/bench-gfapi.img");
    sh(
        lab,
        "host1",
        &format!("rm -f {img} && qemu-img create -q -f raw {img} {FILE_MIB}M && dd if=/dev/zero of={img} bs=1M count={FILE_MIB} oflag=direct conv=notrunc status=none"),
    );
    let count = FILE_MIB.to_string();
    let run = |gfapi: bool, write: bool| -> f64 {
        let target = if gfapi {
            "gluster://stor1/vmstore/bench-gfapi.img".to_string()
        } else {
            img.clone()
        };
        let mut args = vec![
            "qemu-img", "bench", "-f", "raw", "-t", "none", "-c", &count, "-s", "1M", "-S", "1M",
            "-d", "4",
        ];
        if !gfapi {
            args.extend(["-i", "native"]);
        }
        if write {
            args.push("-w");
        }
        args.push(&target);
        let out = lab
            .exec_output("host1", &args)
            .unwrap_or_else(|e| panic!("qemu-img bench {target}: {e}"));
        let secs: f64 = out
            .split("Run completed in ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("unexpected qemu-img bench output: {out}"));
        FILE_MIB as f64 / secs
    };
    let mut s = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for round in 0..rounds {
        for k in 0..2 {
            let gfapi = (k + round) % 2 == 1;
            for (wi, write) in [true, false].into_iter().enumerate() {
                s[gfapi as usize][wi].push(run(gfapi, write));
            }
        }
    }
    println!("\nAccess path to the store (qemu-img bench, sequential 1 MiB, depth 4, medians of {rounds})");
    for (wi, name) in ["write", "read"].iter().enumerate() {
        let fuse = median(&s[0][wi]);
        let gfapi = median(&s[1][wi]);
        println!(
            "  {name:<6} FUSE {fuse:8.1} MiB/s   libgfapi {gfapi:8.1} MiB/s   FUSE/libgfapi {:.2}",
            fuse / gfapi
        );
    }
}

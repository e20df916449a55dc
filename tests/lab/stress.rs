//! The engine under fire, and a daemon that died coming back.
//!
//! `twofold vm list`, `twofold vm migrate` and `twofold status` run hundreds of times, as separate
//! processes, several at once, while the demo guest's host has its libvirtd killed with SIGKILL
//! and started again and its sshd stopped and started. Every process must end by itself with
//! exit status 0, or 1 and a message that says what went wrong: never a signal (the SIGSEGV of a
//! process exiting while libvirt's event thread still freed a connection), a panic or a hang.
//!
//! Then libvirtd is killed on the guest's host and the setup (`twofold setup apply`, the plan the
//! lab is built with) starts it again despite the pid file and sockets it left; the guest runs on
//! through it and is listed again on the same host.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use twofold::lab::console::unix_ms;
use twofold::lab::rounds::{self, other_host};
use twofold::lab::{check_guest_since, DEMO_VM};

use crate::setup::{outcome, setup_apply};
use crate::Ctx;

/// Workers start commands until then; the chaos runs as long.
const FIRE: Duration = Duration::from_secs(75);
/// One command that has not ended by then has hung: it is killed and counted as a failure. A
/// command may legitimately wait for libvirt's keepalive (about 20 s) on a peer that vanished.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// How one command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Ok,
    /// Exit status 1 and an `error: ...` message.
    ClearError,
    /// Anything else: a signal, a panic, another status, an error without a message, a hang.
    Crash,
}

#[derive(Default)]
struct Tally {
    runs: Vec<(&'static str, End)>,
    /// Command, how it ended, the tail of what it printed.
    crashes: Vec<String>,
    /// The clear errors' first lines (host-specific words kept), with their counts.
    errors: std::collections::BTreeMap<String, usize>,
}

impl Tally {
    fn count(&self, kind: &str, end: Option<End>) -> usize {
        self.runs
            .iter()
            .filter(|(k, e)| *k == kind && end.is_none_or(|want| *e == want))
            .count()
    }
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(6)..].join("\n")
}

/// Run `twofold ARGS` against the lab's inventory, bounded by [`COMMAND_LIMIT`], and judge how it
/// ended. Returns the judgement and its stdout.
fn run_one(ctx: &Ctx, args: &[&str]) -> (End, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(&ctx.twofold)
        .arg("--db")
        .arg(&ctx.db)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("run twofold");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > COMMAND_LIMIT {
            // Where it hangs is the bug report: every thread's stack, then kill it.
            let stacks = Command::new("gdb")
                .args([
                    "-batch",
                    "-p",
                    &child.id().to_string(),
                    "-ex",
                    "thread apply all bt",
                ])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                .unwrap_or_else(|e| format!("(no stacks: gdb: {e})"));
            let _ = child.kill();
            let _ = child.wait();
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&err_path)
                .unwrap();
            let _ = std::io::Write::write_all(&mut f, format!("\n--- stacks\n{stacks}").as_bytes());
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::fs::read(&out_path).unwrap_or_default();
    let err = std::fs::read(&err_path).unwrap_or_default();
    let err_text = String::from_utf8_lossy(&err).to_string();
    let end = match status {
        None => End::Crash,
        Some(s) if s.signal().is_some() => End::Crash,
        Some(_) if err_text.contains("panicked") => End::Crash,
        Some(s) if s.code() == Some(0) => End::Ok,
        Some(s) if s.code() == Some(1) && err_text.contains("error: ") => End::ClearError,
        Some(_) => End::Crash,
    };
    let (how, printed) = match status {
        None => (
            format!("hung for {} s and was killed", COMMAND_LIMIT.as_secs()),
            err_text,
        ),
        Some(s) => (s.to_string(), tail(&err)),
    };
    (
        end,
        String::from_utf8_lossy(&out).to_string(),
        format!("{how}\n--- stderr\n{printed}"),
    )
}

fn record(tally: &Mutex<Tally>, kind: &'static str, args: &[&str], r: &(End, String, String)) {
    let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
    t.runs.push((kind, r.0));
    match r.0 {
        End::Crash => t
            .crashes
            .push(format!("twofold {}: {}", args.join(" "), r.2)),
        End::ClearError => {
            // The progress bar may share the line: the message starts at "error: ".
            let first =
                r.2.lines()
                    .find_map(|l| l.find("error: ").map(|i| &l[i..]))
                    .unwrap_or("error: ?");
            let short: String = first.chars().take(110).collect();
            *t.errors.entry(format!("{kind}: {short}")).or_default() += 1;
        }
        End::Ok => {}
    }
}

/// The node's sshd listener (its pid file is in the node's private /run).
fn stop_sshd(ctx: &Ctx, node: &str) {
    ctx.lab
        .exec_output(node, &["sh", "-c", "kill $(cat /run/sshd.pid)"])
        .unwrap();
}

/// Start it again as the node's init does (sessions that were open stayed up meanwhile).
fn start_sshd(ctx: &Ctx, node: &str) {
    let dir = ctx.lab.node_dir(node);
    let script = format!(
        "kill -0 $(cat /run/sshd.pid 2>/dev/null) 2>/dev/null || /usr/sbin/sshd -f {d}/sshd_config -E {d}/var-log/sshd.log",
        d = dir.display()
    );
    ctx.lab.exec_output(node, &["sh", "-c", &script]).unwrap();
}

fn kill_libvirtd(ctx: &Ctx, node: &str) -> usize {
    let pids = ctx.lab.daemon_pids(node, "libvirtd").unwrap();
    for p in &pids {
        let _ = Command::new("kill")
            .args(["-KILL", &p.to_string()])
            .status();
    }
    pids.len()
}

fn start_libvirtd(ctx: &Ctx, node: &str) {
    if ctx.lab.daemon_pids(node, "libvirtd").unwrap().is_empty() {
        ctx.lab
            .exec_output(
                node,
                &["libvirtd", "-d", "-f", "/etc/libvirt/libvirtd.conf"],
            )
            .unwrap();
    }
}

/// Wait until libvirtd on `node` answers again (bounded).
fn wait_libvirtd(ctx: &Ctx, node: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while ctx
        .lab
        .exec_output(node, &["virsh", "-c", "qemu:///system", "version"])
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "libvirtd on {node} did not come back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn commands_survive_daemons_dying(ctx: &Ctx) {
    rounds::wait_heartbeats(&ctx.lab, DEMO_VM, 10, Duration::from_secs(120)).unwrap();
    let victim =
        rounds::running_on(&ctx.hosts, &ctx.inventory(), DEMO_VM).unwrap_or_else(|e| panic!("{e}"));
    let key = ctx.lab.admin_key();
    let key_s = key.to_str().unwrap().to_string();
    let start = unix_ms();
    let began = Instant::now();
    let fire_over = AtomicBool::new(false);
    let tally = Mutex::new(Tally::default());
    let mut chaos_cycles = 0u32;

    std::thread::scope(|s| {
        for worker in 0..2 {
            let tally = &tally;
            let fire_over = &fire_over;
            s.spawn(move || {
                let mut i = 0;
                while !fire_over.load(Ordering::Relaxed) {
                    let args: &[&str] = if (i + worker) % 2 == 0 {
                        &["vm", "list"]
                    } else {
                        &["vm", "list", "--json"]
                    };
                    record(tally, "vm list", args, &run_one(ctx, args));
                    i += 1;
                }
            });
        }
        {
            let tally = &tally;
            let fire_over = &fire_over;
            let key_s = &key_s;
            s.spawn(move || {
                while !fire_over.load(Ordering::Relaxed) {
                    let args = ["status", "--json", "--key", key_s.as_str()];
                    record(tally, "status", &args, &run_one(ctx, &args));
                }
            });
        }
        {
            let tally = &tally;
            let fire_over = &fire_over;
            let victim = &victim;
            s.spawn(move || {
                let mut to = other_host(victim);
                while !fire_over.load(Ordering::Relaxed) {
                    let args = ["vm", "migrate", DEMO_VM, "--to", to];
                    let r = run_one(ctx, &args);
                    // Moved, or already there: next time the other way.
                    if r.0 == End::Ok || r.2.contains("already runs on") {
                        to = other_host(to);
                    }
                    record(tally, "vm migrate", &args, &r);
                }
            });
        }
        // The chaos, on this thread: the guest's host loses libvirtd (SIGKILL: QEMU and the
        // guest go on) and sshd, in turn and overlapping, then is whole for a while (long
        // enough for a migration to it to go through).
        let pause = |secs: u64| std::thread::sleep(Duration::from_secs(secs));
        while began.elapsed() < FIRE {
            kill_libvirtd(ctx, &victim);
            pause(3);
            stop_sshd(ctx, &victim);
            pause(2);
            start_libvirtd(ctx, &victim);
            pause(2);
            start_sshd(ctx, &victim);
            pause(6);
            chaos_cycles += 1;
        }
        fire_over.store(true, Ordering::Relaxed);
    });
    start_libvirtd(ctx, &victim);
    start_sshd(ctx, &victim);
    wait_libvirtd(ctx, &victim);
    let took = began.elapsed();

    let t = tally.into_inner().unwrap();
    let kinds = ["vm list", "vm migrate", "status"];
    println!(
        "  {} commands in {:.0} s with {chaos_cycles} chaos cycles on {victim} (libvirtd SIGKILL + restart, sshd stop + start):",
        t.runs.len(),
        took.as_secs_f64()
    );
    for k in kinds {
        println!(
            "    {k:10}: {:4} runs, {:4} exit 0, {:4} clear errors, {} crashes",
            t.count(k, None),
            t.count(k, Some(End::Ok)),
            t.count(k, Some(End::ClearError)),
            t.count(k, Some(End::Crash))
        );
    }
    for (e, n) in &t.errors {
        println!("    {n:4} x {e}");
    }
    assert!(
        t.crashes.is_empty(),
        "{} of {} commands crashed or hung:\n{}",
        t.crashes.len(),
        t.runs.len(),
        t.crashes.join("\n\n")
    );
    assert!(t.runs.len() >= 200, "only {} commands ran", t.runs.len());
    assert!(chaos_cycles >= 3, "only {chaos_cycles} chaos cycles");
    // The fire really reached every command: each saw the host both answer and fail.
    for k in kinds {
        assert!(t.count(k, Some(End::Ok)) > 0, "{k} never succeeded");
    }
    for k in ["vm list", "status"] {
        assert!(t.count(k, None) >= 20, "{k} ran too rarely");
    }
    assert!(
        t.count("vm migrate", Some(End::ClearError)) > 0,
        "no migration was refused while the host was down"
    );

    // The status look really looked: every node, and the host that was under fire is back up.
    let out = ctx.cli(&["status", "--json", "--key", &key_s]);
    assert!(out.status.success(), "{}", outcome(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4, "{status}");
    let v = nodes.iter().find(|n| n["name"] == victim.as_str()).unwrap();
    assert_eq!(v["state"], "up", "{status}");

    // The guest: one copy, still running, nothing it acknowledged lost, never rebooted.
    let on = rounds::running_on(&ctx.hosts, &ctx.inventory(), DEMO_VM)
        .unwrap_or_else(|e| panic!("after the fire: {e}"));
    let check = check_guest_since(&ctx.lab, DEMO_VM, start).unwrap();
    println!(
        "  guest on {on} afterwards: {}",
        check.to_string().replace('\n', "; ")
    );
    assert!(check.records.is_clean(), "{check}");
    assert_eq!(
        check.heartbeats.boots.len(),
        1,
        "the guest rebooted: {check}"
    );
    assert!(check.heartbeats.max_acked > 0, "{check}");
}

/// What a daemon killed with SIGKILL left behind on `node`: its pid file and its socket.
fn leftovers(ctx: &Ctx, node: &str) -> bool {
    ctx.lab
        .exec_output(
            node,
            &[
                "sh",
                "-c",
                "test -e /run/libvirtd.pid && test -S /run/libvirt/libvirt-sock",
            ],
        )
        .is_ok()
}

pub fn killed_libvirtd_comes_back_with_setup(ctx: &Ctx) {
    rounds::wait_heartbeats(&ctx.lab, DEMO_VM, 10, Duration::from_secs(120)).unwrap();
    let on = rounds::running_on(&ctx.hosts, &ctx.inventory(), DEMO_VM).unwrap();
    let start = unix_ms();
    assert!(kill_libvirtd(ctx, &on) > 0, "libvirtd ran on {on}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ctx.lab.daemon_pids(&on, "libvirtd").unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "libvirtd on {on} survived SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The case at hand: a dead daemon whose pid file and socket are still there.
    assert!(
        leftovers(ctx, &on),
        "libvirtd left no pid file and socket on {on}"
    );
    let out = ctx.cli(&["vm", "list", "--json"]);
    assert!(out.status.success(), "{}", outcome(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let host = listed["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == on.as_str())
        .unwrap();
    assert_eq!(host["reachable"], false, "{listed}");

    let t = Instant::now();
    let out = setup_apply(ctx, &ctx.db, &ctx.lab.nodes_file());
    assert!(out.status.success(), "{}", outcome(&out));
    println!(
        "  setup apply brought libvirtd back on {on} in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert!(!ctx.lab.daemon_pids(&on, "libvirtd").unwrap().is_empty());

    // The guest never noticed, and its host lists it again.
    let out = ctx.cli(&["vm", "list", "--json"]);
    assert!(out.status.success(), "{}", outcome(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let demo: Vec<&serde_json::Value> = listed["vms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["name"] == DEMO_VM)
        .collect();
    assert_eq!(demo.len(), 1, "{listed}");
    assert_eq!(demo[0]["host"], on.as_str(), "{listed}");
    assert_eq!(demo[0]["state"], "running", "{listed}");
    std::thread::sleep(rounds::SETTLE);
    let check = check_guest_since(&ctx.lab, DEMO_VM, start).unwrap();
    assert!(check.ok(), "{check}");
    assert_eq!(check.heartbeats.boots.len(), 1, "{check}");
}

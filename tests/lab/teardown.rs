//! `down` leaves nothing behind, also after `up` was killed half-way.

use std::time::{Duration, Instant};

use twofold::progress::NoProgress;

use crate::Ctx;

fn leftovers() -> Vec<String> {
    let mut left = Vec::new();
    let ns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    for l in String::from_utf8_lossy(&ns.stdout).lines() {
        if l.starts_with(twofold::lab::NETNS_PREFIX) {
            left.push(format!("netns {l}"));
        }
    }
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    for l in String::from_utf8_lossy(&links.stdout).lines() {
        if l.contains(twofold::lab::BRIDGE) || l.contains(twofold::lab::VETH_PREFIX) {
            left.push(format!("link {l}"));
        }
    }
    let lab_dir = twofold::lab::Lab::new().dir;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&*lab_dir.to_string_lossy()) && !cmdline.contains("lab up") {
            left.push(format!("process {cmdline}"));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    for l in mounts.lines() {
        if l.contains("glusterfs") || l.contains("/run/netns/tf-") {
            left.push(format!("mount {l}"));
        }
    }
    left
}

pub fn down_after_crash_halfway_leaves_nothing(ctx: &Ctx) {
    ctx.lab.down(&NoProgress).unwrap();
    assert_eq!(leftovers(), Vec::<String>::new());
    // Start `up` and kill it while it is building nodes.
    let mut child = std::process::Command::new(&ctx.twofold)
        .arg("--db")
        .arg(&ctx.db)
        .args(["lab", "up"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Wait until at least one node exists, then crash the command.
    while ctx.lab.anchor_pid("host1").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = ctx.cli(&["lab", "down"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(leftovers(), Vec::<String>::new());
}

//! The lab itself: four nodes with their own namespaces, daemons, names, keys and storage.

use std::path::Path;
use std::process::{Command, Output};

use twofold::lab::{NODES, STORE_MOUNT};
use twofold::nodes::{NodeList, Role};
use twofold::progress::NoProgress;

use crate::Ctx;

pub fn every_node_runs_its_daemons(ctx: &Ctx) {
    let status = ctx.lab.status().unwrap();
    assert_eq!(status.nodes.len(), 4);
    for n in &status.nodes {
        assert_eq!(n.state, "running", "{n:?}");
        let expected: &[&str] = match n.role {
            Role::Host => &["sshd", "libvirtd", "virtlogd", "virtlockd"],
            Role::Storage => &["sshd", "glusterd", "glusterfsd"],
        };
        for d in expected {
            assert!(
                n.daemons.iter().any(|x| x.name == *d && x.running),
                "{} should run {d}: {:?}",
                n.name,
                n.daemons
            );
        }
    }
}

pub fn nodes_have_own_names_and_host_uuids(ctx: &Ctx) {
    let mut uuids = Vec::new();
    for n in NODES {
        let name = ctx.lab.exec_output(n.name, &["hostname"]).unwrap();
        assert_eq!(name.trim(), n.name);
        let addr = ctx
            .lab
            .exec_output(n.name, &["ip", "-br", "addr", "show", "eth0"])
            .unwrap();
        assert!(addr.contains(&n.ip().to_string()), "{addr}");
        if n.role == Role::Host {
            let caps = ctx
                .lab
                .exec_output(n.name, &["virsh", "-c", "qemu:///system", "capabilities"])
                .unwrap();
            let uuid = caps
                .lines()
                .find(|l| l.trim().starts_with("<uuid>"))
                .expect("host uuid")
                .trim()
                .to_string();
            uuids.push(uuid);
        }
    }
    assert_eq!(uuids.len(), 2);
    assert_ne!(
        uuids[0], uuids[1],
        "hosts must have distinct UUIDs for migration"
    );
}

/// The system's ssh client, strict about host keys: it trusts only `known_hosts`.
fn ssh(key: &Path, known_hosts: &Path, ip: &str, command: &str) -> Output {
    Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
        ])
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg("-i")
        .arg(key)
        .arg(format!("root@{ip}"))
        .arg(command)
        .output()
        .unwrap()
}

pub fn ssh_reaches_every_node_with_pinned_keys(ctx: &Ctx) {
    let key = ctx.lab.admin_key();
    let known = ctx.lab.known_hosts();
    for n in NODES {
        let out = ssh(&key, &known, &n.ip().to_string(), "hostname");
        assert!(
            out.status.success(),
            "ssh {}: {}",
            n.name,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), n.name);
    }
    // A wrong pinned key is refused: the host key check is real.
    let wrong = tempfile::NamedTempFile::new().unwrap();
    let other = std::fs::read_to_string(&known).unwrap();
    let host1_line = other.lines().find(|l| l.contains("host1")).unwrap();
    let stor1_key: Vec<&str> = other
        .lines()
        .find(|l| l.contains("stor1"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .collect();
    let forged = format!(
        "{} {}\n",
        host1_line.split_whitespace().next().unwrap(),
        stor1_key.join(" ")
    );
    std::fs::write(wrong.path(), forged).unwrap();
    let out = ssh(&key, wrong.path(), &NODES[0].ip().to_string(), "true");
    assert!(!out.status.success(), "a changed host key must be refused");
}

pub fn store_replicates_to_both_bricks(ctx: &Ctx) {
    let name = format!("replica-check-{}", std::process::id());
    let path = format!("{STORE_MOUNT}/{name}");
    ctx.lab
        .exec_output(
            "host1",
            &["sh", "-c", &format!("echo twofold > {path} && sync")],
        )
        .unwrap();
    let seen = ctx.lab.exec_output("host2", &["cat", &path]).unwrap();
    assert_eq!(seen.trim(), "twofold");
    for stor in ["stor1", "stor2"] {
        let brick = ctx
            .lab
            .node_dir(stor)
            .join("srv/twofold/bricks/vmstore")
            .join(&name);
        assert_eq!(
            std::fs::read_to_string(&brick).unwrap().trim(),
            "twofold",
            "{stor}"
        );
    }
    ctx.lab.exec_output("host1", &["rm", "-f", &path]).unwrap();
}

pub fn up_again_changes_nothing(ctx: &Ctx) {
    let before: Vec<Option<u32>> = NODES.iter().map(|n| ctx.lab.anchor_pid(n.name)).collect();
    let opts = twofold::lab::UpOptions {
        bare: false,
        twofold_exe: ctx.twofold.clone(),
        inventory: Some(ctx.db.clone()),
    };
    let t = std::time::Instant::now();
    let status = ctx.lab.up(&opts, &NoProgress).unwrap();
    assert!(status.all_running());
    let after: Vec<Option<u32>> = NODES.iter().map(|n| ctx.lab.anchor_pid(n.name)).collect();
    assert_eq!(before, after, "a second up must keep the running nodes");
    assert!(
        t.elapsed().as_secs() < 30,
        "a second up should be quick: {:?}",
        t.elapsed()
    );
}

pub fn node_list_round_trips(ctx: &Ctx) {
    let out = ctx.cli(&["lab", "nodes"]);
    assert!(out.status.success());
    let list = NodeList::parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(list.nodes.len(), 4);
    assert_eq!(list.hosts().count(), 2);
    assert!(list
        .nodes
        .iter()
        .all(|n| n.host_key.is_some() && n.key.is_some()));
    let inv = ctx.inventory();
    assert_eq!(inv.nodes().unwrap().len(), 4, "lab up registers its nodes");
}

pub fn exec_rejects_unknown_node(ctx: &Ctx) {
    let out = ctx.cli(&["lab", "exec", "host9", "--", "true"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a lab node"), "{err}");
    let out = ctx.cli(&["lab", "exec", "host1", "--", "sh", "-c", "exit 3"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "exit code of the command is passed on"
    );
}

//! The checks through real SSH sessions to this machine (a loopback sshd, see
//! [`crate::node::test_sshd`]); the machine running the tests is Debian 12. Nothing here changes
//! the machine: the checks only read.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::node::test_sshd::TestSshd;
use crate::node::{Auth, HostKeyPolicy, Target};
use crate::progress::NoProgress;

/// Bound on every step, so that a hang fails instead of blocking the run.
const STEP: Duration = Duration::from_secs(60);

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, f)
        .await
        .expect("step did not finish within 60 s")
}

fn node(sshd: &TestSshd, name: &str, role: Role) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        role,
        address: "127.0.0.1".into(),
        ssh_port: sshd.port,
        user: sshd.user.clone(),
        key: Some(sshd.client_key.clone()),
        host_key: Some(sshd.host_key()),
    }
}

async fn connect(sshd: &TestSshd, spec: &NodeSpec) -> Session {
    bounded(Session::connect(
        &Target::from(spec),
        &Auth::KeyFile(sshd.client_key.clone()),
        &HostKeyPolicy::for_node(spec),
        Duration::from_secs(10),
    ))
    .await
    .unwrap_or_else(|e| panic!("connect failed: {e}\nsshd log:\n{}", sshd.log()))
}

/// The host packages to look for: one every machine running these tests has (the fixture needs
/// it) and one that does not exist.
fn test_opts() -> PreflightOptions {
    PreflightOptions {
        host_packages: vec!["openssh-server".into(), "twofold-no-such-package".into()],
        storage_packages: vec!["openssh-server".into()],
        ..Default::default()
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Progress for Recorder {
    fn begin(&self, phase: &str, total: Option<u64>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("begin {phase} {total:?}"));
    }
    fn update(&self, done: u64, _total: Option<u64>) {
        self.0.lock().unwrap().push(format!("update {done}"));
    }
    fn message(&self, line: &str) {
        self.0.lock().unwrap().push(format!("message {line}"));
    }
    fn finish(&self) {
        self.0.lock().unwrap().push("finish".into());
    }
}

fn show(report: &PreflightReport) -> String {
    serde_json::to_string_pretty(report).unwrap()
}

#[tokio::test]
async fn per_node_checks_on_this_machine() {
    let sshd = TestSshd::start();
    let spec = node(&sshd, "local", Role::Host);
    let session = connect(&sshd, &spec).await;
    let nodes = vec![(spec.clone(), session)];
    let opts = test_opts();
    let progress = Recorder::default();
    let report = bounded(run_preflight(&nodes, &opts, &progress))
        .await
        .unwrap();
    let all = show(&report);

    // One node: its own checks, no checks between nodes.
    let ids: Vec<CheckId> = report.results.iter().map(|r| r.check).collect();
    assert_eq!(ids, CheckId::per_node(Role::Host), "{all}");
    assert!(report.results.iter().all(|r| r.node == "local"));

    let get = |c| report.get("local", c, None).unwrap();
    let os = get(CheckId::Os);
    assert_eq!(os.status, Status::Pass, "{all}");
    assert!(os.found.contains("Debian GNU/Linux 12"), "{all}");

    let facts = &report.facts[0];
    assert!(facts.cores.unwrap() >= 1, "{all}");
    assert!(facts.ram_mib.unwrap() > 0, "{all}");
    assert!(facts.free_disk_gib.is_some(), "{all}");
    assert!(facts.os.as_deref().unwrap().contains("Debian"));
    assert_eq!(get(CheckId::Cores).found, {
        let n = facts.cores.unwrap();
        format!("{n} core{}", if n == 1 { "" } else { "s" })
    });
    assert!(get(CheckId::Ram).found.ends_with("of RAM"), "{all}");
    assert!(get(CheckId::Disk).found.contains("GiB free"), "{all}");
    assert_ne!(get(CheckId::CpuVirt).found, "", "{all}");

    let pk = get(CheckId::Packages);
    assert_eq!(pk.status, Status::Warn, "{all}");
    assert_eq!(pk.found, "not installed: twofold-no-such-package", "{all}");
    assert_eq!(pk.fix, "apt-get install -y twofold-no-such-package");

    // Same machine, same clock: well within the thresholds.
    let clock = get(CheckId::Clock);
    assert_ne!(clock.status, Status::Fail, "{all}");
    assert!(facts.clock_offset_ms.unwrap().abs() < 500.0, "{all}");

    assert!(
        report.passed() || get(CheckId::CpuVirt).status == Status::Fail,
        "{all}"
    );
    let events = progress.0.lock().unwrap().clone();
    assert_eq!(events[0], "begin checking the nodes Some(1)");
    assert_eq!(events[1], "update 1");
    assert!(
        events[2].starts_with("message local: 7 checks"),
        "{events:?}"
    );
    assert_eq!(events[3], "finish");
    assert_eq!(report.sizing_hosts().len(), 1);

    // One check again, this time with installing forbidden.
    let (spec, session) = &nodes[0];
    let strict = PreflightOptions {
        no_install: true,
        ..opts.clone()
    };
    let pk = bounded(run_check(CheckId::Packages, spec, session, &strict))
        .await
        .unwrap();
    assert_eq!(pk.status, Status::Fail);
    assert_eq!(
        pk.fix,
        "Run as root on local: apt-get update && apt-get install -y twofold-no-such-package"
    );
    let all_there = PreflightOptions {
        host_packages: vec!["openssh-server".into()],
        ..strict
    };
    let pk = bounded(run_check(CheckId::Packages, spec, session, &all_there))
        .await
        .unwrap();
    assert_eq!(pk.status, Status::Pass);
    assert_eq!(pk.found, "installed: openssh-server");

    // A storage node's data path that does not exist yet: its nearest parent is measured.
    let mut storage = spec.clone();
    storage.role = Role::Storage;
    let deep = PreflightOptions {
        storage_data_path: "/srv/twofold-test-no-such-dir/brick".into(),
        ..opts.clone()
    };
    let disk = bounded(run_check(CheckId::Disk, &storage, session, &deep))
        .await
        .unwrap();
    assert!(
        disk.found
            .contains("(/srv/twofold-test-no-such-dir/brick does not exist yet"),
        "{disk:?}"
    );

    // Bad requests are errors, not panics, and run nothing.
    let e = run_check(CheckId::CpuVirt, &storage, session, &opts)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_input");
    assert!(e.to_string().contains("'local' is a storage node"), "{e}");
    let e = run_check(CheckId::Reach, spec, session, &opts)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("check_peers"), "{e}");
    let mut other = spec.clone();
    other.name = "elsewhere".into();
    let e = run_check(CheckId::Os, &other, session, &opts)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("session given for node 'elsewhere' is connected to 'local'"),
        "{e}"
    );
}

#[tokio::test]
async fn two_nodes_reach_and_resolve_each_other() {
    let (sa, sb) = (TestSshd::start(), TestSshd::start());
    // Names no resolver knows, so that the resolve check has something to say.
    let a = node(&sa, "tf-preflight-a", Role::Host);
    let b = node(&sb, "tf-preflight-b", Role::Storage);
    let nodes = vec![
        (a.clone(), connect(&sa, &a).await),
        (b.clone(), connect(&sb, &b).await),
    ];
    let report = bounded(run_preflight(&nodes, &test_opts(), &NoProgress))
        .await
        .unwrap();
    let all = show(&report);
    let host_checks = CheckId::per_node(Role::Host).len();
    let storage_checks = CheckId::per_node(Role::Storage).len();
    assert_eq!(
        report.results.len(),
        host_checks + storage_checks + 4,
        "{all}"
    );
    assert_eq!(report.facts.len(), 2);
    assert!(report
        .get("tf-preflight-b", CheckId::CpuVirt, None)
        .is_none());
    assert_eq!(
        report
            .get("tf-preflight-b", CheckId::Packages, None)
            .unwrap()
            .status,
        Status::Pass,
        "{all}"
    );

    for (from, to, port) in [
        ("tf-preflight-a", "tf-preflight-b", sb.port),
        ("tf-preflight-b", "tf-preflight-a", sa.port),
    ] {
        let reach = report.get(from, CheckId::Reach, Some(to)).unwrap();
        // Loopback is fast, but the machine may be busy: no failure is what matters.
        assert_ne!(reach.status, Status::Fail, "{all}");
        assert!(
            reach
                .found
                .starts_with(&format!("{from} reaches 127.0.0.1:{port}; round trip")),
            "{all}"
        );
        let resolve = report.get(from, CheckId::Resolve, Some(to)).unwrap();
        assert_eq!(resolve.status, Status::Warn, "{all}");
        assert_eq!(
            resolve.fix,
            format!("Setup writes the line '127.0.0.1 {to}' to /etc/hosts on {from}; or add {to} to your DNS.")
        );
    }
    assert_eq!(report.sizing_storage().len(), 1);

    // A peer whose port nobody listens on: refused, a failure that says so.
    let closed = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let mut gone = node(&sa, "tf-preflight-c", Role::Storage);
    gone.ssh_port = closed;
    let (spec, session) = &nodes[0];
    let results = bounded(check_peers(spec, session, &[gone], &test_opts()))
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].check, CheckId::Reach);
    assert_eq!(results[0].status, Status::Fail, "{results:?}");
    assert!(
        results[0].found.contains("Connection refused"),
        "{results:?}"
    );
    assert!(results[0].fix.contains("SSH server of tf-preflight-c"));

    // A node cannot be its own peer.
    let e = check_peers(spec, session, std::slice::from_ref(spec), &test_opts())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("appears twice"), "{e}");
}

#[tokio::test]
async fn bad_node_lists_are_errors() {
    let sshd = TestSshd::start();
    let a = node(&sshd, "a1", Role::Host);
    let opts = test_opts();

    let e = run_preflight::<Session>(&[], &opts, &NoProgress)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no nodes to check"), "{e}");

    // Two nodes of the same name (the second on another address, so only the name clashes).
    let mut dup = a.clone();
    dup.address = "localhost".into();
    let nodes = vec![
        (a.clone(), connect(&sshd, &a).await),
        (dup.clone(), connect(&sshd, &dup).await),
    ];
    let e = run_preflight(&nodes, &opts, &NoProgress).await.unwrap_err();
    assert_eq!(e.code(), "invalid_input");
    assert!(
        e.to_string()
            .contains("node name 'a1' appears twice; every node needs its own name"),
        "{e}"
    );

    // Sessions swapped between two nodes.
    let mut b = a.clone();
    b.name = "b1".into();
    b.address = "localhost".into();
    let swapped = vec![
        (a.clone(), connect(&sshd, &b).await),
        (b.clone(), connect(&sshd, &a).await),
    ];
    let e = run_preflight(&swapped, &opts, &NoProgress)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("session given for node 'a1' is connected to 'b1'"),
        "{e}"
    );

    // Bad options are refused before anything runs.
    let bad = PreflightOptions {
        host_packages: vec!["ok-name".into(), "$(reboot)".into()],
        ..Default::default()
    };
    let e = run_preflight(&nodes[..1], &bad, &NoProgress)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("'$(reboot)' is not a Debian package name"),
        "{e}"
    );
}

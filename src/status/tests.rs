use std::time::Duration;

use super::*;
use crate::node::test_sshd::TestSshd;

const SAMPLE: &str = "cores=4\nload1=0.52\nmem_total_kib=8388608\nmem_avail_kib=6291456\n\
cpu_total=100000\ncpu_idle=90000\ndisk_total=107374182400\ndisk_used=21474836480\n\
check_store_mounted=ok\ncheck_libvirt=ok\ncheck_store=ok\n";

fn node_status(name: &str, role: Role, state: NodeState) -> NodeStatus {
    NodeStatus {
        name: name.into(),
        role,
        address: "127.0.0.1".into(),
        state,
        detail: format!("{name} detail"),
        code: None,
        usage: Some(Usage {
            cores: 4,
            cpu_percent: None,
            load1: 0.1,
            mem_total_mib: 8192,
            mem_used_mib: 1024,
            disk_total_gib: 100.0,
            disk_used_gib: 10.0,
        }),
        probe_ms: 3,
        store_waiting_s: None,
    }
}

fn four(states: [NodeState; 4]) -> Vec<NodeStatus> {
    vec![
        node_status("host1", Role::Host, states[0]),
        node_status("host2", Role::Host, states[1]),
        node_status("stor1", Role::Storage, states[2]),
        node_status("stor2", Role::Storage, states[3]),
    ]
}

use NodeState::{Degraded, Down, Up};

#[test]
fn a_probe_answer_parses_and_bad_ones_say_what_is_wrong() {
    let s = parse_probe(SAMPLE).unwrap();
    assert_eq!(s.cores, 4);
    assert_eq!(s.checks.len(), 3);
    let u = s.usage(None);
    assert_eq!(u.mem_total_mib, 8192);
    assert_eq!(u.mem_used_mib, 2048);
    assert_eq!(u.disk_total_gib, 100.0);
    assert_eq!(u.disk_used_gib, 20.0);
    assert_eq!(u.cpu_percent, None, "no CPU use without a previous sample");
    let mut later = s.clone();
    later.cpu_total += 1000;
    later.cpu_idle += 250;
    assert_eq!(later.usage(Some(&s)).cpu_percent, Some(75.0));
    // Counters that went backwards (a reboot) give no figure rather than a wrong one.
    assert_eq!(s.usage(Some(&later)).cpu_percent, None);

    let e = parse_probe("cores=4\n").unwrap_err();
    assert!(e.contains("no load1"), "{e}");
    let e = parse_probe(&SAMPLE.replace("cores=4", "cores=four")).unwrap_err();
    assert!(e.contains("cores is 'four'"), "{e}");
}

#[test]
fn a_failed_role_check_degrades_the_node_with_advice() {
    let s = parse_probe(SAMPLE).unwrap();
    assert_eq!(s.judge(Role::Host, None).state, Up);
    let s = parse_probe(&SAMPLE.replace("check_store_mounted=ok", "check_store_mounted=failed"))
        .unwrap();
    let j = s.judge(Role::Host, None);
    assert_eq!(j.state, Degraded);
    assert!(j.detail.contains("VM store is not mounted"), "{}", j.detail);
    let s = parse_probe(&SAMPLE.replace("check_libvirt=ok", "check_libvirt=timed_out")).unwrap();
    let j = s.judge(Role::Host, None);
    assert_eq!(j.state, Degraded);
    assert!(
        j.detail.contains("did not answer within 3 s"),
        "{}",
        j.detail
    );
}

/// A store that waits for a lost storage node is not a problem of the host: the host is up and
/// says what it waits for, until the wait is longer than GlusterFS takes to go on without it.
#[test]
fn a_waiting_store_keeps_the_host_up_until_it_waits_too_long() {
    let s = parse_probe(&SAMPLE.replace("check_store=ok", "check_store=timed_out")).unwrap();
    let j = s.judge(Role::Host, None);
    assert_eq!(j.state, Up, "{}", j.detail);
    assert!(j.store_waiting);
    assert!(
        j.detail.contains("waits for a storage node"),
        "{}",
        j.detail
    );
    let j = s.judge(Role::Host, Some(55));
    assert_eq!(j.state, Degraded);
    assert!(
        j.detail.contains("has not answered for 55 s"),
        "{}",
        j.detail
    );
    // Not mounted at all is no wait.
    let s = parse_probe(
        &SAMPLE
            .replace("check_store=ok", "check_store=timed_out")
            .replace("check_store_mounted=ok", "check_store_mounted=failed"),
    )
    .unwrap();
    let j = s.judge(Role::Host, None);
    assert!(!j.store_waiting);
    assert_eq!(j.state, Degraded);
    assert_eq!(Check::of_exit(124), Check::TimedOut);
    assert_eq!(Check::of_exit(137), Check::TimedOut);
    assert_eq!(Check::of_exit(1), Check::Failed);
    assert_eq!(Check::of_exit(0), Check::Ok);
}

/// stor2 lost: the hosts' store waits for it. Only stor2 is down, the platform is degraded (not
/// down), and the summary says what the store waits for and within how long writes resume.
#[test]
fn a_lost_storage_node_is_one_node_down_and_the_wait_is_its_own_finding() {
    let mut nodes = four([Up, Up, Up, Down]);
    nodes[0].store_waiting_s = Some(4);
    nodes[1].store_waiting_s = Some(3);
    let finding = crate::storage::volume::VolumeFinding {
        state: RuleState::Warn,
        detail: "The copy on stor2 is offline.".into(),
        offline: vec!["stor2".into()],
        glusterd_offline: None,
        heal_left: Some(0),
        ping_timeout_s: Some(20),
    };
    let s = assemble(1, nodes, Vec::new(), &[], Some(&finding));
    assert_eq!(s.health, Health::Degraded, "{}", s.summary);
    assert_eq!(s.headline, "Degraded");
    assert!(s.summary.contains("stor2 is down"), "{}", s.summary);
    assert!(!s.summary.contains("host1 is"), "{}", s.summary);
    assert!(
        s.summary
            .contains("The VM store is waiting for stor2 (seen from host1 and host2): writes resume on the copy that is left within 40 s"),
        "{}",
        s.summary
    );
    assert_eq!(s.rules[1].state, RuleState::Warn);
}

fn copies_ok() -> crate::storage::volume::VolumeFinding {
    crate::storage::volume::VolumeFinding {
        state: RuleState::Ok,
        detail: "All 3 bricks answer and nothing waits for a heal: every VM disk has two copies."
            .into(),
        offline: Vec::new(),
        glusterd_offline: Some(Vec::new()),
        heal_left: Some(0),
        ping_timeout_s: Some(20),
    }
}

#[test]
fn health_follows_what_still_works() {
    let vms = Vec::new();
    let ok = copies_ok();
    let s = assemble(1, four([Up, Up, Up, Up]), vms.clone(), &[], Some(&ok));
    assert_eq!(s.health, Health::Healthy);
    assert!(s.rules.iter().take(2).all(|r| r.state == RuleState::Ok));
    // Every machine works, but backups and offsite copies are not there: not "Healthy".
    assert_eq!(s.headline, "Running, not yet protected");
    assert!(
        s.summary
            .starts_with("Running, not yet protected: no backups, no offsite copies."),
        "{}",
        s.summary
    );
    // A volume that was not read does not count as two copies.
    let s = assemble(1, four([Up, Up, Up, Up]), vms.clone(), &[], None);
    assert_eq!(s.health, Health::Degraded, "{}", s.summary);
    assert_eq!(s.rules[1].state, RuleState::Warn);
    assert!(
        s.rules[1].detail.contains("is not known"),
        "{}",
        s.rules[1].detail
    );

    let s = assemble(1, four([Up, Down, Up, Up]), vms.clone(), &[], Some(&ok));
    assert_eq!(s.health, Health::Degraded);
    assert!(s.summary.contains("host2 is down"), "{}", s.summary);
    assert_eq!(s.rules[0].state, RuleState::Warn);
    assert_eq!(s.rules[1].state, RuleState::Ok);

    let s = assemble(1, four([Up, Up, Degraded, Up]), vms.clone(), &[], Some(&ok));
    assert_eq!(s.health, Health::Degraded);
    assert_eq!(s.rules[1].state, RuleState::Warn);

    let s = assemble(1, four([Down, Down, Up, Up]), vms.clone(), &[], Some(&ok));
    assert_eq!(s.health, Health::Down);
    assert!(
        s.summary.contains("No virtualization host"),
        "{}",
        s.summary
    );

    let s = assemble(1, four([Up, Up, Down, Down]), vms, &[], Some(&ok));
    assert_eq!(s.health, Health::Down);
    assert!(s.summary.contains("No storage node"), "{}", s.summary);
}

#[test]
fn n_plus_one_is_measured_against_the_protected_vms() {
    let vm = |name: &str, ram_mib: u64| VmSpec {
        name: name.into(),
        vcpus: 1,
        ram_mib,
        disk_gib: 0,
        priority: 50,
        critical: true,
    };
    let s = assemble(1, four([Up; 4]), Vec::new(), &[vm("small", 512)], None);
    assert_eq!(s.rules[0].state, RuleState::Ok, "{}", s.rules[0].detail);
    // 8 GiB hosts cannot carry 20 GiB of protected VMs alone.
    let s = assemble(
        1,
        four([Up; 4]),
        Vec::new(),
        &[vm("big", 10240), vm("bigger", 10240)],
        None,
    );
    assert_eq!(s.rules[0].state, RuleState::Warn);
    assert!(
        s.rules[0].detail.contains("cannot run"),
        "{}",
        s.rules[0].detail
    );
}

#[test]
fn transitions_say_what_changed_and_nothing_else() {
    let a = assemble(1, four([Up; 4]), Vec::new(), &[], None);
    // First look: only nodes that are not up are news.
    assert!(transitions(None, &a).is_empty());
    let b = assemble(2, four([Up, Down, Up, Up]), Vec::new(), &[], None);
    let first = transitions(None, &b);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].title, "host2 is down");
    assert_eq!(first[0].from, None);

    let t = transitions(Some(&a), &b);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].title, "host2 is down");
    assert_eq!(t[0].body, "host2 detail");
    assert!(transitions(Some(&b), &b).is_empty());
    let back = transitions(Some(&b), &a);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].title, "host2 is back");
    assert_eq!(back[0].to, Up);

    let inv = Inventory::open_in_memory().unwrap();
    record_transitions(&inv, &t).unwrap();
    record_transitions(&inv, &back).unwrap();
    let ev = inv.events(10).unwrap();
    assert_eq!(ev.len(), 2);
    assert!(ev.iter().any(|e| e.message.starts_with("host2 is down")));
}

fn spec(sshd: &TestSshd, name: &str, role: Role) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        role,
        address: "127.0.0.1".into(),
        ssh_port: sshd.port,
        user: sshd.user.clone(),
        key: None,
        host_key: Some(sshd.host_key()),
    }
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the status check hung")
}

/// The real probe over real SSH: each "node" is this machine seen from a network namespace of
/// its own with nothing listening and no daemon sockets, so it is reached but degraded (no
/// GlusterFS) whatever else runs here; a node whose sshd is gone is down, with its code.
#[tokio::test]
async fn probe_over_ssh_reaches_judges_and_notices_a_node_going_away() {
    let sshd = TestSshd::start_isolated();
    let gone = TestSshd::start_isolated();
    // One key for the whole platform, as Twofold's own key is.
    let mut pubkey = std::path::PathBuf::from(&sshd.client_key).into_os_string();
    pubkey.push(".pub");
    std::fs::copy(&pubkey, gone.dir.path().join("authorized_keys")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("twofold.db");
    {
        let inv = Inventory::open(&db).unwrap();
        inv.upsert_node(&spec(&sshd, "stor1", Role::Storage))
            .unwrap();
        inv.upsert_node(&spec(&gone, "stor2", Role::Storage))
            .unwrap();
    }
    let monitor = Monitor::new(&sshd.client_key);
    let first = bounded(monitor.poll(&db)).await.unwrap();
    let by = |s: &PlatformStatus, n: &str| s.nodes.iter().find(|x| x.name == n).cloned().unwrap();
    let s1 = by(&first, "stor1");
    assert_eq!(s1.state, Degraded, "{s1:?}\nsshd log:\n{}", sshd.log());
    assert!(
        s1.detail.contains("GlusterFS does not answer"),
        "{}",
        s1.detail
    );
    // The volume was asked, and its failure to answer is not taken for two copies.
    let storage = &first.rules[1];
    assert_eq!(storage.state, RuleState::Warn, "{storage:?}");
    assert!(
        storage.detail.contains("could not be checked"),
        "{}",
        storage.detail
    );
    let u = s1.usage.clone().expect("a reached node reports its usage");
    assert!(
        u.cores >= 1 && u.mem_total_mib > 0 && u.disk_total_gib > 0.0,
        "{u:?}"
    );
    assert_eq!(u.cpu_percent, None);
    assert_eq!(
        by(&first, "stor2").state,
        s1.state,
        "{:?}",
        by(&first, "stor2")
    );

    gone.cut();
    let second = bounded(monitor.poll(&db)).await.unwrap();
    let s2 = by(&second, "stor2");
    assert_eq!(s2.state, Down, "{s2:?}");
    assert!(s2.code.is_some() && s2.usage.is_none());
    assert!(
        by(&second, "stor1").usage.unwrap().cpu_percent.is_some(),
        "the second probe over the kept session measures CPU use"
    );
    // A platform without any host cannot run VMs, whatever its storage does.
    assert_eq!(second.health, Health::Down);
    assert!(
        second.summary.contains("stor2 is down"),
        "{}",
        second.summary
    );
    let t = transitions(Some(&first), &second);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0].title, "stor2 is down");
}

#[tokio::test]
async fn an_empty_inventory_is_unconfigured_and_a_node_without_pinned_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("twofold.db");
    let monitor = Monitor::new(&dir.path().join("no-key"));
    let s = bounded(monitor.poll(&db)).await.unwrap();
    assert_eq!(s.health, Health::Unconfigured);
    assert!(s.summary.contains("setup wizard"));

    let sshd = TestSshd::start();
    let mut n = spec(&sshd, "host1", Role::Host);
    n.host_key = None;
    Inventory::open(&db).unwrap().upsert_node(&n).unwrap();
    let s = bounded(monitor.poll(&db)).await.unwrap();
    assert_eq!(s.nodes[0].state, Down);
    assert_eq!(s.nodes[0].code.as_deref(), Some("invalid_input"));
    assert!(
        s.nodes[0].detail.contains("pins no host key"),
        "{}",
        s.nodes[0].detail
    );
    assert!(
        !sshd.log().contains("Accepted"),
        "nothing logged in without a pinned key"
    );
}

//! The live status against the lab: each node's link cut in turn (its veth set down from the root
//! namespace, as a pulled cable), then restored. Only that node may be reported down, no other
//! node may change state at any look (a false "down" would make the HA agent fence a healthy
//! host), the timeline gets events about that node only, and while the hosts' store waits for a
//! lost storage node the status says so and the store answers again within the time it quotes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use twofold::lab::NODES;
use twofold::status::watch::Watch;
use twofold::status::{store_resume_bound_s, Health, Monitor, NodeState, PlatformStatus};
use twofold::storage::layout::PING_TIMEOUT_S;

use crate::setup::PROVISIONED;
use crate::Ctx;

/// The platform to watch and the key that logs in to it: the one the setup test provisioned
/// when it ran before (the lab was built again from bare nodes then), else the lab's own.
fn platform(ctx: &Ctx) -> (PathBuf, PathBuf) {
    if let Some(f) = PROVISIONED.lock().unwrap().as_ref() {
        let db = f.path("twofold.db");
        let key = twofold::provision::connect::key_dir(&db).join("twofold_ed25519");
        return (db, key);
    }
    (ctx.db.clone(), ctx.lab.admin_key())
}

/// How long a cut node may take to be reported down: one look's connect or command limit,
/// plus one interval.
const DETECT: Duration = Duration::from_secs(20);
/// How long a restored node may take to be reported up (its bricks reconnect every few seconds).
const RECOVER: Duration = Duration::from_secs(60);
const INTERVAL: Duration = Duration::from_secs(1);

fn state_of(s: &PlatformStatus, node: &str) -> NodeState {
    s.nodes
        .iter()
        .find(|n| n.name == node)
        .unwrap_or_else(|| panic!("{node} missing from the status: {s:?}"))
        .state
}

/// Every node other than `cut` is up in this look.
fn others_up(s: &PlatformStatus, cut: &str, at: &str) {
    for n in s.nodes.iter().filter(|n| n.name != cut) {
        assert_eq!(
            n.state,
            NodeState::Up,
            "{at}: {} is {} while only {cut}'s link is cut: {}\nsummary: {}",
            n.name,
            n.state.as_str(),
            n.detail,
            s.summary
        );
    }
    assert_ne!(s.health, Health::Down, "{at}: {}", s.summary);
}

fn link(node: &str, up: bool) {
    let n = twofold::lab::lab_node(node).unwrap();
    let out = std::process::Command::new("ip")
        .args(["link", "set", &n.veth(), if up { "up" } else { "down" }])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip link set {} failed: {}",
        n.veth(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Restores a cut link even when an assertion fails half-way.
struct Cut(&'static str);

impl Drop for Cut {
    fn drop(&mut self) {
        link(self.0, true);
    }
}

pub fn one_cut_link_is_one_node_down_and_no_false_event(ctx: &Ctx) {
    let started = Instant::now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (db, key) = platform(ctx);
    let inventory = || twofold::inventory::Inventory::open(&db).unwrap();
    let mut watch = Watch::new(Monitor::new(&key), db.clone(), None);
    let first_event = inventory().events(1).unwrap().first().map_or(0, |e| e.id);
    let mut step = |at: &str| {
        let look = rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(30), watch.step()).await })
            .unwrap_or_else(|_| panic!("{at}: a look took over 30 s"))
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        std::thread::sleep(INTERVAL);
        look
    };

    // A healthy start: every node up and both copies in place (a heal from an earlier test may
    // still run).
    let deadline = Instant::now() + RECOVER;
    loop {
        let look = step("before any cut");
        let all_up = look.status.nodes.iter().all(|n| n.state == NodeState::Up);
        if all_up && look.status.rules[1].state == twofold::rules::RuleState::Ok {
            assert!(
                look.status.rules[1].detail.contains("All 3 bricks answer"),
                "{}",
                look.status.rules[1].detail
            );
            // Backups are not set up in the lab: the headline must not say "Healthy".
            assert_eq!(look.status.health, Health::Healthy);
            assert_eq!(look.status.headline, "Running, not yet protected");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lab is not healthy to start with: {}\n{:?}",
            look.status.summary,
            look.status.nodes
        );
    }

    let bound = store_resume_bound_s(PING_TIMEOUT_S);
    for node in NODES.map(|n| n.name) {
        let cut_at = Instant::now();
        link(node, false);
        let guard = Cut(node);
        let mut down_after = None;
        let mut waited_for = None::<String>;
        let mut longest_wait = 0;
        let mut looks = 0;
        // Cut: until the node is down, and no host's store waits any more (bounded by the time
        // GlusterFS takes to go on without the lost brick, plus what the wait limit adds).
        loop {
            let look = step(&format!("{node} cut"));
            looks += 1;
            let s = &look.status;
            others_up(s, node, &format!("{node} cut, look {looks}"));
            for t in &look.changes {
                assert_eq!(t.node, node, "a false change while {node} is cut: {t:?}");
            }
            if state_of(s, node) == NodeState::Down && down_after.is_none() {
                down_after = Some(cut_at.elapsed());
            }
            let waiting = s.nodes.iter().filter_map(|n| n.store_waiting_s).max();
            if let Some(w) = waiting {
                longest_wait = longest_wait.max(w);
                assert!(
                    s.summary.contains("The VM store is waiting for"),
                    "{}",
                    s.summary
                );
                waited_for.get_or_insert_with(|| s.summary.clone());
            }
            if down_after.is_some() && waiting.is_none() {
                break;
            }
            assert!(
                cut_at.elapsed() < DETECT || down_after.is_some(),
                "{node} was not reported down within {DETECT:?}: {:?}",
                s.nodes
            );
            assert!(
                cut_at.elapsed() < Duration::from_secs(bound + 20),
                "the hosts' store still waits {:?} after {node}'s link was cut (GlusterFS should go on within {bound} s): {}",
                cut_at.elapsed(),
                s.summary
            );
        }
        let down_after = down_after.unwrap();
        drop(guard);
        let back_at = Instant::now();
        loop {
            let look = step(&format!("{node} back"));
            let s = &look.status;
            others_up(s, node, &format!("{node} back"));
            for t in &look.changes {
                assert_eq!(t.node, node, "a false change after {node} came back: {t:?}");
            }
            if state_of(s, node) == NodeState::Up {
                break;
            }
            assert!(
                back_at.elapsed() < RECOVER,
                "{node} is not reported up {RECOVER:?} after its link came back: {:?}",
                s.nodes
            );
        }
        println!(
            "{node}: reported down {:.1} s after the cut, up {:.1} s after the link came back; hosts' store waited up to {longest_wait} s{}",
            down_after.as_secs_f64(),
            back_at.elapsed().as_secs_f64(),
            waited_for
                .map(|w| format!(" (status said: {w})"))
                .unwrap_or_default()
        );
    }

    // The timeline holds only "down" and "back" (or "has a problem") events of the nodes that
    // were cut, in turn.
    let events = inventory().events(200).unwrap();
    let ours: Vec<_> = events.iter().filter(|e| e.id > first_event).collect();
    for e in &ours {
        assert!(NODES.iter().any(|n| e.message.starts_with(n.name)), "{e:?}");
    }
    for n in NODES {
        assert!(
            ours.iter().any(
                |e| e.source == n.name && e.message.starts_with(&format!("{} is down", n.name))
            ),
            "no 'down' event for {}: {ours:?}",
            n.name
        );
    }
    println!(
        "link cuts: {} events recorded, all about the node cut; {:.0} s in all",
        ours.len(),
        started.elapsed().as_secs_f64()
    );
}

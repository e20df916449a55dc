//! The engine's orderly end, in a process of its own (it is final for the process): open
//! connections are waited for, the libvirt event thread stops and is joined, nothing opens
//! afterwards, and a second call returns at once. libvirt's `test:///default` driver stands in
//! for a host; it uses the same event loop for its events.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use twofold::hypervisor::{HostConn, HostTarget, LifecycleKind};

fn test_host() -> HostTarget {
    HostTarget {
        name: "h".into(),
        uri: "test:///default".into(),
        peer_uri: "test:///default".into(),
        migration_address: None,
    }
}

/// Names of this process's threads.
fn threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|c| c.trim().to_string())
        .collect()
}

#[test]
fn shutdown_waits_for_connections_then_joins_the_event_loop() {
    let conn = HostConn::open_blocking(&test_host()).unwrap();
    let (tx, rx) = mpsc::channel();
    let sub = conn.subscribe_lifecycle_blocking(tx).unwrap();
    // The event loop delivers: suspend the test driver's running domain.
    conn.connect()
        .lookup_domain_by_name("test")
        .unwrap()
        .suspend()
        .unwrap();
    let ev = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(ev.kind, LifecycleKind::Suspended);
    assert!(threads().iter().any(|t| t == "libvirt-events"));

    // Another thread still uses the connection and its subscription for a while.
    let hold = Duration::from_millis(400);
    let user = std::thread::spawn(move || {
        std::thread::sleep(hold);
        drop(sub);
        drop(conn);
    });
    let t = Instant::now();
    let report = twofold::shutdown::shutdown();
    let took = t.elapsed();
    user.join().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.connections_left, 0);
    assert!(
        took >= hold,
        "shutdown returned before the connection was closed: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        !threads().iter().any(|t| t == "libvirt-events"),
        "the event thread still runs: {:?}",
        threads()
    );

    // The process is ending: nothing opens any more, and that is said plainly.
    let e = HostConn::open_blocking(&test_host()).unwrap_err();
    assert!(e.to_string().contains("shutting down"), "{e}");

    // Idempotent and immediate.
    let t = Instant::now();
    assert_eq!(twofold::shutdown::shutdown(), report);
    assert!(t.elapsed() < Duration::from_millis(100));
}

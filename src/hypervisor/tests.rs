//! Tests against libvirt's `test:///` driver (no daemon). `test:///default` is one shared state
//! per process, so tests that change it use names of their own; `test:///PATH.xml` gives each
//! connection a private host built from that file.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::*;
use crate::progress::Progress;

/// A test-driver domain: name, uuid (random when `None`), running or shut off.
pub(crate) struct TestDomain<'a> {
    pub name: &'a str,
    pub uuid: Option<&'a str>,
    pub running: bool,
}

pub(crate) fn dom(name: &str, running: bool) -> TestDomain<'_> {
    TestDomain {
        name,
        uuid: None,
        running,
    }
}

fn domain_xml(d: &TestDomain<'_>) -> String {
    let uuid = d
        .uuid
        .map(|u| format!("<uuid>{u}</uuid>"))
        .unwrap_or_default();
    // runstate 5 = VIR_DOMAIN_SHUTOFF; the test driver starts the others.
    let runstate = if d.running {
        ""
    } else {
        "<test:runstate>5</test:runstate>"
    };
    format!(
        "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\
         <name>{}</name>{uuid}<memory unit='MiB'>256</memory><vcpu>2</vcpu>\
         <os><type>hvm</type></os>{runstate}</domain>",
        d.name
    )
}

/// A private test host whose state comes from a file in `dir`. Every connection re-reads it.
pub(crate) fn test_host(dir: &Path, name: &str, domains: &[TestDomain<'_>]) -> HostTarget {
    let body: String = domains.iter().map(domain_xml).collect();
    let path = dir.join(format!("{name}.xml"));
    std::fs::write(&path, format!("<node>{body}</node>")).unwrap();
    let uri = format!("test://{}", path.display());
    HostTarget {
        name: name.to_string(),
        uri: uri.clone(),
        peer_uri: uri,
        migration_address: Some("192.0.2.7".into()),
    }
}

/// The shared default test host (domain "test", running).
pub(crate) fn default_host(name: &str) -> HostTarget {
    HostTarget {
        name: name.to_string(),
        uri: "test:///default".into(),
        peer_uri: "test:///default".into(),
        migration_address: None,
    }
}

pub(crate) fn unreachable_host(name: &str) -> HostTarget {
    HostTarget {
        name: name.to_string(),
        uri: "test:///nonexistent/twofold-unit.xml".into(),
        peer_uri: "test:///nonexistent/twofold-unit.xml".into(),
        migration_address: None,
    }
}

/// Progress that remembers what it was told.
#[derive(Default)]
pub(crate) struct Recorder(pub Mutex<Vec<String>>);

impl Progress for Recorder {
    fn begin(&self, phase: &str, _total: Option<u64>) {
        self.0.lock().unwrap().push(format!("begin {phase}"));
    }
    fn update(&self, done: u64, total: Option<u64>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("update {done}/{total:?}"));
    }
    fn message(&self, line: &str) {
        self.0.lock().unwrap().push(format!("message {line}"));
    }
    fn finish(&self) {
        self.0.lock().unwrap().push("finish".into());
    }
}

fn small_domain(name: &str) -> String {
    format!(
        "<domain type='test'><name>{name}</name><memory unit='MiB'>64</memory>\
         <vcpu>1</vcpu><os><type>hvm</type></os></domain>"
    )
}

#[test]
fn event_loop_starts_once() {
    ensure_event_loop().unwrap();
    ensure_event_loop().unwrap();
}

#[test]
fn connects_and_lists_the_default_domain() {
    let c = HostConn::open_blocking(&default_host("h")).unwrap();
    assert_eq!(c.host(), "h");
    assert!(c.is_alive_blocking());
    let doms = c.list_domains_blocking().unwrap();
    let t = doms.iter().find(|d| d.name == "test").expect("domain test");
    assert_eq!(t.state, VmState::Running);
    assert!(t.vcpus >= 1 && t.memory_mib > 0 && t.persistent);
    assert_eq!(t.uuid.len(), 36);
    let json = serde_json::to_value(t).unwrap();
    assert_eq!(json["state"], "running");
}

#[test]
fn defines_starts_destroys_undefines() {
    let c = HostConn::open_blocking(&default_host("h")).unwrap();
    let name = "tf-unit-cycle";
    let d = c.define_blocking(&small_domain(name)).unwrap();
    assert_eq!(
        (d.state, d.persistent, d.memory_mib),
        (VmState::Shutoff, true, 64)
    );
    c.start_blocking(name).unwrap();
    assert_eq!(
        c.domain_blocking(name).unwrap().unwrap().state,
        VmState::Running
    );
    c.destroy_blocking(name).unwrap();
    assert_eq!(
        c.domain_blocking(name).unwrap().unwrap().state,
        VmState::Shutoff
    );
    c.undefine_blocking(name).unwrap();
    assert_eq!(c.domain_blocking(name).unwrap(), None);
    // Gone now: operations name what is missing.
    let e = c.start_blocking(name).unwrap_err();
    assert!(matches!(e, Error::UnknownVm { .. }), "{e}");
    let e = c.define_blocking("<domain>").unwrap_err();
    assert_eq!(e.code(), "libvirt", "{e}");
}

#[test]
fn unreachable_uri_is_host_unreachable() {
    let e = HostConn::open_blocking(&unreachable_host("h9")).unwrap_err();
    assert!(
        matches!(&e, Error::HostUnreachable { host, .. } if host == "h9"),
        "{e}"
    );
}

#[test]
fn lifecycle_events_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let host = test_host(dir.path(), "ev1", &[]);
    let c = HostConn::open_blocking(&host).unwrap();
    let (tx, rx) = mpsc::channel();
    let sub = c.subscribe_lifecycle_blocking(tx).unwrap();

    c.define_blocking(&small_domain("ev-vm")).unwrap();
    c.start_blocking("ev-vm").unwrap();
    c.destroy_blocking("ev-vm").unwrap();

    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(ev) => seen.push(ev),
            Err(e) => panic!("waiting for events ({e}); got {seen:?}"),
        }
    }
    let kinds: Vec<(LifecycleKind, &str)> =
        seen.iter().map(|e| (e.kind, e.detail_word())).collect();
    assert_eq!(
        kinds,
        [
            (LifecycleKind::Defined, "added"),
            (LifecycleKind::Started, "booted"),
            (LifecycleKind::Stopped, "destroyed"),
        ]
    );
    assert!(seen.iter().all(|e| e.host == "ev1" && e.domain == "ev-vm"));
    let json = serde_json::to_value(&seen[1]).unwrap();
    assert_eq!(json["kind"], "started");

    // After the subscription is dropped, nothing more arrives.
    drop(sub);
    c.undefine_blocking("ev-vm").unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
}

#[test]
fn a_panicking_handler_does_not_take_the_process_down() {
    let dir = tempfile::tempdir().unwrap();
    let c = HostConn::open_blocking(&test_host(dir.path(), "ev2", &[])).unwrap();
    let (tx, rx) = mpsc::channel();
    let _sub = c
        .subscribe_lifecycle_with_blocking(move |ev| {
            let _ = tx.send(ev.kind);
            panic!("handler bug");
        })
        .unwrap();
    c.define_blocking(&small_domain("p1")).unwrap();
    c.define_blocking(&small_domain("p2")).unwrap();
    for _ in 0..2 {
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            LifecycleKind::Defined
        );
    }
}

#[test]
fn migration_checks_before_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let h1 = test_host(dir.path(), "m1", &[dom("web", true), dom("idle", false)]);
    let h2 = test_host(dir.path(), "m2", &[]);
    let c = HostConn::open_blocking(&h1).unwrap();
    let p = Recorder::default();
    let none = MigrationCancel::new();

    let e = c.migrate_blocking("web", &h1, &p, &none).unwrap_err();
    assert!(matches!(e, Error::SameHost { .. }), "{e}");
    let e = c.migrate_blocking("ghost", &h2, &p, &none).unwrap_err();
    assert!(matches!(e, Error::UnknownVm { .. }), "{e}");
    let e = c.migrate_blocking("idle", &h2, &p, &none).unwrap_err();
    assert!(
        matches!(&e, Error::VmNotRunning { state, .. } if state == "shutoff"),
        "{e}"
    );

    let cancelled = MigrationCancel::new();
    cancelled.clone().cancel();
    let e = c.migrate_blocking("web", &h2, &p, &cancelled).unwrap_err();
    assert!(
        matches!(&e, Error::Migration { detail, .. } if detail.contains("cancelled")),
        "{e}"
    );
    assert!(p.0.lock().unwrap().is_empty(), "nothing started");
}

#[test]
fn a_migration_the_driver_refuses_is_a_migration_error() {
    // The test driver cannot migrate: this runs the real call, its poll thread and the error path.
    let dir = tempfile::tempdir().unwrap();
    let h1 = test_host(dir.path(), "r1", &[dom("web", true)]);
    let h2 = test_host(dir.path(), "r2", &[]);
    let c = HostConn::open_blocking(&h1).unwrap();
    let p = Recorder::default();
    let e = c
        .migrate_blocking("web", &h2, &p, &MigrationCancel::new())
        .unwrap_err();
    assert!(
        matches!(&e, Error::Migration { vm, to, .. } if vm == "web" && to == "r2"),
        "{e}"
    );
    assert_eq!(e.code(), "migration_failed");
    let log = p.0.lock().unwrap();
    assert_eq!(log.first().unwrap(), "begin migrating web from r1 to r2");
    assert_eq!(log.last().unwrap(), "finish");
    // Still where it was.
    assert_eq!(
        c.domain_blocking("web").unwrap().unwrap().state,
        VmState::Running
    );
}

#[test]
fn abort_without_a_job_is_a_libvirt_error() {
    let dir = tempfile::tempdir().unwrap();
    let c = HostConn::open_blocking(&test_host(dir.path(), "a1", &[dom("web", true)])).unwrap();
    let e = c.abort_job_blocking("web").unwrap_err();
    assert_eq!(e.code(), "libvirt", "{e}");
    let e = c.abort_job_blocking("nope").unwrap_err();
    assert_eq!(e.code(), "unknown_vm", "{e}");
}

#[test]
fn migration_uris() {
    assert_eq!(migration_uri("10.0.0.12"), "tcp://10.0.0.12");
    assert_eq!(migration_uri("fd00::12"), "tcp://[fd00::12]");
    assert_eq!(migration_uri("host2.lan"), "tcp://host2.lan");
    assert_eq!(
        migration_uri("tcp://10.0.0.12:49152"),
        "tcp://10.0.0.12:49152"
    );
}

#[test]
fn stats_serialize_for_the_jobs_table() {
    let job = ffi::JobStats {
        job_type: ffi::JOB_COMPLETED,
        time_elapsed_ms: Some(540),
        downtime_ms: Some(35),
        data_total: Some(1 << 27),
        data_processed: Some(1 << 27),
        memory_total: Some(1 << 27),
        ..Default::default()
    };
    let s = MigrationStats::new(
        "web",
        "host1",
        "host2",
        612,
        Some(job),
        StatsSource::Destination,
    );
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["downtime_ms"], 35);
    assert_eq!(v["total_ms"], 540);
    assert_eq!(v["wall_ms"], 612);
    assert_eq!(v["stats_from"], "destination");
    assert_eq!(v["memory_processed_bytes"], serde_json::Value::Null);
    let back: MigrationStats = serde_json::from_value(v).unwrap();
    assert_eq!(back, s);
    assert_eq!(
        s.summary(),
        "migrated web from host1 to host2 in 0.6 s (downtime 35 ms)"
    );
}

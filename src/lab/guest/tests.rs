//! The real guest under QEMU (needs the packages of installer/install-deps.sh).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;
use crate::lab::checker::{check_heartbeats, check_records, encode_record, Record};
use crate::lab::console::{unix_ms, ConsoleServer};
use crate::progress::NoProgress;

/// QEMU guests in tests run one at a time: two TCG guests on two cores disturb each other's
/// timing.
static QEMU_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn test_cache() -> PathBuf {
    std::env::var_os("TWOFOLD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/twofold"))
}

fn qemu_img(args: &[&str]) {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .expect("qemu-img");
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Boots the guest under TCG with its serial connected to `console`, lets it run for `run`
/// after its first heartbeat, then kills QEMU (a crash). Returns (QEMU start, first heartbeat).
fn boot(
    assets: &GuestAssets,
    name: &str,
    disk: &Path,
    server: &ConsoleServer,
    run: Duration,
) -> (i64, i64) {
    let console = server.local_addr();
    let started = unix_ms();
    let child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "tcg",
            "-m",
            "128",
            "-smp",
            "1",
            "-nographic",
            "-no-reboot",
        ])
        .args(["-nic", "none", "-kernel"])
        .arg(&assets.kernel)
        .arg("-initrd")
        .arg(&assets.initrd)
        .arg("-append")
        .arg(kernel_cmdline(name))
        .arg("-drive")
        .arg(format!("file={},if=virtio,format=qcow2", disk.display()))
        .arg("-chardev")
        .arg(format!(
            "socket,id=s0,host={},port={}",
            console.ip(),
            console.port()
        ))
        .args(["-serial", "chardev:s0", "-monitor", "none"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-x86_64 (run installer/install-deps.sh)");
    let mut guard = ChildGuard::new(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        if let Some(ms) = first_line_ms(&server.guest_log(name), "TFHB", started) {
            break ms;
        }
        if let Ok(Some(status)) = guard.child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = guard.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("qemu exited early ({status}): {err}");
        }
        assert!(
            Instant::now() < deadline,
            "no heartbeat from {name} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(run);
    guard.kill(); // a crash: SIGKILL, no shutdown
    (started, first)
}

fn first_line_ms(log: &Path, prefix: &str, since: i64) -> Option<i64> {
    std::fs::read_to_string(log).ok()?.lines().find_map(|l| {
        let (ms, text) = l.split_once('\t')?;
        let ms: i64 = ms.parse().ok()?;
        (ms >= since && text.starts_with(prefix)).then_some(ms)
    })
}

fn raw_records(disk: &Path, acked: u64) -> crate::lab::checker::RecordReport {
    let raw = disk.with_extension("raw");
    qemu_img(&[
        "convert",
        "-O",
        "raw",
        &disk.to_string_lossy(),
        &raw.to_string_lossy(),
    ]);
    let mut f = std::fs::File::open(&raw).unwrap();
    check_records(&mut f, acked).unwrap()
}

#[test]
fn real_guest_loses_nothing_across_a_crash_and_a_restart() {
    let _lock = QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let cache = test_cache();
    let assets = build_assets(&cache, &NoProgress).expect("guest assets");
    let work = tempfile::tempdir_in("/var/tmp").unwrap();
    let disk = work.path().join("g1.qcow2");
    let cmd = create_disk_command(&disk, 64);
    let out = Command::new(&cmd[0]).args(&cmd[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server =
        ConsoleServer::start("127.0.0.1:0".parse().unwrap(), &work.path().join("console")).unwrap();
    let log = server.guest_log("g1");
    let console_log = server.dir().join("console.log");

    // First boot, then a crash (SIGKILL) after ~8 s.
    let (t1, first_hb) = boot(&assets, "g1", &disk, &server, Duration::from_secs(8));
    let boot_line = std::fs::read_to_string(&console_log)
        .unwrap()
        .lines()
        .find(|l| l.contains("TFBOOT"))
        .map(str::to_string)
        .unwrap_or_default();
    eprintln!(
        "boot 1: first heartbeat {} ms after QEMU started; {boot_line}",
        first_hb - t1
    );
    let hb = check_heartbeats(&log, "g1", t1, None).unwrap();
    eprintln!("boot 1 heartbeats: {hb:?}");
    assert!(hb.lines >= 40, "{hb:?}");
    assert_eq!(hb.boots, vec![1]);
    assert_eq!(hb.first_seq, Some(1));
    assert!(hb.missing.is_empty(), "{hb:?}");
    assert!(hb.max_gap_ms < 1000, "{hb:?}");
    assert!(hb.max_acked > 20, "{hb:?}");
    let rec = raw_records(&disk, hb.max_acked);
    eprintln!(
        "boot 1 records: highest {} runs {:?}",
        rec.highest_valid, rec.boot_runs
    );
    assert!(rec.is_clean(), "{rec:?}");
    assert!(rec.highest_valid >= hb.max_acked);
    assert_eq!(rec.header_boot, Some(1));
    let highest1 = rec.highest_valid;

    // Second boot on the same disk: boot 2, continues after the highest record.
    let (t2, first_hb2) = boot(&assets, "g1", &disk, &server, Duration::from_secs(5));
    eprintln!(
        "boot 2: first heartbeat {} ms after QEMU started",
        first_hb2 - t2
    );
    let hb2 = check_heartbeats(&log, "g1", t2, None).unwrap();
    eprintln!("boot 2 heartbeats: {hb2:?}");
    assert_eq!(hb2.boots, vec![2], "{hb2:?}");
    assert!(hb2.missing.is_empty(), "{hb2:?}");
    assert!(hb2.max_acked > highest1, "{hb2:?}");
    let rec2 = raw_records(&disk, hb2.max_acked);
    eprintln!(
        "boot 2 records: highest {} runs {:?}",
        rec2.highest_valid, rec2.boot_runs
    );
    assert!(rec2.is_clean(), "{rec2:?}");
    assert_eq!(rec2.header_boot, Some(2));
    assert_eq!(rec2.boot_runs.len(), 2, "{rec2:?}");
    assert_eq!(
        (rec2.boot_runs[0].boot, rec2.boot_runs[0].last_seq),
        (1, highest1)
    );
    assert_eq!(
        (rec2.boot_runs[1].boot, rec2.boot_runs[1].first_seq),
        (2, highest1 + 1)
    );
    server.stop();
}

#[test]
fn kvm_probe_decides_and_is_cached() {
    let _lock = QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let assets = build_assets(&test_cache(), &NoProgress).expect("guest assets");
    let cache = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let first = detect_domain_type(cache.path(), &assets);
    let probe_ms = t.elapsed().as_millis();
    let probe = std::fs::read_to_string(cache.path().join("kvm-probe")).unwrap_or_default();
    eprintln!(
        "domain type {first} after {probe_ms} ms; probe: {}",
        probe.trim()
    );
    let t = Instant::now();
    assert_eq!(detect_domain_type(cache.path(), &assets), first);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "second call uses the cached probe"
    );
    let written = std::fs::read_to_string(cache.path().join("domain-type")).unwrap();
    assert_eq!(written.trim(), first.as_str());
    if !Path::new("/dev/kvm").exists() {
        assert_eq!(first, DomainType::Qemu);
    }
}

#[test]
fn real_guest_scans_a_full_64_mib_disk_quickly() {
    let _lock = QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let assets = build_assets(&test_cache(), &NoProgress).expect("guest assets");
    let work = tempfile::tempdir_in("/var/tmp").unwrap();
    // A 64 MiB disk already full of valid records from boot 1 (the worst case for the scan).
    let raw = work.path().join("full.raw");
    let sectors = 64 * 1024 * 1024 / 512u64;
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&raw).unwrap());
        f.write_all(&[0u8; 512]).unwrap();
        for seq in 1..sectors {
            let r = Record {
                seq,
                boot: 1,
                mono_ns: 0,
                unix_ns: 0,
                name: "full".into(),
            };
            f.write_all(&encode_record(&r)).unwrap();
        }
    }
    let disk = work.path().join("full.qcow2");
    qemu_img(&[
        "convert",
        "-O",
        "qcow2",
        &raw.to_string_lossy(),
        &disk.to_string_lossy(),
    ]);
    let server =
        ConsoleServer::start("127.0.0.1:0".parse().unwrap(), &work.path().join("console")).unwrap();
    boot(&assets, "full", &disk, &server, Duration::from_secs(2));
    let text = std::fs::read_to_string(server.dir().join("console.log")).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("TFBOOT"))
        .expect("TFBOOT line");
    eprintln!("{line}");
    let scan_ms: u64 = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("scan_ms="))
        .and_then(|v| v.parse().ok())
        .expect("scan_ms");
    assert!(line.contains(&format!("next_record={sectors}")), "{line}");
    assert!(line.contains("boot=2"), "{line}");
    assert!(scan_ms < 2000, "scanning 64 MiB took {scan_ms} ms");
    assert!(text.contains("disk full"), "the writer reports a full disk");
    let hb = check_heartbeats(&server.guest_log("full"), "full", 0, None).unwrap();
    assert!(hb.lines > 10, "heartbeat goes on with a full disk: {hb:?}");
    server.stop();
}

#[test]
fn image_builds_from_scratch_and_reproducibly() {
    // Two empty caches: both build every part (kernel, workload, initramfs) from the same
    // kernel package, and the results must be the same bytes.
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = build_assets(a.path(), &NoProgress).expect("guest assets");
    let second = build_assets(b.path(), &NoProgress).expect("guest assets");
    assert_eq!(first.kernel_version, second.kernel_version);
    for (x, y) in [
        (&first.kernel, &second.kernel),
        (&first.initrd, &second.initrd),
    ] {
        assert!(x.starts_with(a.path()) && y.starts_with(b.path()));
        let (x, y) = (std::fs::read(x).unwrap(), std::fs::read(y).unwrap());
        assert!(!x.is_empty());
        assert!(x == y, "two builds of the same inputs differ");
    }
    let inputs = std::fs::read_to_string(first.kernel.with_file_name("inputs.txt")).unwrap();
    assert!(inputs.contains("virtio_blk"), "{inputs}");
}

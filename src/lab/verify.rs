//! Proof that a lab guest lost nothing: its heartbeats (as the console server received them) had
//! no missing sequence number and no gap over the limit, and every record the guest reported as
//! acknowledged is on its disk, intact.

use std::fmt;

use serde::Serialize;

use super::checker::{check_heartbeats, check_records, HeartbeatReport, RecordReport};
use super::{Lab, STORE_MOUNT};
use crate::error::{Error, IoContext, Result};

/// Longest tolerated pause between two heartbeats (they come every 100 ms).
pub const MAX_GAP_MS: i64 = 1000;

#[derive(Debug, Clone, Serialize)]
pub struct GuestCheck {
    pub vm: String,
    pub since_unix_ms: i64,
    pub heartbeats: HeartbeatReport,
    pub records: RecordReport,
}

impl GuestCheck {
    /// No heartbeat missing, none late by more than [`MAX_GAP_MS`], every acknowledged record there.
    pub fn ok(&self) -> bool {
        self.problems().is_empty()
    }

    pub fn problems(&self) -> Vec<String> {
        let mut p = heartbeat_problems(&self.heartbeats);
        if !self.records.missing.is_empty() {
            p.push(format!(
                "{} acknowledged records missing from the disk: {:?}",
                self.records.missing.len(),
                self.records.missing
            ));
        }
        if !self.records.corrupt.is_empty() {
            p.push(format!(
                "{} acknowledged records corrupt on the disk: {:?}",
                self.records.corrupt.len(),
                self.records.corrupt
            ));
        }
        p
    }
}

/// What is wrong with a guest's heartbeats: none received, some missing, or a gap over
/// [`MAX_GAP_MS`]. Empty when they prove the guest ran on without a pause.
pub fn heartbeat_problems(h: &HeartbeatReport) -> Vec<String> {
    let mut p = Vec::new();
    if h.lines == 0 {
        p.push("no heartbeat received".to_string());
    }
    if h.missing_count() > 0 {
        p.push(format!(
            "{} heartbeats missing {:?}",
            h.missing_count(),
            h.missing
        ));
    }
    if h.max_gap_ms > MAX_GAP_MS {
        p.push(format!(
            "heartbeat gap of {} ms (limit {MAX_GAP_MS} ms)",
            h.max_gap_ms
        ));
    }
    p
}

impl fmt::Display for GuestCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.heartbeats;
        writeln!(
            f,
            "{}: {} heartbeats (seq {}..{}), largest gap {} ms, {} missing",
            self.vm,
            h.lines,
            h.first_seq.unwrap_or(0),
            h.last_seq.unwrap_or(0),
            h.max_gap_ms,
            h.missing_count()
        )?;
        writeln!(
            f,
            "{}: {} records acknowledged, all on disk: {} (highest on disk {})",
            self.vm,
            h.max_acked,
            if self.records.is_clean() { "yes" } else { "NO" },
            self.records.highest_valid
        )?;
        let problems = self.problems();
        if problems.is_empty() {
            write!(f, "verdict: nothing lost")
        } else {
            write!(f, "verdict: {}", problems.join("; "))
        }
    }
}

/// Check guest `vm` over its heartbeats received since `since_unix_ms`, and its whole disk.
pub fn check_guest_since(lab: &Lab, vm: &str, since_unix_ms: i64) -> Result<GuestCheck> {
    let log = lab.console_dir().join(format!("{vm}.log"));
    let heartbeats = check_heartbeats(&log, vm, since_unix_ms, None)?;
    let raw = disk_snapshot(lab, vm)?;
    let records = std::fs::File::open(&raw)
        .ctx(|| format!("opening {}", raw.display()))
        .and_then(|mut f| check_records(&mut f, heartbeats.max_acked));
    let _ = std::fs::remove_file(&raw);
    let records = records?;
    Ok(GuestCheck {
        vm: vm.to_string(),
        since_unix_ms,
        heartbeats,
        records,
    })
}

/// Check the last `last_secs` seconds of heartbeats of guest `vm`, and its disk.
pub fn check_guest(lab: &Lab, vm: &str, last_secs: u64) -> Result<GuestCheck> {
    let since = super::console::unix_ms() - (last_secs as i64) * 1000;
    check_guest_since(lab, vm, since)
}

/// A raw copy of the guest's disk as it is now (read while the guest runs: records the guest
/// acknowledged were fdatasync'd, so they are on the store). Made by a host that mounts the store,
/// reading with O_DIRECT (`-T none`) so no page cache of that host can show an older block.
fn disk_snapshot(lab: &Lab, vm: &str) -> Result<std::path::PathBuf> {
    // VMs made with `twofold vm create` have their disk in the storage pool's directory; the
    // demo guest has it at the top of the store.
    let pooled = format!("{}/{vm}.qcow2", crate::storage::layout::IMAGES);
    let image = if lab.exec_output("host1", &["test", "-e", &pooled]).is_ok()
        || lab.exec_output("host2", &["test", "-e", &pooled]).is_ok()
    {
        pooled
    } else {
        format!("{STORE_MOUNT}/{vm}.qcow2")
    };
    // /tmp is shared by the lab nodes and this machine.
    let out = std::path::PathBuf::from(format!(
        "/tmp/twofold-check-{vm}-{}.raw",
        uuid::Uuid::new_v4().simple()
    ));
    let out_s = out.to_string_lossy().to_string();
    let mut last_err = None;
    for host in ["host1", "host2"] {
        match lab.exec_output(
            host,
            &[
                "qemu-img", "convert", "-U", "-T", "none", "-f", "qcow2", "-O", "raw", &image,
                &out_s,
            ],
        ) {
            Ok(_) => return Ok(out),
            Err(e) => last_err = Some(e),
        }
    }
    let _ = std::fs::remove_file(&out);
    Err(Error::Lab(format!(
        "cannot read the disk of {vm}: {}",
        last_err.map(|e| e.to_string()).unwrap_or_default()
    )))
}

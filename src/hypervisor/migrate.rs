//! Live migration of one VM between hosts that share the VM store: peer-to-peer (the source
//! host's libvirtd drives the whole protocol and talks to the destination itself), live (the
//! guest keeps running until the last pass), no storage copy (the disk is on the shared store),
//! and the definition moves with the guest (`PERSIST_DEST | UNDEFINE_SOURCE`), so the VM exists
//! on exactly one host afterwards.
//!
//! `virDomainMigrateToURI3` blocks until the end; a second thread polls the job statistics on
//! the same connection every 200 ms to report progress and to abort the job when asked to.

use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use virt::domain::{Domain, MigrateParameters};
use virt_sys as sys;

use super::events::LiveConn;
use super::{domain_info, ffi, HostConn, HostTarget};
use crate::error::{Error, Result};
use crate::progress::{Progress, ProgressEvent};

const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long the poll thread may take to notice that the migration ended (at most one libvirt
/// call of its own, on a working connection a few milliseconds).
const POLLER_GRACE: Duration = Duration::from_secs(5);

/// The pause Twofold asks QEMU to aim for at the final hand-over. QEMU's default limit is 300 ms;
/// measured in the lab (128 MiB guest writing to disk every 50 ms), 50 ms cut the median downtime
/// from about 250-350 ms to about 150 ms at no cost in total migration time.
pub const TARGET_DOWNTIME_MS: u64 = 50;
/// A VM that dirties memory faster than it can be copied never gets under a tight limit. After
/// [`CONVERGE_GRACE`] the limit is relaxed to this, so such a migration still finishes.
pub const RELAXED_DOWNTIME_MS: u64 = 500;
pub const CONVERGE_GRACE: Duration = Duration::from_secs(15);

/// The flags of every Twofold migration (see the module documentation).
const MIGRATE_FLAGS: u32 = sys::VIR_MIGRATE_LIVE
    | sys::VIR_MIGRATE_PEER2PEER
    | sys::VIR_MIGRATE_PERSIST_DEST
    | sys::VIR_MIGRATE_UNDEFINE_SOURCE;

/// Asks a running migration to stop. Clone it, hand one copy to the migration and call
/// [`MigrationCancel::cancel`] on another (from a Ctrl-C handler, a UI button). The migration
/// then aborts its libvirt job (`virDomainAbortJob`); the VM keeps running on its source host.
/// A migration already in its final hand-over cannot be aborted and completes.
#[derive(Debug, Clone, Default)]
pub struct MigrationCancel(Arc<AtomicBool>);

impl MigrationCancel {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Which host's libvirt the completed-job statistics came from.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatsSource {
    /// The destination: it knows when the guest resumed there, so its downtime covers the
    /// whole hand-over. The normal case.
    Destination,
    /// The source (only while it still has the domain, which `UNDEFINE_SOURCE` normally removes).
    Source,
    /// Neither host had statistics; only `wall_ms` is measured.
    Unavailable,
}

/// What one migration cost. Times in milliseconds, sizes in bytes; `None` when libvirt did not
/// report the value.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationStats {
    pub vm: String,
    pub from: String,
    pub to: String,
    /// Wall-clock time of the migrate call, measured by Twofold.
    pub wall_ms: u64,
    /// libvirt's elapsed time of the migration job.
    pub total_ms: Option<u64>,
    /// Time the guest was paused (stopped on the source until running on the destination).
    pub downtime_ms: Option<u64>,
    pub setup_ms: Option<u64>,
    pub data_total_bytes: Option<u64>,
    pub data_processed_bytes: Option<u64>,
    pub data_remaining_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub memory_processed_bytes: Option<u64>,
    /// Memory transfer rate at the end, bytes per second.
    pub memory_bps: Option<u64>,
    /// Passes over guest memory.
    pub memory_iterations: Option<u64>,
    /// Pages dirtied per second by the guest at the end.
    pub memory_dirty_rate: Option<u64>,
    pub stats_from: StatsSource,
}

impl MigrationStats {
    pub(super) fn new(
        vm: &str,
        from: &str,
        to: &str,
        wall_ms: u64,
        job: Option<ffi::JobStats>,
        stats_from: StatsSource,
    ) -> MigrationStats {
        let j = job.unwrap_or_default();
        MigrationStats {
            vm: vm.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            wall_ms,
            total_ms: j.time_elapsed_ms,
            downtime_ms: j.downtime_ms,
            setup_ms: j.setup_time_ms,
            data_total_bytes: j.data_total,
            data_processed_bytes: j.data_processed,
            data_remaining_bytes: j.data_remaining,
            memory_total_bytes: j.memory_total,
            memory_processed_bytes: j.memory_processed,
            memory_bps: j.memory_bps,
            memory_iterations: j.memory_iteration,
            memory_dirty_rate: j.memory_dirty_rate,
            stats_from,
        }
    }

    /// One line for people: "migrated web from host1 to host2 in 1.2 s (downtime 35 ms)".
    pub fn summary(&self) -> String {
        let downtime = match self.downtime_ms {
            Some(d) => format!("downtime {d} ms"),
            None => "downtime not reported".to_string(),
        };
        format!(
            "migrated {} from {} to {} in {:.1} s ({downtime})",
            self.vm,
            self.from,
            self.to,
            self.wall_ms as f64 / 1000.0
        )
    }
}

/// The QEMU migration stream URI for an address: `tcp://10.0.0.12`, `tcp://[fd00::12]`.
/// A value that already is a URI is kept as it is.
pub fn migration_uri(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else if addr.parse::<Ipv6Addr>().is_ok() {
        format!("tcp://[{addr}]")
    } else {
        format!("tcp://{addr}")
    }
}

impl HostConn {
    /// Live-migrate `vm` from this host to `dest` (see the module documentation for how).
    /// Blocks until the migration ends; reports bytes sent through `progress`; aborts when
    /// `cancel` is cancelled. Checks that `dest` is another host and that the VM is here and
    /// migratable; [`crate::vm::migrate_blocking`] checks more (both hosts reachable, the VM
    /// not running twice) and records the job.
    ///
    /// After success, the completed-job statistics are read from the destination (a new
    /// connection to `dest.uri`), else from the source; `stats_from` says which.
    ///
    /// Wraps <https://libvirt.org/html/libvirt-libvirt-domain.html#virDomainMigrateToURI3>,
    /// polling <https://libvirt.org/html/libvirt-libvirt-domain.html#virDomainGetJobStats>.
    pub fn migrate_blocking(
        &self,
        vm: &str,
        dest: &HostTarget,
        progress: &dyn Progress,
        cancel: &MigrationCancel,
    ) -> Result<MigrationStats> {
        self.migrate_to_blocking(vm, dest, None, progress, cancel)
    }

    /// [`Self::migrate_blocking`] reusing an open connection to the destination for the stats.
    pub(crate) fn migrate_to_blocking(
        &self,
        vm: &str,
        dest: &HostTarget,
        dest_conn: Option<&HostConn>,
        progress: &dyn Progress,
        cancel: &MigrationCancel,
    ) -> Result<MigrationStats> {
        if dest.name == self.host {
            return Err(Error::SameHost {
                vm: vm.to_string(),
                host: self.host.clone(),
            });
        }
        let dom = self.lookup(vm)?;
        let info = domain_info(&dom)
            .map_err(|e| self.libvirt_error(format!("reading the state of VM '{vm}'"), e))?;
        if !info.state.is_migratable() {
            return Err(Error::VmNotRunning {
                vm: vm.to_string(),
                state: info.state.to_string(),
            });
        }
        let failed = |detail: String| Error::Migration {
            vm: vm.to_string(),
            to: dest.name.clone(),
            detail,
        };
        if cancel.is_cancelled() {
            return Err(failed("cancelled before it started".into()));
        }

        let params = MigrateParameters {
            uri: dest.migration_address.as_deref().map(migration_uri),
            ..MigrateParameters::default()
        };
        progress.begin(
            &format!("migrating {vm} from {} to {}", self.host, dest.name),
            None,
        );
        // Wraps <https://libvirt.org/html/libvirt-libvirt-domain.html#virDomainMigrateSetMaxDowntime>.
        if let Err(e) = dom.migrate_set_max_downtime(TARGET_DOWNTIME_MS, 0) {
            tracing::warn!("keeping QEMU's default downtime limit: {}", e.message());
        }
        let started = Instant::now();
        let done = Arc::new(AtomicBool::new(false));
        let aborted = Arc::new(AtomicBool::new(false));
        let (note_tx, notes) = mpsc::channel::<PollNote>();
        let (ended_tx, ended) = mpsc::channel::<()>();
        // The poll thread owns what it uses and is not joined blindly: a libvirt call of its own
        // can stay blocked for good when the connection breaks under it (seen with the source
        // host's libvirtd killed mid-migration: virDomainGetJobStats never returned). It is
        // counted as a connection user, so shutdown waits for it, bounded.
        let poller = LiveConn::acquire(&self.host).and_then(|live| {
            let (dom, cancel, done, aborted) = (
                dom.clone(),
                cancel.clone(),
                Arc::clone(&done),
                Arc::clone(&aborted),
            );
            std::thread::Builder::new()
                .name("migration-poll".into())
                .spawn(move || {
                    let _live = live;
                    poll_job(&dom, &note_tx, &cancel, &done, &aborted, started);
                    drop(note_tx);
                    // The migrating thread may have stopped waiting; nothing else to tell.
                    let _ = ended_tx.send(());
                })
                .map_err(|e| Error::io("starting the migration's poll thread", e))
        });
        if let Err(e) = &poller {
            tracing::warn!("no progress for this migration: {e}");
        }
        // This thread blocks in libvirt: another reports the poll thread's notes meanwhile.
        let result = std::thread::scope(|s| {
            let done = &done;
            s.spawn(move || report_notes(&notes, done, progress));
            let result = dom.migrate_to_uri3(Some(&dest.peer_uri), params, MIGRATE_FLAGS);
            done.store(true, Ordering::SeqCst);
            result
        });
        if let Ok(handle) = poller {
            match ended.recv_timeout(POLLER_GRACE) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = handle.join();
                }
                Err(mpsc::RecvTimeoutError::Timeout) => tracing::warn!(
                    vm,
                    host = %self.host,
                    "a job statistics call did not return {} s after the migration ended (the connection broke under it); leaving it behind",
                    POLLER_GRACE.as_secs()
                ),
            }
        }
        let aborted = aborted.load(Ordering::SeqCst);
        let wall_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        progress.finish();

        if let Err(e) = result {
            let detail = if aborted || cancel.is_cancelled() {
                format!("cancelled on request ({})", e.message())
            } else {
                e.message().to_string()
            };
            return Err(failed(detail));
        }
        if cancel.is_cancelled() {
            progress.message("the migration had reached its final hand-over and completed anyway");
        }
        let (job, from) = self.completed_stats(&dom, vm, dest, dest_conn);
        let stats = MigrationStats::new(vm, &self.host, &dest.name, wall_ms, job, from);
        progress.message(&stats.summary());
        Ok(stats)
    }

    fn completed_stats(
        &self,
        src_dom: &Domain,
        vm: &str,
        dest: &HostTarget,
        dest_conn: Option<&HostConn>,
    ) -> (Option<ffi::JobStats>, StatsSource) {
        let opened;
        let dest_conn = match dest_conn {
            Some(c) => Some(c),
            None => match HostConn::open_blocking(dest) {
                Ok(c) => {
                    opened = c;
                    Some(&opened)
                }
                Err(e) => {
                    tracing::warn!("migration statistics: {e}");
                    None
                }
            },
        };
        if let Some(dc) = dest_conn {
            match dc.conn.lookup_domain_by_name(vm) {
                Ok(d) => match ffi::job_stats(&d, true) {
                    Ok(s) if s.job_type == ffi::JOB_COMPLETED => {
                        return (Some(s), StatsSource::Destination)
                    }
                    Ok(s) => {
                        tracing::debug!(job_type = s.job_type, "no completed job on {}", dest.name)
                    }
                    Err(e) => {
                        tracing::debug!("completed job stats on {}: {}", dest.name, e.message())
                    }
                },
                Err(e) => tracing::warn!(
                    "VM {vm} not found on {} after migrating: {}",
                    dest.name,
                    e.message()
                ),
            }
        }
        match ffi::job_stats(src_dom, true) {
            Ok(s) if s.job_type == ffi::JOB_COMPLETED => (Some(s), StatsSource::Source),
            _ => (None, StatsSource::Unavailable),
        }
    }
}

/// What the poll thread tells the thread that reports progress.
enum PollNote {
    Bytes(u64, Option<u64>),
    Message(String),
}

/// Hands the poll thread's notes to `progress` until the migration is `done` (not until the
/// poll thread ends: it may never).
fn report_notes(notes: &mpsc::Receiver<PollNote>, done: &AtomicBool, progress: &dyn Progress) {
    loop {
        match notes.recv_timeout(Duration::from_millis(50)) {
            Ok(PollNote::Bytes(processed, total)) => progress.event(&ProgressEvent::Transferred {
                done_bytes: processed,
                total_bytes: total,
            }),
            Ok(PollNote::Message(m)) => progress.message(&m),
            Err(mpsc::RecvTimeoutError::Timeout) if !done.load(Ordering::SeqCst) => {}
            Err(_) => return,
        }
    }
}

/// Runs beside the blocking migrate call until `done`: notes the bytes sent and aborts the job
/// once `cancel` is set (`aborted` says whether an abort was accepted).
fn poll_job(
    dom: &Domain,
    notes: &mpsc::Sender<PollNote>,
    cancel: &MigrationCancel,
    done: &AtomicBool,
    aborted: &AtomicBool,
    started: Instant,
) {
    let note = |n: PollNote| {
        // The reporter stops listening once the migration ended.
        let _ = notes.send(n);
    };
    let mut relaxed = false;
    let mut last: Option<(u64, Option<u64>)> = None;
    loop {
        // Sleep in short steps so the migration's end is not held up by a whole interval.
        let next = Instant::now() + POLL_INTERVAL;
        while Instant::now() < next {
            if done.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if cancel.is_cancelled() && !aborted.load(Ordering::SeqCst) {
            match ffi::abort_job(dom) {
                Ok(()) => {
                    aborted.store(true, Ordering::SeqCst);
                    note(PollNote::Message("cancelling the migration".into()));
                }
                // No job yet (the call is still starting) or too late: try again next round.
                Err(e) => tracing::debug!("abort not accepted yet: {}", e.message()),
            }
        }
        if !relaxed && started.elapsed() > CONVERGE_GRACE {
            relaxed = true;
            match dom.migrate_set_max_downtime(RELAXED_DOWNTIME_MS, 0) {
                Ok(()) => note(PollNote::Message(format!(
                    "the VM changes its memory about as fast as it can be copied: allowing a pause of up to {RELAXED_DOWNTIME_MS} ms so the migration can finish"
                ))),
                Err(e) => tracing::warn!("cannot relax the downtime limit: {}", e.message()),
            }
        }
        match ffi::job_stats(dom, false) {
            Ok(s) if s.job_type != ffi::JOB_NONE => {
                if let Some(processed) = s.data_processed {
                    let now = (processed, s.data_total);
                    if last != Some(now) {
                        note(PollNote::Bytes(processed, s.data_total));
                        last = Some(now);
                    }
                }
            }
            Ok(_) => {}
            // The test driver has no job stats; a real host answers unless the call just ended.
            Err(e) => tracing::debug!("job stats: {}", e.message()),
        }
    }
}

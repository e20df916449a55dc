//! libvirt's event loop, the live-connection count, and the orderly end of both.
//!
//! libvirt delivers events, sends the keepalive messages that detect a dead host, and frees what
//! a closed connection leaves behind (its socket, its SSH session) only from an event loop the
//! application runs. Twofold registers libvirt's default implementation once per process and
//! runs it on a dedicated thread named `libvirt-events`; this must happen before a connection is
//! opened, which [`super::HostConn::open_blocking`] takes care of.
//!
//! Because the loop thread finishes what closed connections began, a process must not end while
//! it runs: C libraries' exit handlers (OpenSSL's) free what that thread still uses, and the
//! process dies of it (SIGSEGV in `ssh_channel_send_eof` while a host's libvirtd was gone).
//! [`shutdown_blocking`] ends it in order: refuse new connections, wait for the open ones to be
//! closed, let the loop finish the work they deferred, stop the thread and join it. Every
//! binary calls it (through [`crate::shutdown`]) before it returns from `main` or exits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::ffi;
use super::lifecycle::LifecycleEvent;
use crate::error::{Error, Result};

/// Loop iterations run after the stop request, each woken at once: a free run by one iteration
/// can release further handles, which the next one frees.
const DRAIN_ITERATIONS: usize = 4;

enum LoopState {
    NotStarted,
    Running {
        stop: Arc<AtomicBool>,
        done: mpsc::Receiver<()>,
        thread: JoinHandle<()>,
    },
    /// Registration or the thread failed; every later open reports why.
    Failed(String),
    /// [`shutdown_blocking`] ran: the process is ending, no connection may open any more.
    ShutDown,
}

static LOOP: Mutex<LoopState> = Mutex::new(LoopState::NotStarted);
/// libvirt allows one registration of its default implementation per process.
static REGISTERED: Mutex<bool> = Mutex::new(false);

/// Connections being opened or open, and whether the process is closing.
struct Live {
    count: usize,
    closing: bool,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    count: 0,
    closing: false,
});
static LIVE_CHANGED: Condvar = Condvar::new();

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One libvirt connection counted from before it opens until after it is closed, so
/// [`shutdown_blocking`] knows when no closing work can still reach the event loop.
pub(crate) struct LiveConn(());

impl LiveConn {
    /// Counts one more connection, or refuses when the process is shutting down.
    pub(crate) fn acquire(host: &str) -> Result<LiveConn> {
        let mut live = lock(&LIVE);
        if live.closing {
            return Err(shutting_down(host));
        }
        live.count += 1;
        Ok(LiveConn(()))
    }
}

impl Drop for LiveConn {
    fn drop(&mut self) {
        let mut live = lock(&LIVE);
        live.count = live.count.saturating_sub(1);
        LIVE_CHANGED.notify_all();
    }
}

fn shutting_down(host: &str) -> Error {
    Error::Libvirt {
        host: host.to_string(),
        op: "opening a connection".into(),
        detail: "Twofold is shutting down; run the command again".into(),
    }
}

/// Register libvirt's default event loop and start the thread that runs it. Idempotent; cheap
/// after the first call. Also silences libvirt's default error printer: Twofold reports
/// libvirt's errors itself, with context. Fails after [`shutdown_blocking`].
///
/// Wraps <https://libvirt.org/html/libvirt-libvirt-event.html#virEventRegisterDefaultImpl> and
/// runs <https://libvirt.org/html/libvirt-libvirt-event.html#virEventRunDefaultImpl> in a loop.
pub fn ensure_event_loop() -> Result<()> {
    let mut state = lock(&LOOP);
    match &*state {
        LoopState::Running { .. } => return Ok(()),
        LoopState::ShutDown => return Err(shutting_down("this machine")),
        LoopState::Failed(detail) => return Err(loop_failed(detail)),
        LoopState::NotStarted => {}
    }
    match start_loop() {
        Ok(running) => {
            *state = running;
            Ok(())
        }
        Err(detail) => {
            let e = loop_failed(&detail);
            *state = LoopState::Failed(detail);
            Err(e)
        }
    }
}

fn loop_failed(detail: &str) -> Error {
    Error::Libvirt {
        host: "this machine".into(),
        op: "starting the libvirt event loop".into(),
        detail: format!("{detail}; restart Twofold"),
    }
}

fn start_loop() -> std::result::Result<LoopState, String> {
    {
        let mut registered = lock(&REGISTERED);
        if !*registered {
            virt::error::clear_error_callback();
            virt::event::event_register_default_impl()
                .map_err(|e| format!("cannot register the event loop: {}", e.message()))?;
            *registered = true;
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("libvirt-events".into())
        .spawn({
            let stop = Arc::clone(&stop);
            move || run_loop(&stop, &done_tx)
        })
        .map_err(|e| format!("cannot start the libvirt event thread: {e}"))?;
    Ok(LoopState::Running { stop, done, thread })
}

fn run_loop(stop: &AtomicBool, done: &Sender<()>) {
    while !stop.load(Ordering::Acquire) {
        if let Err(e) = virt::event::event_run_default_impl() {
            tracing::warn!("libvirt event loop: {}", e.message());
            // Do not spin if the loop keeps failing.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Closed connections leave their last frees to the loop (removed handles are freed at the
    // start and end of an iteration): run a few more iterations, each woken at once.
    for _ in 0..DRAIN_ITERATIONS {
        if ffi::wake_event_loop().is_err() {
            break;
        }
        if virt::event::event_run_default_impl().is_err() {
            break;
        }
    }
    // The receiver may have given up waiting; nothing else to tell.
    let _ = done.send(());
}

/// What [`shutdown_blocking`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShutdownReport {
    /// Connections still open (or opening) when the wait for them ran out; 0 in an orderly end.
    pub connections_left: usize,
    /// The event loop thread finished and was joined (also true when it never ran).
    pub loop_joined: bool,
    pub elapsed_ms: u64,
}

impl ShutdownReport {
    /// Nothing of libvirt's can still run while the process ends.
    pub fn is_clean(&self) -> bool {
        self.connections_left == 0 && self.loop_joined
    }

    /// A sentence for a log or a warning when the end was not clean.
    pub fn problem(&self) -> Option<String> {
        if self.is_clean() {
            return None;
        }
        let mut p = Vec::new();
        if self.connections_left > 0 {
            p.push(format!(
                "{} libvirt connection(s) were still in use",
                self.connections_left
            ));
        }
        if !self.loop_joined {
            p.push("the libvirt event loop did not stop in time".to_string());
        }
        Some(format!(
            "stopping after {} ms although {}",
            self.elapsed_ms,
            p.join(" and ")
        ))
    }
}

/// End libvirt's part of the process in order, waiting at most about `within`: refuse new
/// connections, wait until every open one is closed (their owners drop them), let the event loop
/// finish the work they left to it, then stop its thread and join it. Idempotent: a second call
/// returns at once. After it, opening a connection fails.
pub fn shutdown_blocking(within: Duration) -> ShutdownReport {
    // Calls wait for each other; later ones return the first one's report.
    static DONE: Mutex<Option<ShutdownReport>> = Mutex::new(None);
    let mut done = lock(&DONE);
    if let Some(report) = &*done {
        return report.clone();
    }
    let report = shutdown_once(within);
    *done = Some(report.clone());
    report
}

fn shutdown_once(within: Duration) -> ShutdownReport {
    let started = Instant::now();
    let deadline = started + within;
    let connections_left = {
        let mut live = lock(&LIVE);
        live.closing = true;
        while live.count > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            live = LIVE_CHANGED
                .wait_timeout(live, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        live.count
    };
    if connections_left > 0 {
        tracing::warn!(
            connections_left,
            "libvirt connections still open at shutdown"
        );
    }
    let previous = std::mem::replace(&mut *lock(&LOOP), LoopState::ShutDown);
    let loop_joined = match previous {
        LoopState::Running { stop, done, thread } => {
            stop.store(true, Ordering::Release);
            // Wake the loop from its poll so it sees the request now, not at its next event.
            if let Err(e) = ffi::wake_event_loop() {
                tracing::warn!("waking the libvirt event loop: {}", e.message());
            }
            // The loop always gets a moment, even when the connections used up the time.
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1));
            match done.recv_timeout(wait) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => thread.join().is_ok(),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    tracing::warn!("the libvirt event loop did not stop in time");
                    false
                }
            }
        }
        LoopState::NotStarted | LoopState::Failed(_) | LoopState::ShutDown => true,
    };
    ShutdownReport {
        connections_left,
        loop_joined,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// A live subscription to one host's lifecycle events. Dropping it deregisters the callback
/// (one libvirt call, so drop it off async threads too).
pub struct LifecycleSubscription {
    _registration: ffi::LifecycleRegistration,
    // Dropped after the registration (and its connection reference).
    _live: LiveConn,
}

impl super::HostConn {
    /// Send every lifecycle event of this host's domains into `tx` until the returned
    /// subscription is dropped (or the receiver is gone). Blocking (one libvirt call).
    pub fn subscribe_lifecycle_blocking(
        &self,
        tx: Sender<LifecycleEvent>,
    ) -> Result<LifecycleSubscription> {
        self.subscribe_lifecycle_with_blocking(move |ev| {
            // A receiver that went away just stops listening.
            let _ = tx.send(ev);
        })
    }

    /// Like [`Self::subscribe_lifecycle_blocking`] with any handler, for example a tokio
    /// channel's `send`. The handler runs on the libvirt event thread: it must return quickly
    /// and never call libvirt itself.
    pub fn subscribe_lifecycle_with_blocking(
        &self,
        sink: impl Fn(LifecycleEvent) + Send + 'static,
    ) -> Result<LifecycleSubscription> {
        let live = LiveConn::acquire(&self.host)?;
        let registration = ffi::register_lifecycle(&self.conn, &self.host, Box::new(sink))
            .map_err(|e| self.libvirt_error("subscribing to VM lifecycle events", e))?;
        Ok(LifecycleSubscription {
            _registration: registration,
            _live: live,
        })
    }
}

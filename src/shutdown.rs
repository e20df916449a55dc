//! Ending a Twofold process in order, the one way every binary does it: the CLI, the desktop
//! app, the lab test binary and the benchmarks, and the headless agent.
//!
//! The engine runs work on threads of its own (libvirt's event loop above all, see
//! [`crate::hypervisor::shutdown_blocking`]); the process must not reach `exit()` while they run,
//! or C libraries' exit handlers free what those threads still use. A binary therefore either
//! holds a [`Guard`] for the whole of `main`, or calls [`shutdown`] before returning, and uses
//! [`exit`] instead of `std::process::exit`.

use std::time::Duration;

use crate::hypervisor::{self, ShutdownReport};

/// How long [`shutdown`] waits, at most, for open connections to be closed and for libvirt's
/// event loop to finish. A connection still open then is in use by a thread that is stuck on a
/// host that does not answer; the process ends anyway rather than hang.
pub const SHUTDOWN_WITHIN: Duration = Duration::from_secs(10);

/// Stop the engine's threads in order (see the module docs). Idempotent and bounded by
/// [`SHUTDOWN_WITHIN`]; a second call returns the first one's report at once. What did not end in
/// time is in the report (and logged).
pub fn shutdown() -> ShutdownReport {
    let report = hypervisor::shutdown_blocking(SHUTDOWN_WITHIN);
    if let Some(problem) = report.problem() {
        tracing::warn!("shutdown: {problem}");
    }
    report
}

/// [`shutdown`], then end the process with `code`: the replacement for `std::process::exit`.
pub fn exit(code: i32) -> ! {
    shutdown();
    std::process::exit(code)
}

/// Runs [`shutdown`] when dropped: hold one for the whole of `main`, so an early return or a
/// panic that unwinds out of `main` still ends the engine in order.
#[must_use = "the engine shuts down when the guard is dropped"]
pub struct Guard(());

impl Guard {
    pub fn new() -> Guard {
        Guard(())
    }
}

impl Default for Guard {
    fn default() -> Self {
        Guard::new()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        shutdown();
    }
}

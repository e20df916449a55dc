//! One way for long operations to report progress. The CLI draws bars, the desktop app emits
//! events, tests record what they were told. Engine code only ever sees this trait.

/// Receives progress of one long operation (a migration, a lab bring-up, a provisioning step).
pub trait Progress: Send + Sync {
    /// A new phase started; `total` is the amount of work if known (bytes, steps).
    fn begin(&self, phase: &str, total: Option<u64>);
    /// Work done so far in the current phase, and the total if it became known or changed.
    fn update(&self, done: u64, total: Option<u64>);
    /// A line worth showing to a person (what happened, not debugging noise).
    fn message(&self, line: &str);
    /// The current phase ended.
    fn finish(&self);
}

/// Progress that goes nowhere, for callers that do not show it.
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _phase: &str, _total: Option<u64>) {}
    fn update(&self, _done: u64, _total: Option<u64>) {}
    fn message(&self, _line: &str) {}
    fn finish(&self) {}
}

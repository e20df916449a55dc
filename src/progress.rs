//! One way for long operations to report progress. The CLI draws bars and prints lines, the
//! desktop app forwards events to its window, tests record what they were told. Engine code only
//! ever sees this trait.
//!
//! Besides phases, amounts and free lines for people, a run of steps (the setup) reports typed
//! [`ProgressEvent`]s through [`Progress::event`]: step started, done, already done, failed,
//! undone, cancelled, each naming the step by id, node and position. Front ends branch on those,
//! never on the text of a line; [`ProgressEvent::text`] is the one English rendering of them.

use serde::Serialize;

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
    /// A typed event. By default bytes moved go to [`Progress::update`] and every other event
    /// is shown as its text through [`Progress::message`], so a receiver that only draws bars
    /// and shows lines needs nothing more; one that shows data (the app) or checks what
    /// happened (tests) takes the event itself.
    fn event(&self, e: &ProgressEvent) {
        if let ProgressEvent::Transferred {
            done_bytes,
            total_bytes,
            ..
        } = e
        {
            self.update(*done_bytes, *total_bytes);
        } else if let Some(line) = e.text() {
            self.message(&line);
        }
    }
}

/// Progress that goes nowhere, for callers that do not show it.
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _phase: &str, _total: Option<u64>) {}
    fn update(&self, _done: u64, _total: Option<u64>) {}
    fn message(&self, _line: &str) {}
    fn finish(&self) {}
    fn event(&self, _e: &ProgressEvent) {}
}

/// The step an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct StepRef {
    /// The step's stable id in its plan.
    pub id: String,
    /// The node it acts on.
    pub node: String,
    pub title: String,
    /// 1-based position in the plan.
    pub number: usize,
    /// Steps in the plan.
    pub total: usize,
}

impl StepRef {
    fn prefix(&self) -> String {
        format!("[{}/{}] {}", self.number, self.total, self.title)
    }
}

/// How a run of steps ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ApplyOutcome {
    /// Every step's state is there now.
    Completed,
    /// A step failed; the run stopped there.
    Failed,
    /// Cancelled between two steps.
    Cancelled,
}

/// Where a step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum FailedPhase {
    /// Checking whether the step was needed (nothing was changed by it).
    Check,
    /// Applying it.
    Apply,
    /// Checking after applying it: the state was not there.
    Confirm,
}

/// What undoing a failed step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "result", content = "error", rename_all = "snake_case")]
pub enum UndoOutcome {
    /// Nothing had been changed (the step failed while checking): undo was not run.
    NotNeeded,
    /// The step's undo ran and removed what the failed attempt had changed.
    Done,
    /// The step has nothing to take back (it has no undo, or its undo found nothing of it).
    NothingToUndo,
    /// Undo failed too: the node may hold partial changes.
    Failed(String),
}

impl UndoOutcome {
    /// For a person, after the step's failure.
    pub fn text(&self) -> String {
        match self {
            UndoOutcome::NotNeeded => "nothing was changed, so nothing to undo".into(),
            UndoOutcome::Done => "undone: what the step had changed was taken back".into(),
            UndoOutcome::NothingToUndo => "nothing to undo".into(),
            UndoOutcome::Failed(e) => format!("undoing it failed too: {e}"),
        }
    }
}

/// A typed progress event. Serialized as `{"kind": "step_done", ...}`: the desktop app's window
/// receives exactly this (its TypeScript type is generated from it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// [`Progress::begin`]: a phase started; `total` is its amount of work if known.
    Begin { phase: String, total: Option<u64> },
    /// [`Progress::update`].
    Update { done: u64, total: Option<u64> },
    /// [`Progress::message`]: a line for a person, to show as it is.
    Message { line: String },
    /// [`Progress::finish`].
    Finish,
    /// Bytes moved so far by a transfer (a migration's memory and disk, an upload), and its
    /// total when known; the current phase (from [`ProgressEvent::Begin`]) says what moves.
    Transferred {
        done_bytes: u64,
        total_bytes: Option<u64>,
    },
    /// A run of a plan's steps started.
    RunStarted {
        plan: String,
        /// Steps in the plan.
        total: usize,
        /// The earlier run this one continues (it did not finish), if any.
        resumed_from: Option<String>,
        /// How many steps that earlier run changed.
        resumed_changed: usize,
    },
    /// A step started (its check runs first; it may turn out to be already done).
    StepStarted { step: StepRef },
    /// The step changed what it had to, and its check confirmed the result.
    StepDone { step: StepRef, duration_ms: u64 },
    /// The step's result was already there: nothing was changed.
    StepAlreadyDone {
        step: StepRef,
        /// Done by the unfinished earlier run that this run continues.
        by_previous_run: bool,
    },
    /// The step failed. What undoing it did follows in [`ProgressEvent::StepUndone`].
    StepFailed {
        step: StepRef,
        phase: FailedPhase,
        /// The stable code of the error behind it.
        code: String,
        /// The error, for a person.
        message: String,
        /// The last lines the failed command printed (stdout, then stderr), bounded; empty when
        /// it printed nothing or no command was involved.
        output: Vec<String>,
    },
    /// What undoing a failed step did.
    StepUndone { step: StepRef, undo: UndoOutcome },
    /// The run was cancelled before `next`; every step before it is finished.
    Cancelled { next: StepRef, finished: usize },
    /// The run ended.
    RunFinished {
        outcome: ApplyOutcome,
        total: usize,
        changed: usize,
        already_done: usize,
        /// One or two sentences for a person, with what to do next.
        summary: String,
    },
}

impl ProgressEvent {
    /// The event as one or more lines for a person, or `None` for events that only move a bar
    /// or a spinner.
    pub fn text(&self) -> Option<String> {
        match self {
            ProgressEvent::Begin { .. }
            | ProgressEvent::Update { .. }
            | ProgressEvent::Transferred { .. }
            | ProgressEvent::Finish => None,
            ProgressEvent::Message { line } => Some(line.clone()),
            ProgressEvent::RunStarted {
                resumed_from: Some(_),
                resumed_changed,
                ..
            } => Some(format!(
                "Continuing an earlier run that did not finish ({resumed_changed} step(s) done by it)."
            )),
            ProgressEvent::RunStarted { .. } | ProgressEvent::StepStarted { .. } => None,
            ProgressEvent::StepDone { step, .. } => Some(format!("{}: done", step.prefix())),
            ProgressEvent::StepAlreadyDone {
                step,
                by_previous_run,
            } => Some(format!(
                "{}: already done{}",
                step.prefix(),
                if *by_previous_run {
                    " (by the earlier run)"
                } else {
                    ""
                }
            )),
            ProgressEvent::StepFailed {
                step,
                message,
                output,
                ..
            } => {
                let mut s = format!("{}: FAILED: {message}", step.prefix());
                for l in output {
                    s.push_str("\n    | ");
                    s.push_str(l);
                }
                Some(s)
            }
            ProgressEvent::StepUndone { undo, .. } => Some(format!("    {}", undo.text())),
            ProgressEvent::Cancelled { next, .. } => Some(format!(
                "Cancelled before step {} of {}: {}",
                next.number, next.total, next.title
            )),
            ProgressEvent::RunFinished { summary, .. } => Some(summary.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);

    impl Progress for Lines {
        fn begin(&self, _phase: &str, _total: Option<u64>) {}
        fn update(&self, _done: u64, _total: Option<u64>) {}
        fn message(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_string());
        }
        fn finish(&self) {}
    }

    fn step() -> StepRef {
        StepRef {
            id: "host2/libvirt".into(),
            node: "host2".into(),
            title: "Start libvirt on host2".into(),
            number: 12,
            total: 28,
        }
    }

    #[test]
    fn a_receiver_of_lines_gets_each_event_as_text() {
        let p = Lines::default();
        p.event(&ProgressEvent::StepStarted { step: step() });
        p.event(&ProgressEvent::StepFailed {
            step: step(),
            phase: FailedPhase::Apply,
            code: "remote_command".into(),
            message: "Start libvirt on host2 failed (exit status 1)".into(),
            output: vec!["libvirtd: cannot bind".into()],
        });
        p.event(&ProgressEvent::StepUndone {
            step: step(),
            undo: UndoOutcome::NothingToUndo,
        });
        assert_eq!(
            p.0.lock().unwrap().as_slice(),
            [
                "[12/28] Start libvirt on host2: FAILED: Start libvirt on host2 failed (exit status 1)\n    | libvirtd: cannot bind",
                "    nothing to undo",
            ]
        );
    }

    #[test]
    fn bytes_moved_reach_a_bar_by_default() {
        #[derive(Default)]
        struct Bar(Mutex<Vec<(u64, Option<u64>)>>);
        impl Progress for Bar {
            fn begin(&self, _phase: &str, _total: Option<u64>) {}
            fn update(&self, done: u64, total: Option<u64>) {
                self.0.lock().unwrap().push((done, total));
            }
            fn message(&self, line: &str) {
                panic!("no line expected, got {line}");
            }
            fn finish(&self) {}
        }
        let bar = Bar::default();
        bar.event(&ProgressEvent::Transferred {
            done_bytes: 10,
            total_bytes: Some(40),
        });
        assert_eq!(bar.0.lock().unwrap().as_slice(), [(10, Some(40))]);
    }

    #[test]
    fn events_serialize_with_their_kind() {
        let e = ProgressEvent::StepUndone {
            step: step(),
            undo: UndoOutcome::Failed("umount: busy".into()),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["kind"], "step_undone");
        assert_eq!(v["step"]["number"], 12);
        assert_eq!(v["undo"]["result"], "failed");
        assert_eq!(v["undo"]["error"], "umount: busy");
        let v = serde_json::to_value(ProgressEvent::Finish).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "finish"}));
    }
}

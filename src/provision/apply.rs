//! Carrying out a [`Plan`]: [`apply`] runs its steps in order, skipping those already done,
//! recording each run and each change as jobs in the inventory, undoing a failed step's partial
//! work and stopping there with what to do; [`verify`] checks every step's end state
//! independently afterwards.
//!
//! Resuming needs nothing special: a step is only applied when its check says its state is not
//! there yet, so running the same plan again after a failure or a cancel continues where the
//! previous run stopped, and running it after a success changes nothing. The report still says
//! which earlier run it resumed and which steps that run had done.
//!
//! In the inventory, a run is a job of kind [`RUN_JOB_KIND`] whose target is the plan's name (its
//! result lists the step ids it completed, changed and found already done), and every step that
//! had to change something is a job of kind [`STEP_JOB_KIND`] whose target is the step's id (its
//! result names the run). Steps found already done get no job of their own.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tracing::{info, warn};

use super::plan::{Plan, PlannedStep, StepCtx, Undone, Verdict};
use crate::error::{on_node, Error, Result};
use crate::inventory::{Inventory, JobState, Severity};
pub use crate::progress::{ApplyOutcome, FailedPhase, UndoOutcome};
use crate::progress::{Progress, ProgressEvent, StepRef};

/// Job kind of one run of a plan (target: the plan's name).
pub const RUN_JOB_KIND: &str = "setup";
/// Job kind of one step that changed something (target: the step's id).
pub const STEP_JOB_KIND: &str = "setup-step";

/// How many recent jobs are searched for the previous run of a plan and its steps.
const JOB_HISTORY: usize = 10_000;

/// Asks a run to stop. It is looked at between steps only: a step is never interrupted halfway.
#[derive(Debug, Clone, Default)]
pub struct ApplyCancel(Arc<AtomicBool>);

impl ApplyCancel {
    pub fn new() -> ApplyCancel {
        ApplyCancel::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What happened to one step in a run.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Its check found the state already there: nothing was changed.
    AlreadyDone,
    /// Applied, and its check confirmed the state afterwards.
    Changed,
    Failed,
    /// Not reached (an earlier step failed, or the run was cancelled).
    NotRun,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct StepOutcome {
    pub id: String,
    pub node: String,
    pub title: String,
    pub status: StepStatus,
    /// The step's job in the inventory (only steps that had to change something have one).
    pub job_id: Option<String>,
    /// Already done because the unfinished run this one resumes did it.
    pub done_by_previous_run: bool,
    pub duration_ms: u64,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct StepFailure {
    pub step: String,
    pub node: String,
    pub title: String,
    /// 1-based position in the plan.
    pub number: usize,
    pub phase: FailedPhase,
    /// [`Error::code`] of the error.
    pub code: String,
    /// The error, for a person.
    pub message: String,
    /// The last lines the failed command printed (stdout, then stderr), bounded; empty when it
    /// printed nothing or no command was involved.
    pub output: Vec<String>,
    pub undo: UndoOutcome,
    /// What the user should do next.
    pub what_to_do: String,
}

/// An earlier run of the same plan that did not complete, which this run continues.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct PreviousRun {
    pub run_id: String,
    /// `failed` (failed or cancelled) or `running` (the process stopped mid-run).
    pub state: JobState,
    pub error: Option<String>,
    /// The steps it changed, in plan order.
    pub changed: Vec<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub plan: String,
    /// This run's job id.
    pub run_id: String,
    pub outcome: ApplyOutcome,
    /// Every step of the plan, in order.
    pub steps: Vec<StepOutcome>,
    /// How many steps changed something.
    pub changed: usize,
    /// How many steps were found already done.
    pub already_done: usize,
    pub resumed_from: Option<PreviousRun>,
    pub failure: Option<StepFailure>,
}

impl ApplyReport {
    /// Completed without changing anything.
    pub fn is_noop(&self) -> bool {
        self.outcome == ApplyOutcome::Completed && self.changed == 0
    }

    /// Ids of the steps with `status`, in plan order.
    pub fn ids(&self, status: StepStatus) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|s| s.status == status)
            .map(|s| s.id.as_str())
            .collect()
    }

    /// One or two sentences for a person.
    pub fn summary(&self) -> String {
        let total = self.steps.len();
        let resumed = if self.resumed_from.is_some() {
            " (continuing an earlier run that did not finish)"
        } else {
            ""
        };
        match (&self.outcome, &self.failure) {
            (ApplyOutcome::Completed, _) if self.changed == 0 => {
                format!("Nothing to change: all {total} steps were already done.")
            }
            (ApplyOutcome::Completed, _) => format!(
                "Done{resumed}: {} step(s) changed, {} already done ({total} in all).",
                self.changed, self.already_done
            ),
            (ApplyOutcome::Failed, Some(f)) => {
                // A step's own command is named by its title: the message then starts with it.
                let step = if f.message.starts_with(&f.title) {
                    String::new()
                } else {
                    format!("{}{}: ", f.title, on_node(&f.node, &f.title))
                };
                format!(
                    "Step {} of {total} failed{resumed}: {step}{}; {}. {}",
                    f.number,
                    join_output(&f.message, &f.output),
                    f.undo.text(),
                    f.what_to_do
                )
            }
            (ApplyOutcome::Failed, None) => format!("The run failed{resumed}."),
            (ApplyOutcome::Cancelled, _) => format!(
                "Cancelled{resumed} after {} of {total} steps; nothing is left half-done. Run the setup again to continue.",
                self.changed + self.already_done
            ),
        }
    }

    /// The report if the run completed; otherwise the error to show ([`Error::StepFailed`] or
    /// [`Error::Cancelled`]).
    pub fn into_result(self) -> Result<ApplyReport> {
        match (self.outcome, &self.failure) {
            (ApplyOutcome::Completed, _) => Ok(self),
            (ApplyOutcome::Failed, Some(f)) => Err(Error::StepFailed {
                step: f.title.clone(),
                node: f.node.clone(),
                cause: f.code.clone(),
                detail: format!(
                    "{}; {}. {}",
                    join_output(&f.message, &f.output),
                    f.undo.text(),
                    f.what_to_do
                ),
            }),
            (ApplyOutcome::Failed, None) | (ApplyOutcome::Cancelled, _) => Err(Error::Cancelled {
                what: format!("the setup '{}'", self.plan),
            }),
        }
    }
}

/// Apply `plan` on the nodes reached through `ctx`, recording the run in the inventory at
/// `inventory_path`. For each step in order: check it; if its state is there, it is already
/// done; otherwise record a job, apply it and check again. A step that fails (or whose state is
/// still not there afterwards) is undone, its job marked failed, and the run stops there.
/// `cancel` is looked at before each step.
///
/// A failed or cancelled run is `Ok` with [`ApplyReport::outcome`] saying so (use
/// [`ApplyReport::into_result`] to turn it into an error); `Err` means the run itself could not
/// go on, like an inventory that cannot be written. Dropping the returned future mid-step leaves
/// that step half-done (its undo does not run): cancel through `cancel` instead.
pub async fn apply(
    plan: &Plan,
    ctx: &StepCtx,
    inventory_path: &Path,
    progress: &dyn Progress,
    cancel: &ApplyCancel,
) -> Result<ApplyReport> {
    let journal = Journal::open(inventory_path).await?;
    let resumed_from = journal.previous_unfinished_run(plan).await?;
    let plan_name = plan.name().to_string();
    let run_id = journal
        .with(move |inv| inv.start_job(RUN_JOB_KIND, &plan_name))
        .await?;
    info!(plan = plan.name(), run = %run_id, steps = plan.len(), "applying plan");
    let total = plan.len();
    progress.event(&ProgressEvent::RunStarted {
        plan: plan.name().to_string(),
        total,
        resumed_from: resumed_from.as_ref().map(|p| p.run_id.clone()),
        resumed_changed: resumed_from.as_ref().map_or(0, |p| p.changed.len()),
    });

    let mut steps: Vec<StepOutcome> = plan
        .steps()
        .map(|s| StepOutcome {
            id: s.id.clone(),
            node: s.node.clone(),
            title: s.title.clone(),
            status: StepStatus::NotRun,
            job_id: None,
            done_by_previous_run: false,
            duration_ms: 0,
        })
        .collect();
    let mut outcome = ApplyOutcome::Completed;
    let mut failure = None;

    progress.begin(&format!("Applying '{}'", plan.name()), Some(total as u64));
    for (i, step) in plan.planned().iter().enumerate() {
        let at = StepRef {
            id: step.info.id.clone(),
            node: step.info.node.clone(),
            title: step.info.title.clone(),
            number: i + 1,
            total,
        };
        if cancel.is_cancelled() {
            outcome = ApplyOutcome::Cancelled;
            progress.event(&ProgressEvent::Cancelled {
                next: at,
                finished: i,
            });
            break;
        }
        progress.event(&ProgressEvent::StepStarted { step: at.clone() });
        let started = Instant::now();
        let result = run_step(step, &at, ctx, &journal, &run_id, progress).await?;
        let out = &mut steps[i];
        out.duration_ms = started.elapsed().as_millis() as u64;
        match result {
            StepRun::AlreadyDone => {
                out.status = StepStatus::AlreadyDone;
                out.done_by_previous_run = resumed_from
                    .as_ref()
                    .is_some_and(|p| p.changed.contains(&step.info.id));
                progress.event(&ProgressEvent::StepAlreadyDone {
                    step: at,
                    by_previous_run: out.done_by_previous_run,
                });
            }
            StepRun::Changed { job_id } => {
                out.status = StepStatus::Changed;
                out.job_id = Some(job_id);
                progress.event(&ProgressEvent::StepDone {
                    step: at,
                    duration_ms: out.duration_ms,
                });
            }
            StepRun::Failed { job_id, failure: f } => {
                // The step's own events (failed, undone) were sent while it ran.
                out.status = StepStatus::Failed;
                out.job_id = job_id;
                outcome = ApplyOutcome::Failed;
                failure = Some(*f);
            }
        }
        progress.update((i + 1) as u64, Some(total as u64));
        if outcome == ApplyOutcome::Failed {
            break;
        }
    }
    progress.finish();

    let report = ApplyReport {
        plan: plan.name().to_string(),
        run_id,
        changed: steps
            .iter()
            .filter(|s| s.status == StepStatus::Changed)
            .count(),
        already_done: steps
            .iter()
            .filter(|s| s.status == StepStatus::AlreadyDone)
            .count(),
        outcome,
        steps,
        resumed_from,
        failure,
    };
    journal.finish_run(&report).await?;
    progress.event(&ProgressEvent::RunFinished {
        outcome: report.outcome,
        total,
        changed: report.changed,
        already_done: report.already_done,
        summary: report.summary(),
    });
    info!(plan = plan.name(), run = %report.run_id, outcome = ?report.outcome, changed = report.changed, "plan applied");
    Ok(report)
}

enum StepRun {
    AlreadyDone,
    Changed {
        job_id: String,
    },
    Failed {
        job_id: Option<String>,
        failure: Box<StepFailure>,
    },
}

/// Check one step and, when its state is not there, apply, confirm and (on failure) undo it,
/// sending the step's failure and undo events as they happen.
async fn run_step(
    step: &PlannedStep,
    at: &StepRef,
    ctx: &StepCtx,
    journal: &Journal,
    run_id: &str,
    progress: &dyn Progress,
) -> Result<StepRun> {
    let info = &step.info;
    let failed = |phase, e: &Error| {
        warn!(step = %info.id, node = %info.node, error = %e, ?phase, "step failed");
        progress.event(&ProgressEvent::StepFailed {
            step: at.clone(),
            phase,
            code: e.code().to_string(),
            message: e.headline(),
            output: e.command_output().to_vec(),
        });
    };
    let failure = |phase, e: &Error, undo: UndoOutcome| {
        progress.event(&ProgressEvent::StepUndone {
            step: at.clone(),
            undo: undo.clone(),
        });
        let mut what_to_do = String::new();
        if let UndoOutcome::Failed(u) = &undo {
            what_to_do.push_str(&format!(
                "Undoing the step's partial changes failed too ({u}); check {} by hand. ",
                info.node
            ));
        }
        let remedy = step
            .remedy
            .clone()
            .unwrap_or_else(|| "Fix the cause above, then run the setup again".to_string());
        what_to_do.push_str(&format!(
            "{}: the steps already done are checked and skipped, not redone.",
            remedy.trim_end_matches('.')
        ));
        StepFailure {
            step: info.id.clone(),
            node: info.node.clone(),
            title: info.title.clone(),
            number: at.number,
            phase,
            code: e.code().to_string(),
            message: e.headline(),
            output: e.command_output().to_vec(),
            undo,
            what_to_do,
        }
    };

    match step.action.check(ctx).await {
        Ok(true) => return Ok(StepRun::AlreadyDone),
        Ok(false) => {}
        Err(e) => {
            failed(FailedPhase::Check, &e);
            return Ok(StepRun::Failed {
                job_id: None,
                failure: Box::new(failure(FailedPhase::Check, &e, UndoOutcome::NotNeeded)),
            });
        }
    }

    let (id, node) = (info.id.clone(), info.node.clone());
    let job_id = journal
        .with(move |inv| inv.start_job(STEP_JOB_KIND, &id))
        .await?;
    info!(step = %info.id, node = %info.node, job = %job_id, "applying step");
    let attempt = match step.action.apply(ctx).await {
        Err(e) => Err((FailedPhase::Apply, e)),
        Ok(()) => match step.action.check(ctx).await {
            Ok(true) => Ok(()),
            Ok(false) => Err((
                FailedPhase::Confirm,
                Error::StepNotEffective {
                    step: info.title.clone(),
                    node: info.node.clone(),
                },
            )),
            Err(e) => Err((FailedPhase::Confirm, e)),
        },
    };
    match attempt {
        Ok(()) => {
            let result = serde_json::json!({
                "run": run_id,
                "step": info.id,
                "node": node,
                "changed": true,
            });
            let jid = job_id.clone();
            journal
                .with(move |inv| inv.finish_job(&jid, Ok(&result)))
                .await?;
            Ok(StepRun::Changed { job_id })
        }
        Err((phase, e)) => {
            failed(phase, &e);
            let undo = match step.action.undo(ctx).await {
                Ok(Undone::Reverted) => UndoOutcome::Done,
                Ok(Undone::NothingToUndo) => UndoOutcome::NothingToUndo,
                Err(u) => {
                    warn!(step = %info.id, error = %u, "undoing a failed step failed");
                    UndoOutcome::Failed(u.to_string())
                }
            };
            let f = failure(phase, &e, undo);
            let (jid, title) = (job_id.clone(), info.title.clone());
            let message = join_output(&f.message, &f.output);
            journal
                .with(move |inv| {
                    inv.finish_job(&jid, Err(&message))?;
                    inv.add_event(
                        Severity::Error,
                        &node,
                        &format!("Setup step '{title}' failed: {message}"),
                    )
                })
                .await?;
            Ok(StepRun::Failed {
                job_id: Some(job_id),
                failure: Box::new(f),
            })
        }
    }
}

/// A failure's message with the output it quotes, for the inventory's one-line records.
fn join_output(message: &str, output: &[String]) -> String {
    if output.is_empty() {
        message.to_string()
    } else {
        format!("{message}: {}", output.join(" / "))
    }
}

/// The inventory, written from blocking threads: SQLite may wait up to its busy timeout for
/// another process's write, which must not stall the async workers.
struct Journal {
    inv: Arc<Mutex<Inventory>>,
}

impl Journal {
    async fn open(path: &Path) -> Result<Journal> {
        let path = path.to_path_buf();
        let inv = blocking(move || Inventory::open(&path)).await?;
        Ok(Journal {
            inv: Arc::new(Mutex::new(inv)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inventory) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inv = Arc::clone(&self.inv);
        blocking(move || f(&inv.lock().unwrap_or_else(|e| e.into_inner()))).await
    }

    /// The latest run of `plan` if it did not succeed, with the steps it changed.
    async fn previous_unfinished_run(&self, plan: &Plan) -> Result<Option<PreviousRun>> {
        let name = plan.name().to_string();
        let order: Vec<String> = plan.steps().map(|s| s.id.clone()).collect();
        self.with(move |inv| {
            let jobs = inv.jobs(JOB_HISTORY)?;
            let Some(last) = jobs
                .iter()
                .find(|j| j.kind == RUN_JOB_KIND && j.target == name)
            else {
                return Ok(None);
            };
            if last.state == JobState::Succeeded {
                return Ok(None);
            }
            let by_run: Vec<&str> = jobs
                .iter()
                .filter(|j| {
                    j.kind == STEP_JOB_KIND
                        && j.state == JobState::Succeeded
                        && j.result
                            .as_ref()
                            .and_then(|r| r["run"].as_str())
                            .is_some_and(|r| r == last.id)
                })
                .map(|j| j.target.as_str())
                .collect();
            Ok(Some(PreviousRun {
                run_id: last.id.clone(),
                state: last.state,
                error: last.error.clone(),
                changed: order
                    .into_iter()
                    .filter(|id| by_run.contains(&id.as_str()))
                    .collect(),
            }))
        })
        .await
    }

    async fn finish_run(&self, report: &ApplyReport) -> Result<()> {
        let run_id = report.run_id.clone();
        let plan = report.plan.clone();
        let summary = report.summary();
        let outcome = match (report.outcome, &report.failure) {
            (ApplyOutcome::Completed, _) => {
                let ids = |s| report.ids(s).into_iter().map(String::from).collect();
                let changed: Vec<String> = ids(StepStatus::Changed);
                let already_done: Vec<String> = ids(StepStatus::AlreadyDone);
                Ok(serde_json::json!({
                    "plan": report.plan,
                    "completed": report.steps.iter().map(|s| &s.id).collect::<Vec<_>>(),
                    "changed": changed,
                    "already_done": already_done,
                    "resumed_from": report.resumed_from.as_ref().map(|p| &p.run_id),
                }))
            }
            (ApplyOutcome::Failed, Some(f)) => Err(format!(
                "step {} of {} ({}) on {} failed: {}; {}",
                f.number,
                report.steps.len(),
                f.step,
                f.node,
                join_output(&f.message, &f.output),
                f.undo.text()
            )),
            (ApplyOutcome::Failed, None) => Err("failed".to_string()),
            (ApplyOutcome::Cancelled, _) => Err(format!(
                "cancelled after {} of {} steps; run the setup again to continue",
                report.changed + report.already_done,
                report.steps.len()
            )),
        };
        let severity = match report.outcome {
            ApplyOutcome::Completed => Severity::Info,
            ApplyOutcome::Cancelled => Severity::Warning,
            // The failed step already has its own error event.
            ApplyOutcome::Failed => Severity::Warning,
        };
        self.with(move |inv| {
            match &outcome {
                Ok(v) => inv.finish_job(&run_id, Ok(v))?,
                Err(e) => inv.finish_job(&run_id, Err(e))?,
            }
            inv.add_event(severity, "setup", &format!("Setup '{plan}': {summary}"))
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Error::io(
            "recording the setup in the inventory",
            std::io::Error::other(e),
        )
    })?
}

/// One step's verification.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct StepVerdict {
    pub id: String,
    pub node: String,
    pub title: String,
    pub passed: bool,
    /// Why it failed.
    pub reason: Option<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub plan: String,
    pub steps: Vec<StepVerdict>,
    pub passed: usize,
    pub failed: usize,
}

impl VerifyReport {
    pub fn all_passed(&self) -> bool {
        self.failed == 0
    }

    pub fn failures(&self) -> impl Iterator<Item = &StepVerdict> + '_ {
        self.steps.iter().filter(|s| !s.passed)
    }

    /// One line per step: `ok` or `FAIL` with the reason.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.steps.iter().enumerate() {
            match &s.reason {
                None => out.push_str(&format!(
                    "{:>3}. ok    {} [on {}]\n",
                    i + 1,
                    s.title,
                    s.node
                )),
                Some(r) => out.push_str(&format!(
                    "{:>3}. FAIL  {} [on {}]: {r}\n",
                    i + 1,
                    s.title,
                    s.node
                )),
            }
        }
        out.push_str(&format!(
            "{} of {} checks passed.\n",
            self.passed,
            self.steps.len()
        ));
        out
    }
}

/// Verify every step's end state, each independently of the others and of what `apply`
/// recorded. A step whose verification cannot run (its node does not answer) fails with that
/// as its reason. Changes nothing.
pub async fn verify(plan: &Plan, ctx: &StepCtx) -> VerifyReport {
    let mut steps = Vec::with_capacity(plan.len());
    for step in plan.planned() {
        let reason = match step.action.verify(ctx).await {
            Ok(Verdict::Pass) => None,
            Ok(Verdict::Fail(r)) => Some(r),
            Err(e) => Some(format!("could not verify: {e}")),
        };
        steps.push(StepVerdict {
            id: step.info.id.clone(),
            node: step.info.node.clone(),
            title: step.info.title.clone(),
            passed: reason.is_none(),
            reason,
        });
    }
    let passed = steps.iter().filter(|s| s.passed).count();
    VerifyReport {
        plan: plan.name().to_string(),
        failed: steps.len() - passed,
        passed,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::PathBuf;

    use super::*;
    use crate::inventory::Job;
    use crate::progress::NoProgress;
    use crate::provision::plan::test_steps::*;
    use crate::provision::plan::{LocalRunner, SshRunner};

    /// Records what it is told (generic calls as text, typed events as they are); cancels the
    /// run once `cancel_after` steps are done.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
        events: Mutex<Vec<ProgressEvent>>,
        cancel_after: Option<(u64, ApplyCancel)>,
    }

    impl Recorder {
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
        fn events(&self) -> Vec<ProgressEvent> {
            self.events.lock().unwrap().clone()
        }
        /// Each event as (kind, step number) for the step events, in order.
        fn step_kinds(&self) -> Vec<(&'static str, usize)> {
            self.events()
                .iter()
                .filter_map(|e| match e {
                    ProgressEvent::StepStarted { step } => Some(("started", step.number)),
                    ProgressEvent::StepDone { step, .. } => Some(("done", step.number)),
                    ProgressEvent::StepAlreadyDone { step, .. } => {
                        Some(("already_done", step.number))
                    }
                    ProgressEvent::StepFailed { step, .. } => Some(("failed", step.number)),
                    ProgressEvent::StepUndone { step, .. } => Some(("undone", step.number)),
                    ProgressEvent::Cancelled { next, .. } => Some(("cancelled", next.number)),
                    _ => None,
                })
                .collect()
        }
        fn push(&self, l: String) {
            self.calls.lock().unwrap().push(l);
        }
    }

    impl Progress for Recorder {
        fn begin(&self, phase: &str, total: Option<u64>) {
            self.push(format!("begin {phase} {total:?}"));
        }
        fn update(&self, done: u64, total: Option<u64>) {
            self.push(format!("update {done}/{total:?}"));
            if let Some((n, c)) = &self.cancel_after {
                if done == *n {
                    c.cancel();
                }
            }
        }
        fn message(&self, line: &str) {
            self.push(line.to_string());
        }
        fn finish(&self) {
            self.push("finish".into());
        }
        fn event(&self, e: &ProgressEvent) {
            self.events.lock().unwrap().push(e.clone());
        }
    }

    struct Fixture {
        dir: tempfile::TempDir,
        db: PathBuf,
        ctx: StepCtx,
    }

    impl Fixture {
        /// A temp folder with `input.txt` (the given text) and `preexisting.conf` already in
        /// the state its step wants.
        fn new(input: &str) -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("inv/twofold.db");
            std::fs::write(dir.path().join("input.txt"), input).unwrap();
            let pre = dir.path().join("preexisting.conf");
            std::fs::write(&pre, "keep\n").unwrap();
            std::fs::set_permissions(&pre, std::fs::Permissions::from_mode(0o600)).unwrap();
            Fixture {
                dir,
                db,
                ctx: StepCtx::new(LocalRunner::new()),
            }
        }

        fn p(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }

        fn s(&self, rel: &str) -> String {
            self.p(rel).display().to_string()
        }

        /// 1 folder, 2 file in it, 3 generated from input.txt, 4 already there, 5 file.
        fn plan(&self) -> Plan {
            let mut plan = Plan::new("setup");
            plan.push(DirStep {
                node: "stor1".into(),
                path: self.s("etc"),
                mode: 0o755,
            })
            .unwrap();
            plan.push(FileStep::new(
                "stor1",
                &self.p("etc/a.conf"),
                "a = 1\n",
                0o644,
            ))
            .unwrap();
            plan.push(RenderStep {
                node: "stor1".into(),
                input: self.s("input.txt"),
                output: self.s("etc/generated.conf"),
            })
            .unwrap();
            plan.push(FileStep::new(
                "stor2",
                &self.p("preexisting.conf"),
                "keep\n",
                0o600,
            ))
            .unwrap();
            plan.push(FileStep::new(
                "stor2",
                &self.p("etc/b.conf"),
                "b = 2\n",
                0o640,
            ))
            .unwrap();
            plan
        }

        fn ids(&self) -> Vec<String> {
            self.plan().steps().map(|s| s.id.clone()).collect()
        }

        async fn apply(&self, progress: &dyn Progress, cancel: &ApplyCancel) -> ApplyReport {
            apply(&self.plan(), &self.ctx, &self.db, progress, cancel)
                .await
                .unwrap()
        }

        fn jobs(&self, kind: &str) -> Vec<Job> {
            let mut jobs: Vec<Job> = Inventory::open(&self.db)
                .unwrap()
                .jobs(1000)
                .unwrap()
                .into_iter()
                .filter(|j| j.kind == kind)
                .collect();
            jobs.reverse();
            jobs
        }
    }

    fn statuses(r: &ApplyReport) -> Vec<StepStatus> {
        r.steps.iter().map(|s| s.status).collect()
    }

    use StepStatus::{AlreadyDone, Changed, Failed, NotRun};

    #[tokio::test]
    async fn applies_all_then_applying_again_changes_nothing() {
        let f = Fixture::new("ok\nsize = 3\n");
        let ids = f.ids();
        let progress = Recorder::default();
        let r = f.apply(&progress, &ApplyCancel::new()).await;
        assert_eq!(r.outcome, ApplyOutcome::Completed, "{}", r.summary());
        assert_eq!(
            statuses(&r),
            [Changed, Changed, Changed, AlreadyDone, Changed]
        );
        assert_eq!((r.changed, r.already_done), (4, 1));
        assert!(r.resumed_from.is_none() && r.failure.is_none());
        assert_eq!(
            std::fs::read_to_string(f.p("etc/generated.conf")).unwrap(),
            "# generated\nok\nsize = 3\n"
        );
        assert_eq!(
            std::fs::read_to_string(f.p("etc/a.conf")).unwrap(),
            "a = 1\n"
        );
        let mode = std::fs::metadata(f.p("etc/b.conf")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(
            r.summary(),
            "Done: 4 step(s) changed, 1 already done (5 in all)."
        );

        let calls = progress.calls();
        assert_eq!(calls[0], "begin Applying 'setup' Some(5)");
        assert!(calls.contains(&"update 5/Some(5)".to_string()));
        assert!(calls.contains(&"finish".to_string()));
        // No line for people was sent as a plain message: everything came as typed events.
        assert_eq!(calls.len(), 1 + 5 + 1, "{calls:?}");
        assert_eq!(
            progress.step_kinds(),
            [
                ("started", 1),
                ("done", 1),
                ("started", 2),
                ("done", 2),
                ("started", 3),
                ("done", 3),
                ("started", 4),
                ("already_done", 4),
                ("started", 5),
                ("done", 5),
            ]
        );
        let events = progress.events();
        assert_eq!(
            events[0],
            ProgressEvent::RunStarted {
                plan: "setup".into(),
                total: 5,
                resumed_from: None,
                resumed_changed: 0,
            }
        );
        let Some(ProgressEvent::StepDone { step, .. }) = events.get(4) else {
            panic!("{events:?}");
        };
        assert_eq!(
            step,
            &StepRef {
                id: ids[1].clone(),
                node: "stor1".into(),
                title: format!("Write {} on stor1", f.s("etc/a.conf")),
                number: 2,
                total: 5,
            }
        );
        assert!(matches!(
            events.last(),
            Some(ProgressEvent::RunFinished {
                outcome: ApplyOutcome::Completed,
                total: 5,
                changed: 4,
                already_done: 1,
                summary,
            }) if summary == &r.summary()
        ));

        // Jobs: one run, with what it did; one job per step that changed something.
        let runs = f.jobs(RUN_JOB_KIND);
        assert_eq!(runs.len(), 1);
        assert_eq!(
            (runs[0].id.as_str(), runs[0].state),
            (r.run_id.as_str(), JobState::Succeeded)
        );
        assert_eq!(runs[0].target, "setup");
        let result = runs[0].result.as_ref().unwrap();
        assert_eq!(result["completed"], serde_json::json!(ids));
        assert_eq!(result["already_done"], serde_json::json!([ids[3]]));
        assert_eq!(result["changed"].as_array().unwrap().len(), 4);
        let steps = f.jobs(STEP_JOB_KIND);
        assert_eq!(
            steps
                .iter()
                .map(|j| (j.target.as_str(), j.state))
                .collect::<Vec<_>>(),
            [&ids[0], &ids[1], &ids[2], &ids[4]]
                .iter()
                .map(|id| (id.as_str(), JobState::Succeeded))
                .collect::<Vec<_>>()
        );
        assert_eq!(steps[0].result.as_ref().unwrap()["run"], r.run_id.as_str());
        assert_eq!(r.steps[0].job_id.as_deref(), Some(steps[0].id.as_str()));

        // Again: nothing to do, nothing changed, no step job; the run is still recorded.
        let a_conf = std::fs::metadata(f.p("etc/a.conf")).unwrap();
        let again = f.apply(&NoProgress, &ApplyCancel::new()).await;
        assert!(again.is_noop(), "{}", again.summary());
        assert_eq!(statuses(&again), [AlreadyDone; 5]);
        assert_eq!((again.changed, again.already_done), (0, 5));
        assert!(again.resumed_from.is_none());
        assert_eq!(
            again.summary(),
            "Nothing to change: all 5 steps were already done."
        );
        assert_eq!(f.jobs(STEP_JOB_KIND).len(), 4);
        let runs = f.jobs(RUN_JOB_KIND);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[1].state, JobState::Succeeded);
        assert_eq!(
            runs[1].result.as_ref().unwrap()["changed"],
            serde_json::json!([])
        );
        let a_conf2 = std::fs::metadata(f.p("etc/a.conf")).unwrap();
        assert_eq!(
            (a_conf.ino(), a_conf.mtime_nsec()),
            (a_conf2.ino(), a_conf2.mtime_nsec())
        );

        let v = verify(&f.plan(), &f.ctx).await;
        assert!(v.all_passed(), "{}", v.render_text());
        assert_eq!(v.passed, 5);
    }

    #[tokio::test]
    async fn a_failed_step_is_undone_and_the_next_run_resumes_after_the_done_steps() {
        let f = Fixture::new("bad\n");
        let ids = f.ids();
        let progress = Recorder::default();
        let r = f.apply(&progress, &ApplyCancel::new()).await;
        assert_eq!(r.outcome, ApplyOutcome::Failed);
        assert_eq!(statuses(&r), [Changed, Changed, Failed, NotRun, NotRun]);
        let fail = r.failure.clone().unwrap();
        assert_eq!(
            (fail.step.as_str(), fail.number, fail.phase),
            (ids[2].as_str(), 3, FailedPhase::Apply)
        );
        assert_eq!(fail.node, "stor1");
        assert_eq!(fail.code, "remote_command");
        assert!(
            fail.message.ends_with("failed (exit status 3)"),
            "{}",
            fail.message
        );
        assert!(
            fail.output[0].contains("input.txt is not valid"),
            "{:?}",
            fail.output
        );
        assert_eq!(fail.undo, UndoOutcome::Done);
        assert!(
            fail.what_to_do
                .starts_with(&format!("Correct {}", f.s("input.txt")))
                && fail.what_to_do.contains("checked and skipped"),
            "{}",
            fail.what_to_do
        );
        // The apply wrote a header before it failed: undo removed it. Later steps never ran.
        assert!(!f.p("etc/generated.conf").exists());
        assert!(!f.p("etc/b.conf").exists());
        assert_eq!(
            progress.step_kinds()[4..],
            [("started", 3), ("failed", 3), ("undone", 3)]
        );
        let events = progress.events();
        let failed = events
            .iter()
            .find_map(|e| match e {
                ProgressEvent::StepFailed {
                    step,
                    phase,
                    code,
                    message,
                    output,
                } => Some((step, phase, code, message, output)),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            (
                failed.0.id.as_str(),
                failed.0.node.as_str(),
                failed.1,
                failed.2.as_str()
            ),
            (
                ids[2].as_str(),
                "stor1",
                &FailedPhase::Apply,
                "remote_command"
            )
        );
        // What the command printed is quoted once, apart from the message; the node is named
        // once (the title says it).
        assert_eq!(
            failed.4,
            &[format!(
                "{} is not valid: its first line must start with ok",
                f.s("input.txt")
            )]
        );
        assert!(!failed.3.contains("is not valid"), "{}", failed.3);
        assert_eq!(failed.3.matches("stor1").count(), 1, "{}", failed.3);
        assert!(events.contains(&ProgressEvent::StepUndone {
            step: failed.0.clone(),
            undo: UndoOutcome::Done,
        }));

        let steps = f.jobs(STEP_JOB_KIND);
        assert_eq!(steps.len(), 3);
        assert_eq!(
            (steps[2].target.as_str(), steps[2].state),
            (ids[2].as_str(), JobState::Failed)
        );
        assert!(steps[2].error.as_ref().unwrap().contains("is not valid"));
        assert_eq!(r.steps[2].job_id.as_deref(), Some(steps[2].id.as_str()));
        let runs = f.jobs(RUN_JOB_KIND);
        assert_eq!(runs[0].state, JobState::Failed);
        assert!(
            runs[0].error.as_ref().unwrap().starts_with("step 3 of 5"),
            "{:?}",
            runs[0].error
        );
        let events = Inventory::open(&f.db).unwrap().events(10).unwrap();
        assert!(events
            .iter()
            .any(|e| e.severity == Severity::Error && e.source == "stor1"));

        let err = r.clone().into_result().unwrap_err();
        assert_eq!(err.code(), "step_failed");
        assert!(
            err.to_string().contains("Generate") && err.to_string().contains("Correct"),
            "{err}"
        );

        // Fix the input: the next run continues with step 3 and does not redo steps 1 and 2.
        std::fs::write(f.p("input.txt"), "ok\n").unwrap();
        let before = std::fs::metadata(f.p("etc/a.conf")).unwrap();
        let r2 = f.apply(&NoProgress, &ApplyCancel::new()).await;
        assert_eq!(r2.outcome, ApplyOutcome::Completed, "{}", r2.summary());
        assert_eq!(
            statuses(&r2),
            [AlreadyDone, AlreadyDone, Changed, AlreadyDone, Changed]
        );
        let prev = r2.resumed_from.as_ref().unwrap();
        assert_eq!(prev.run_id, r.run_id);
        assert_eq!(prev.state, JobState::Failed);
        assert_eq!(prev.changed, [ids[0].clone(), ids[1].clone()]);
        assert_eq!(
            r2.steps
                .iter()
                .map(|s| s.done_by_previous_run)
                .collect::<Vec<_>>(),
            [true, true, false, false, false]
        );
        let after = std::fs::metadata(f.p("etc/a.conf")).unwrap();
        assert_eq!(
            (before.ino(), before.mtime_nsec()),
            (after.ino(), after.mtime_nsec())
        );
        assert_eq!(f.jobs(STEP_JOB_KIND).len(), 5);
        assert!(
            r2.summary().contains("continuing an earlier run"),
            "{}",
            r2.summary()
        );
        assert_eq!(
            std::fs::read_to_string(f.p("etc/generated.conf")).unwrap(),
            "# generated\nok\n"
        );

        // And once complete, there is nothing left to resume.
        let r3 = f.apply(&NoProgress, &ApplyCancel::new()).await;
        assert!(r3.is_noop() && r3.resumed_from.is_none());
    }

    #[tokio::test]
    async fn cancel_stops_between_steps_and_the_next_run_continues() {
        let f = Fixture::new("ok\n");
        let ids = f.ids();
        let cancel = ApplyCancel::new();
        let progress = Recorder {
            cancel_after: Some((2, cancel.clone())),
            ..Default::default()
        };
        let r = f.apply(&progress, &cancel).await;
        assert_eq!(r.outcome, ApplyOutcome::Cancelled);
        assert_eq!(statuses(&r), [Changed, Changed, NotRun, NotRun, NotRun]);
        assert!(r.failure.is_none());
        assert!(f.p("etc/a.conf").exists() && !f.p("etc/generated.conf").exists());
        assert_eq!(
            progress.step_kinds()[4..],
            [("cancelled", 3)],
            "{:?}",
            progress.events()
        );
        assert!(progress.events().iter().any(|e| matches!(
            e,
            ProgressEvent::Cancelled { next, finished: 2 } if next.id == ids[2]
        )));
        let runs = f.jobs(RUN_JOB_KIND);
        assert_eq!(runs[0].state, JobState::Failed);
        assert!(runs[0]
            .error
            .as_ref()
            .unwrap()
            .starts_with("cancelled after 2 of 5 steps"));
        assert_eq!(r.clone().into_result().unwrap_err().code(), "cancelled");

        let r2 = f.apply(&NoProgress, &ApplyCancel::new()).await;
        assert_eq!(r2.outcome, ApplyOutcome::Completed);
        assert_eq!(
            statuses(&r2),
            [AlreadyDone, AlreadyDone, Changed, AlreadyDone, Changed]
        );
        assert_eq!(
            r2.resumed_from.unwrap().changed,
            [ids[0].clone(), ids[1].clone()]
        );
        assert_eq!(f.jobs(STEP_JOB_KIND).len(), 4);
    }

    #[tokio::test]
    async fn verify_finds_changes_made_behind_the_plans_back() {
        let f = Fixture::new("ok\n");
        let r = f.apply(&NoProgress, &ApplyCancel::new()).await;
        assert_eq!(r.outcome, ApplyOutcome::Completed);
        let plan = f.plan();
        assert!(verify(&plan, &f.ctx).await.all_passed());

        std::fs::remove_file(f.p("etc/a.conf")).unwrap();
        std::fs::set_permissions(f.p("etc"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(f.p("etc/b.conf"), "b = 3\n").unwrap();
        let v = verify(&plan, &f.ctx).await;
        assert_eq!((v.passed, v.failed), (2, 3));
        let reasons: Vec<(usize, String)> = v
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.reason.clone().map(|r| (i + 1, r)))
            .collect();
        assert_eq!(
            reasons,
            [
                (1, format!("{} has mode 700, expected 755", f.s("etc"))),
                (2, format!("{} is missing on stor1", f.s("etc/a.conf"))),
                (
                    5,
                    format!("{} does not have the expected content", f.s("etc/b.conf"))
                ),
            ]
        );
        assert!(
            v.render_text().contains("FAIL  Write"),
            "{}",
            v.render_text()
        );
        assert_eq!(v.failures().count(), 3);
        // Verifying changes nothing.
        assert!(!f.p("etc/a.conf").exists());
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["steps"][1]["passed"], false);

        // Applying again repairs exactly the drifted steps.
        let r2 = f.apply(&NoProgress, &ApplyCancel::new()).await;
        assert_eq!(
            statuses(&r2),
            [Changed, Changed, AlreadyDone, AlreadyDone, Changed]
        );
        assert!(verify(&plan, &f.ctx).await.all_passed());
    }

    #[tokio::test]
    async fn a_step_without_effect_fails_on_confirmation() {
        let f = Fixture::new("ok\n");
        let mut plan = Plan::new("broken");
        plan.push(IneffectiveStep {
            node: "host1".into(),
            path: f.s("never"),
        })
        .unwrap();
        let r = apply(&plan, &f.ctx, &f.db, &NoProgress, &ApplyCancel::new())
            .await
            .unwrap();
        let fail = r.failure.clone().unwrap();
        assert_eq!(
            (fail.phase, fail.code.as_str()),
            (FailedPhase::Confirm, "step_not_effective")
        );
        // The step has no undo: it is not said to be undone.
        assert_eq!(fail.undo, UndoOutcome::NothingToUndo);
        assert!(
            r.summary().contains("; nothing to undo."),
            "{}",
            r.summary()
        );
        assert_eq!(f.jobs(STEP_JOB_KIND)[0].state, JobState::Failed);
    }

    #[tokio::test]
    async fn a_node_that_cannot_be_checked_stops_the_run_before_any_change() {
        let f = Fixture::new("ok\n");
        let ctx = StepCtx::new(SshRunner::default());
        let r = apply(&f.plan(), &ctx, &f.db, &NoProgress, &ApplyCancel::new())
            .await
            .unwrap();
        assert_eq!(r.outcome, ApplyOutcome::Failed);
        assert_eq!(statuses(&r)[0], Failed);
        let fail = r.failure.unwrap();
        assert_eq!(
            (fail.phase, fail.undo),
            (FailedPhase::Check, UndoOutcome::NotNeeded)
        );
        assert_eq!(fail.code, "invalid_input");
        assert!(f.jobs(STEP_JOB_KIND).is_empty());
        assert!(!f.p("etc").exists());

        // Cancelled before the first step: nothing runs at all.
        let cancel = ApplyCancel::new();
        cancel.cancel();
        let r = f.apply(&NoProgress, &cancel).await;
        assert_eq!(
            (r.outcome, statuses(&r)),
            (ApplyOutcome::Cancelled, vec![NotRun; 5])
        );
        assert!(!f.p("etc").exists());
    }
}

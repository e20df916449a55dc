// Folding the progress events of a long command into what the window shows. The apply step turns
// the engine's typed step events (src/progress.rs `ProgressEvent`, generated into
// ../bindings/ProgressEvent.ts) into one state per plan step; the checks and the lab only need a
// phase, a fraction and the last lines. Pure, so the event order the engine uses
// (src/provision/apply.rs `apply`) is pinned down by tests:
//
//   run_started · per step: step_started, then step_done | step_already_done | step_failed +
//   step_undone (the run stops there) · or cancelled (before a step) · run_finished.
//
// Nothing here reads the text of a line: lines are only shown. The final report is the authority
// on every step's outcome (`withReport`).

import type { ApplyReport, ProgressEvent, StepInfo, StepRef, UndoOutcome } from "./types";

export type StepRunState = "pending" | "running" | "done" | "already_done" | "failed";

export const STATE_LABELS: Record<StepRunState, string> = {
  pending: "Waiting",
  running: "Running",
  done: "Done",
  already_done: "Already done",
  failed: "Failed",
};

/** Lines of log kept in memory; a run has a few per step, so this is many runs' worth. */
export const LOG_LIMIT = 500;

/** One line of the log, and whether it reports a failure (shown as such). */
export interface LogLine {
  text: string;
  bad: boolean;
}

export interface ApplyProgress {
  /** Plan step ids, in plan order. */
  ids: string[];
  states: StepRunState[];
  /** Steps finished (any outcome). */
  finished: number;
  /** Between run_started and run_finished. */
  running: boolean;
  /** The last LOG_LIMIT lines. */
  log: LogLine[];
  /** Lines ever received, so a view can tell which lines are new once old ones were dropped. */
  logCount: number;
}

export function startApply(steps: Pick<StepInfo, "id">[]): ApplyProgress {
  return { ids: steps.map((s) => s.id), states: steps.map(() => "pending"), finished: 0, running: false, log: [], logCount: 0 };
}

/** Make room for `total` steps: a plan that changed since it was shown may have more. */
function sized(p: ApplyProgress, total: number): ApplyProgress {
  if (p.ids.length >= total) return p;
  const ids = [...p.ids];
  const states = [...p.states];
  for (let i = p.ids.length; i < total; i++) {
    ids.push(`step-${i + 1}`);
    states.push("pending");
  }
  return { ...p, ids, states };
}

function logged(p: ApplyProgress, lines: LogLine[]): ApplyProgress {
  if (lines.length === 0) return p;
  const next = [...p.log, ...lines];
  return { ...p, log: next.length > LOG_LIMIT ? next.slice(next.length - LOG_LIMIT) : next, logCount: p.logCount + lines.length };
}

/** Set the state of the step an event names, by its position (and its id, when the plan shown
 *  here did not know it). */
function withStep(p: ApplyProgress, step: StepRef, state: StepRunState): ApplyProgress {
  const q = sized(p, step.total);
  const i = step.number - 1;
  if (i < 0 || i >= q.states.length) return q;
  const ids = [...q.ids];
  const states = [...q.states];
  ids[i] = step.id;
  states[i] = state;
  const finished = states.filter((s) => s === "done" || s === "already_done" || s === "failed").length;
  return { ...q, ids, states, finished };
}

export function undoText(u: UndoOutcome): string {
  switch (u.result) {
    case "not_needed":
      return "Nothing was changed, so nothing to undo.";
    case "done":
      return "Undone: what the step had changed was taken back.";
    case "nothing_to_undo":
      return "Nothing to undo.";
    case "failed":
      return `Undoing it failed too: ${u.error}`;
  }
}

const at = (s: StepRef) => `[${s.number}/${s.total}] ${s.title}`;

export function foldApply(p: ApplyProgress, e: ProgressEvent): ApplyProgress {
  switch (e.kind) {
    case "run_started": {
      // A new run (or a resumed one) reports every step again, from the first.
      const q = sized(p, e.total);
      const lines = e.resumed_from ? [{ text: `Continuing an earlier run that did not finish (${e.resumed_changed} step(s) done by it).`, bad: false }] : [];
      return logged({ ...q, states: q.states.map((): StepRunState => "pending"), finished: 0, running: true }, lines);
    }
    case "step_started":
      return withStep(p, e.step, "running");
    case "step_done":
      return logged(withStep(p, e.step, "done"), [{ text: `${at(e.step)}: done`, bad: false }]);
    case "step_already_done":
      return logged(withStep(p, e.step, "already_done"), [
        { text: `${at(e.step)}: already done${e.by_previous_run ? " (by the earlier run)" : ""}`, bad: false },
      ]);
    case "step_failed":
      return logged(withStep(p, e.step, "failed"), [
        { text: `${at(e.step)}: failed: ${e.message}`, bad: true },
        ...e.output.map((l) => ({ text: `    | ${l}`, bad: true })),
      ]);
    case "step_undone":
      return logged(p, [{ text: `    ${undoText(e.undo)}`, bad: e.undo.result === "failed" }]);
    case "cancelled": {
      const states = p.states.map((s, i): StepRunState => (i >= e.next.number - 1 && s === "running" ? "pending" : s));
      return logged({ ...p, states }, [{ text: `Cancelled before step ${e.next.number} of ${e.next.total}: ${e.next.title}`, bad: false }]);
    }
    case "run_finished":
      return logged({ ...p, running: false, states: p.states.map((s) => (s === "running" ? "pending" : s)) }, [
        { text: e.summary, bad: e.outcome === "failed" },
      ]);
    case "message":
      return logged(p, [{ text: e.line, bad: false }]);
    case "begin":
    case "update":
    case "transferred":
    case "finish":
      // The checks before the run send these; the steps' own events say where the run is.
      return p;
  }
}

const FROM_STATUS: Record<ApplyReport["steps"][number]["status"], StepRunState> = {
  changed: "done",
  already_done: "already_done",
  failed: "failed",
  not_run: "pending",
};

/** The report has the last word on every step (events may have been missed, and it lists every
 *  step of the plan, in order, even when the plan was not known here). */
export function withReport(p: ApplyProgress, report: ApplyReport): ApplyProgress {
  if (report.steps.length === 0) return { ...p, running: false };
  const ids = report.steps.map((s) => s.id);
  const states = report.steps.map((s) => FROM_STATUS[s.status] ?? "pending");
  const finished = states.filter((s) => s !== "pending" && s !== "running").length;
  return { ...p, ids, states, finished, running: false };
}

/** 0..1, for the progress bar. */
export function fraction(p: ApplyProgress): number {
  return p.ids.length === 0 ? 0 : Math.min(1, p.finished / p.ids.length);
}

export function counts(p: ApplyProgress): Record<StepRunState, number> {
  const c: Record<StepRunState, number> = { pending: 0, running: 0, done: 0, already_done: 0, failed: 0 };
  for (const s of p.states) c[s]++;
  return c;
}

/** One or two sentences about a finished run, for people. */
export function applySummary(r: ApplyReport): string {
  const total = r.steps.length;
  const resumed = r.resumed_from ? " (continuing an earlier run that did not finish)" : "";
  switch (r.outcome) {
    case "completed":
      return r.changed === 0
        ? `Nothing to change: all ${total} steps were already done.`
        : `Done${resumed}: ${r.changed} ${r.changed === 1 ? "step" : "steps"} changed something, ${r.already_done} ${r.already_done === 1 ? "was" : "were"} already done.`;
    case "failed":
      return r.failure
        ? `Step ${r.failure.number} of ${total} failed${resumed}: ${r.failure.title}. Fix what it says, then try again: steps already done are skipped.`
        : `The setup stopped on an error${resumed}. Try again: steps already done are skipped.`;
    case "cancelled":
      return `Cancelled after ${r.changed + r.already_done} of ${total} steps; nothing is left half-done. Resume to go on from there.`;
  }
}

/** A long command other than apply (the checks, the lab): a phase, how far, the last lines. */
export interface TaskProgress {
  phase: string;
  done: number;
  total: number | null;
  lines: string[];
  running: boolean;
}

export const TASK_LINES = 200;

export function startTask(phase: string): TaskProgress {
  return { phase, done: 0, total: null, lines: [], running: true };
}

export function foldTask(p: TaskProgress, e: ProgressEvent): TaskProgress {
  switch (e.kind) {
    case "begin":
      return { ...p, phase: e.phase, done: 0, total: e.total, running: true };
    case "update":
      return { ...p, done: e.done, total: e.total ?? p.total };
    case "message": {
      const lines = [...p.lines, e.line];
      return { ...p, lines: lines.length > TASK_LINES ? lines.slice(lines.length - TASK_LINES) : lines };
    }
    case "finish":
      // One command may run several phases; the command's answer ends it, not this.
      return { ...p, done: p.total ?? p.done };
    default:
      // Step events belong to a run of the setup's plan, which these commands do not make.
      return p;
  }
}

/** 0..1, or null when the total is unknown (the bar then shows activity without a value). */
export function taskFraction(p: TaskProgress): number | null {
  if (p.total === null || p.total <= 0) return null;
  return Math.max(0, Math.min(1, p.done / p.total));
}

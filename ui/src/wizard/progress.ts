// Folding the progress events of a long command into what the window shows. The apply step turns
// them into one state per plan step; the checks and the lab only need a phase, a fraction and the
// last lines. Pure, so the event order the engine uses (src/provision/apply.rs `apply`) is pinned
// down by tests:
//
//   begin(total = steps) · then per step: message "[n/total] title: done" (or ": already done",
//   or ": FAILED: why" plus a line saying what to do) and update(done = n) · finish · a summary.
//
// Step `done` (0-based) is the one running after an update; a cancel is noticed between two steps
// ("Cancelled before step n of total: title"), and the final report is the authority on every
// step's outcome (`withReport`).

import type { ApplyReport, ProgressEvent, StepInfo } from "./types";

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

export interface ApplyProgress {
  /** Plan step ids, in plan order. */
  ids: string[];
  states: StepRunState[];
  /** Steps finished (any outcome), from the last update or the report. */
  finished: number;
  /** Between begin and finish. */
  running: boolean;
  /** The last LOG_LIMIT lines. */
  log: string[];
  /** Lines ever received, so a view can tell which lines are new once old ones were dropped. */
  logCount: number;
}

export function startApply(steps: Pick<StepInfo, "id">[]): ApplyProgress {
  return { ids: steps.map((s) => s.id), states: steps.map(() => "pending"), finished: 0, running: false, log: [], logCount: 0 };
}

export interface StepLine {
  /** 1-based, as printed. */
  number: number;
  total: number;
  title: string;
  result: "done" | "already_done" | "failed" | null;
  /** The failure's message, for ": FAILED: …". */
  detail: string | null;
}

/** Read "[3/28] Make the brick folder on stor1: done" (or ": already done", ": FAILED: …"). */
export function parseStepLine(line: string): StepLine | null {
  const m = /^\[(\d+)\/(\d+)\] (.*)$/s.exec(line);
  if (!m) return null;
  const number = Number(m[1]);
  const total = Number(m[2]);
  if (number < 1 || number > total) return null;
  const rest = m[3]!;
  // FAILED first: its message may itself end in ": done".
  const failed = rest.indexOf(": FAILED: ");
  if (failed >= 0) {
    return { number, total, title: rest.slice(0, failed), result: "failed", detail: rest.slice(failed + ": FAILED: ".length) };
  }
  if (rest.endsWith(": already done")) {
    return { number, total, title: rest.slice(0, -": already done".length), result: "already_done", detail: null };
  }
  if (rest.endsWith(": done")) return { number, total, title: rest.slice(0, -": done".length), result: "done", detail: null };
  return { number, total, title: rest, result: null, detail: null };
}

/** "Cancelled before step 4 of 28: …" → 4. */
export function parseCancelLine(line: string): number | null {
  const m = /^Cancelled before step (\d+) of (\d+)/.exec(line);
  return m ? Number(m[1]) : null;
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

function pushLog(log: string[], line: string): string[] {
  const next = [...log, line];
  return next.length > LOG_LIMIT ? next.slice(next.length - LOG_LIMIT) : next;
}

export function foldApply(p: ApplyProgress, e: ProgressEvent): ApplyProgress {
  switch (e.kind) {
    case "begin": {
      // A new run (or a resumed one) reports every step again, from the first.
      const total = e.total ?? p.ids.length;
      const q = sized(p, total);
      const states = q.states.map((): StepRunState => "pending");
      if (states.length > 0) states[0] = "running";
      return { ...q, states, finished: 0, running: true };
    }
    case "update": {
      const q = sized(p, e.total ?? 0);
      const states = [...q.states];
      const done = Math.max(0, Math.min(e.done, states.length));
      for (let i = 0; i < done; i++) {
        if (states[i] === "pending" || states[i] === "running") states[i] = "done";
      }
      // After a failure the engine stops: nothing after it runs.
      if (q.running && !states.includes("failed") && done < states.length) states[done] = "running";
      return { ...q, states, finished: done };
    }
    case "message": {
      const log = pushLog(p.log, e.line);
      const logCount = p.logCount + 1;
      const step = parseStepLine(e.line);
      if (step && step.result) {
        const q = sized(p, step.total);
        const states = [...q.states];
        states[step.number - 1] = step.result;
        return { ...q, states, log, logCount };
      }
      const cancelled = parseCancelLine(e.line);
      if (cancelled !== null) {
        const states = p.states.map((s, i): StepRunState => (i >= cancelled - 1 && s === "running" ? "pending" : s));
        return { ...p, states, log, logCount };
      }
      return { ...p, log, logCount };
    }
    case "finish":
      return { ...p, running: false, states: p.states.map((s) => (s === "running" ? "pending" : s)) };
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
  }
}

/** 0..1, or null when the total is unknown (the bar then shows activity without a value). */
export function taskFraction(p: TaskProgress): number | null {
  if (p.total === null || p.total <= 0) return null;
  return Math.max(0, Math.min(1, p.done / p.total));
}

import { describe, expect, it } from "vitest";

import { report } from "./fixtures.test-util";
import {
  applySummary,
  counts,
  foldApply,
  foldTask,
  fraction,
  LOG_LIMIT,
  startApply,
  startTask,
  taskFraction,
  TASK_LINES,
  undoText,
  withReport,
  type ApplyProgress,
} from "./progress";
import type { ApplyReport, ProgressEvent, StepRef } from "./types";

const plan = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `s${i + 1}` }));
const fold = (p: ApplyProgress, events: ProgressEvent[]) => events.reduce(foldApply, p);
const msg = (line: string): ProgressEvent => ({ kind: "message", line });
const ref = (number: number, total = 3): StepRef => ({ id: `s${number}`, node: "stor1", title: "ABCDEFGH"[number - 1] ?? "?", number, total });
const started = (total = 3, resumed: string | null = null): ProgressEvent => ({ kind: "run_started", plan: "platform", total, resumed_from: resumed, resumed_changed: resumed ? 1 : 0 });
const start = (n: number, total = 3): ProgressEvent => ({ kind: "step_started", step: ref(n, total) });
const done = (n: number, total = 3): ProgressEvent => ({ kind: "step_done", step: ref(n, total), duration_ms: 5 });
const already = (n: number, total = 3): ProgressEvent => ({ kind: "step_already_done", step: ref(n, total), by_previous_run: false });
const failed = (n: number, output: string[] = [], total = 3): ProgressEvent => ({
  kind: "step_failed",
  step: ref(n, total),
  phase: "apply",
  code: "remote_command",
  message: "Start libvirt on host2 failed (exit status 1)",
  output,
});
const finished = (outcome: "completed" | "failed" | "cancelled", summary = "Done."): ProgressEvent => ({ kind: "run_finished", outcome, total: 3, changed: 2, already_done: 1, summary });

describe("foldApply", () => {
  it("follows a run that completes", () => {
    let p = startApply(plan(3));
    expect(p.states).toEqual(["pending", "pending", "pending"]);
    p = fold(p, [started(), start(1)]);
    expect(p.states).toEqual(["running", "pending", "pending"]);
    expect(p.running).toBe(true);
    p = fold(p, [done(1), start(2)]);
    expect(p.states).toEqual(["done", "running", "pending"]);
    expect(fraction(p)).toBeCloseTo(1 / 3);
    p = fold(p, [already(2), start(3), done(3)]);
    expect(p.states).toEqual(["done", "already_done", "done"]);
    p = foldApply(p, finished("completed", "Done: 2 step(s) changed, 1 already done (3 in all)."));
    expect(p.running).toBe(false);
    expect(fraction(p)).toBe(1);
    expect(p.log.map((l) => l.text)).toEqual(["[1/3] A: done", "[2/3] B: already done", "[3/3] C: done", "Done: 2 step(s) changed, 1 already done (3 in all)."]);
    expect(p.logCount).toBe(4);
    expect(counts(p)).toEqual({ pending: 0, running: 0, done: 2, already_done: 1, failed: 0 });
  });

  it("stops at a failure, logs what the command printed and what undoing it did", () => {
    const p = fold(startApply(plan(3)), [
      started(),
      start(1),
      done(1),
      start(2),
      failed(2, ["libvirtd: cannot bind", "exit"]),
      { kind: "step_undone", step: ref(2), undo: { result: "nothing_to_undo" } },
      finished("failed", "Step 2 of 3 failed."),
    ]);
    expect(p.states).toEqual(["done", "failed", "pending"]);
    expect(p.finished).toBe(2);
    expect(p.running).toBe(false);
    expect(p.log).toEqual([
      { text: "[1/3] A: done", bad: false },
      { text: "[2/3] B: failed: Start libvirt on host2 failed (exit status 1)", bad: true },
      { text: "    | libvirtd: cannot bind", bad: true },
      { text: "    | exit", bad: true },
      { text: "    Nothing to undo.", bad: false },
      { text: "Step 2 of 3 failed.", bad: true },
    ]);
  });

  it("says what undo did, truthfully", () => {
    expect(undoText({ result: "nothing_to_undo" })).toBe("Nothing to undo.");
    expect(undoText({ result: "done" })).toContain("taken back");
    expect(undoText({ result: "not_needed" })).toContain("Nothing was changed");
    expect(undoText({ result: "failed", error: "umount: busy" })).toContain("umount: busy");
  });

  it("puts the step that would have run back to waiting when cancelled", () => {
    const p = fold(startApply(plan(3)), [started(), start(1), done(1), { kind: "cancelled", next: ref(2), finished: 1 }]);
    expect(p.states).toEqual(["done", "pending", "pending"]);
    expect(p.log[1]).toEqual({ text: "Cancelled before step 2 of 3: B", bad: false });
    expect(foldApply(p, finished("cancelled")).running).toBe(false);
  });

  it("ignores the phases of the checks before the run, and logs their lines", () => {
    const p = fold(startApply(plan(2)), [
      { kind: "begin", phase: "Checking", total: 4 },
      { kind: "update", done: 4, total: 4 },
      msg("host1: os: pass"),
      { kind: "finish" },
    ]);
    expect(p.states).toEqual(["pending", "pending"]);
    expect(p.finished).toBe(0);
    expect(p.log).toEqual([{ text: "host1: os: pass", bad: false }]);
  });

  it("starts over on a new run (a resumed run reports every step again)", () => {
    let p = fold(startApply(plan(2)), [started(2), start(1, 2), failed(1, [], 2), finished("failed")]);
    p = fold(p, [started(2, "run-1"), start(1, 2)]);
    expect(p.states).toEqual(["running", "pending"]);
    expect(p.finished).toBe(0);
    expect(p.log.at(-1)?.text).toBe("Continuing an earlier run that did not finish (1 step(s) done by it).");
    p = fold(p, [already(1, 2), start(2, 2)]);
    expect(p.states).toEqual(["already_done", "running"]);
  });

  it("grows when the engine's plan has more steps than the one shown, taking the engine's ids", () => {
    const p = fold(startApply(plan(1)), [started(3), start(3), done(3)]);
    expect(p.ids).toEqual(["s1", "step-2", "s3"]);
    expect(p.states).toEqual(["pending", "pending", "done"]);
  });

  it("works without a plan at all", () => {
    const p = fold(startApply([]), [started(2), start(1, 2), done(1, 2), start(2, 2)]);
    expect(p.ids).toEqual(["s1", "s2"]);
    expect(p.states).toEqual(["done", "running"]);
    expect(fraction(startApply([]))).toBe(0);
  });

  it("ignores a step outside the plan", () => {
    const p = fold(startApply(plan(2)), [started(2), { kind: "step_done", step: ref(0, 2), duration_ms: 1 }]);
    expect(p.states).toEqual(["pending", "pending"]);
  });

  it("keeps only the last LOG_LIMIT lines, and counts them all", () => {
    let p = startApply(plan(1));
    for (let i = 0; i < LOG_LIMIT + 10; i++) p = foldApply(p, msg(`line ${i}`));
    expect(p.log).toHaveLength(LOG_LIMIT);
    expect(p.log[0]?.text).toBe("line 10");
    expect(p.logCount).toBe(LOG_LIMIT + 10);
  });

  it("does not change its input", () => {
    const p = startApply(plan(2));
    const copy = JSON.parse(JSON.stringify(p));
    fold(p, [started(2), start(1, 2), done(1, 2), finished("completed")]);
    expect(p).toEqual(copy);
  });
});

describe("withReport", () => {
  it("takes every step's outcome from the report", () => {
    const p = fold(startApply([{ id: "a" }, { id: "b" }]), [started(2), { kind: "step_done", step: { ...ref(1, 2), id: "a" }, duration_ms: 1 }]);
    const r = withReport(p, report("failed"));
    expect(r.ids).toEqual(["a", "b"]);
    expect(r.states).toEqual(["done", "failed"]);
    expect(r.running).toBe(false);
    expect(r.finished).toBe(2);
  });

  it("replaces placeholder ids with the report's", () => {
    const p = fold(startApply([]), [started(2), done(1, 2)]);
    const r = withReport(p, report("cancelled"));
    expect(r.ids).toEqual(["a", "b"]);
    expect(r.states).toEqual(["done", "pending"]);
  });

  it("keeps the log, and ignores an empty report", () => {
    const p = fold(startApply(plan(1)), [msg("hello")]);
    expect(withReport(p, report()).log).toEqual([{ text: "hello", bad: false }]);
    const empty: ApplyReport = { ...report(), steps: [] };
    expect(withReport(p, empty).ids).toEqual(["s1"]);
  });
});

describe("applySummary", () => {
  it("says how it ended", () => {
    expect(applySummary(report("completed"))).toBe("Done: 1 step changed something, 1 was already done.");
    expect(applySummary({ ...report("completed"), changed: 0 })).toBe("Nothing to change: all 2 steps were already done.");
    expect(applySummary(report("cancelled"))).toContain("Cancelled after 1 of 2 steps");
    expect(applySummary(report("failed"))).toContain("stopped on an error");
    const failure = { step: "b", node: "stor1", title: "B", number: 2, phase: "apply" as const, code: "remote_command", message: "x", output: [], undo: { result: "done" as const }, what_to_do: "y" };
    expect(applySummary({ ...report("failed"), failure })).toContain("Step 2 of 2 failed: B.");
    expect(applySummary({ ...report("completed"), resumed_from: { run_id: "r0", state: "failed", error: null, changed: [] } })).toContain("continuing an earlier run");
  });
});

describe("foldTask", () => {
  it("follows phases, updates and lines", () => {
    let p = startTask("Checking");
    expect(taskFraction(p)).toBeNull();
    p = foldTask(p, { kind: "begin", phase: "Checking host1", total: 4 });
    p = foldTask(p, { kind: "update", done: 1, total: null });
    expect(p.total).toBe(4);
    expect(taskFraction(p)).toBe(0.25);
    p = foldTask(p, { kind: "message", line: "host1: os: pass" });
    p = foldTask(p, { kind: "finish" });
    expect(taskFraction(p)).toBe(1);
    expect(p.lines).toEqual(["host1: os: pass"]);
    expect(p.running).toBe(true); // the command's answer ends it, not a phase
  });

  it("clamps and caps", () => {
    let p = foldTask(startTask("x"), { kind: "begin", phase: "y", total: 2 });
    p = foldTask(p, { kind: "update", done: 5, total: 2 });
    expect(taskFraction(p)).toBe(1);
    expect(taskFraction(foldTask(p, { kind: "begin", phase: "z", total: 0 }))).toBeNull();
    for (let i = 0; i < TASK_LINES + 5; i++) p = foldTask(p, { kind: "message", line: String(i) });
    expect(p.lines).toHaveLength(TASK_LINES);
    expect(p.lines[0]).toBe("5");
  });
});

import { describe, expect, it } from "vitest";

import { report } from "./fixtures.test-util";
import {
  applySummary,
  counts,
  foldApply,
  foldTask,
  fraction,
  LOG_LIMIT,
  parseCancelLine,
  parseStepLine,
  startApply,
  startTask,
  taskFraction,
  TASK_LINES,
  withReport,
  type ApplyProgress,
} from "./progress";
import type { ApplyReport, ProgressEvent } from "./types";

const plan = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `s${i + 1}` }));
const fold = (p: ApplyProgress, events: ProgressEvent[]) => events.reduce(foldApply, p);
const msg = (line: string): ProgressEvent => ({ kind: "message", line });
const upd = (done: number, total: number | null = 3): ProgressEvent => ({ kind: "update", done, total });
const begin = (total: number | null = 3): ProgressEvent => ({ kind: "begin", phase: "Applying 'platform'", total });

describe("parseStepLine", () => {
  it("reads the engine's step lines", () => {
    expect(parseStepLine("[3/28] Make the brick folder on stor1: done")).toEqual({
      number: 3,
      total: 28,
      title: "Make the brick folder on stor1",
      result: "done",
      detail: null,
    });
    expect(parseStepLine("[1/28] stor1: Create the brick directory: already done")).toMatchObject({
      title: "stor1: Create the brick directory",
      result: "already_done",
    });
    expect(parseStepLine("[4/28] Start libvirt on host1: FAILED: systemctl: unit not found: done")).toEqual({
      number: 4,
      total: 28,
      title: "Start libvirt on host1",
      result: "failed",
      detail: "systemctl: unit not found: done",
    });
  });

  it("reads a line without a result as a step title only", () => {
    expect(parseStepLine("[2/3] Something")).toMatchObject({ number: 2, result: null });
  });

  it("ignores anything else", () => {
    for (const line of [
      "Continuing an earlier run that did not finish (2 step(s) done by it).",
      "Done: 3 step(s) changed, 0 already done (3 in all).",
      "[0/3] zero: done",
      "[4/3] past the end: done",
      "[a/3] x: done",
      " [1/3] indented: done",
      "",
    ]) {
      const r = parseStepLine(line);
      expect(r === null || r.result === null, line).toBe(true);
    }
    expect(parseStepLine("[0/3] zero: done")).toBeNull();
    expect(parseStepLine("[4/3] past the end: done")).toBeNull();
  });

  it("reads the cancel line", () => {
    expect(parseCancelLine("Cancelled before step 4 of 28: Start libvirt on host1")).toBe(4);
    expect(parseCancelLine("Cancelled after 3 of 28 steps")).toBeNull();
  });
});

describe("foldApply", () => {
  it("follows a run that completes", () => {
    let p = startApply(plan(3));
    expect(p.states).toEqual(["pending", "pending", "pending"]);
    p = foldApply(p, begin());
    expect(p.states).toEqual(["running", "pending", "pending"]);
    expect(p.running).toBe(true);
    p = fold(p, [msg("[1/3] A: done"), upd(1)]);
    expect(p.states).toEqual(["done", "running", "pending"]);
    expect(fraction(p)).toBeCloseTo(1 / 3);
    p = fold(p, [msg("[2/3] B: already done"), upd(2), msg("[3/3] C: done"), upd(3)]);
    expect(p.states).toEqual(["done", "already_done", "done"]);
    p = fold(p, [{ kind: "finish" }, msg("Done: 2 step(s) changed, 1 already done (3 in all).")]);
    expect(p.running).toBe(false);
    expect(fraction(p)).toBe(1);
    expect(p.log).toHaveLength(4);
    expect(p.logCount).toBe(4);
    expect(counts(p)).toEqual({ pending: 0, running: 0, done: 2, already_done: 1, failed: 0 });
  });

  it("stops at a failure: nothing after it is running", () => {
    const p = fold(startApply(plan(3)), [
      begin(),
      msg("[1/3] A: done"),
      upd(1),
      msg("[2/3] B: FAILED: disk full"),
      msg("Free some space on stor1, then run the setup again."),
      upd(2),
      { kind: "finish" },
    ]);
    expect(p.states).toEqual(["done", "failed", "pending"]);
    expect(p.finished).toBe(2);
    expect(p.log[2]).toBe("Free some space on stor1, then run the setup again.");
  });

  it("puts the step that would have run back to waiting when cancelled", () => {
    const p = fold(startApply(plan(3)), [begin(), msg("[1/3] A: done"), upd(1), msg("Cancelled before step 2 of 3: B")]);
    expect(p.states).toEqual(["done", "pending", "pending"]);
    const finished = foldApply(p, { kind: "finish" });
    expect(finished.running).toBe(false);
  });

  it("marks steps done from updates alone when the lines were missed", () => {
    const p = fold(startApply(plan(3)), [begin(), upd(2)]);
    expect(p.states).toEqual(["done", "done", "running"]);
  });

  it("clamps updates outside the plan", () => {
    const p = fold(startApply(plan(2)), [begin(2), upd(-3, 2)]);
    expect(p.states).toEqual(["running", "pending"]);
    const q = fold(startApply(plan(2)), [begin(2), upd(99, 2)]);
    expect(q.states).toEqual(["done", "done"]);
  });

  it("starts over on a new begin (a resumed run reports every step again)", () => {
    let p = fold(startApply(plan(2)), [begin(2), msg("[1/2] A: FAILED: x"), upd(1, 2), { kind: "finish" }]);
    p = foldApply(p, begin(2));
    expect(p.states).toEqual(["running", "pending"]);
    expect(p.finished).toBe(0);
    p = fold(p, [msg("[1/2] A: already done"), upd(1, 2)]);
    expect(p.states).toEqual(["already_done", "running"]);
  });

  it("grows when the engine's plan has more steps than the one shown", () => {
    const p = fold(startApply(plan(1)), [begin(3), msg("[3/3] C: done")]);
    expect(p.ids).toEqual(["s1", "step-2", "step-3"]);
    expect(p.states).toEqual(["running", "pending", "done"]);
  });

  it("works without a plan at all", () => {
    const p = fold(startApply([]), [begin(null), msg("[1/2] A: done"), upd(1, 2)]);
    expect(p.ids).toEqual(["step-1", "step-2"]);
    expect(p.states).toEqual(["done", "running"]);
    expect(fraction(startApply([]))).toBe(0);
  });

  it("keeps only the last LOG_LIMIT lines, and counts them all", () => {
    let p = startApply(plan(1));
    for (let i = 0; i < LOG_LIMIT + 10; i++) p = foldApply(p, msg(`line ${i}`));
    expect(p.log).toHaveLength(LOG_LIMIT);
    expect(p.log[0]).toBe("line 10");
    expect(p.logCount).toBe(LOG_LIMIT + 10);
  });

  it("does not change its input", () => {
    const p = startApply(plan(2));
    const copy = JSON.parse(JSON.stringify(p));
    fold(p, [begin(2), msg("[1/2] A: done"), upd(1, 2), { kind: "finish" }]);
    expect(p).toEqual(copy);
  });
});

describe("withReport", () => {
  it("takes every step's outcome from the report", () => {
    const p = fold(startApply([{ id: "a" }, { id: "b" }]), [begin(2), upd(1, 2)]);
    const r = withReport(p, report("failed"));
    expect(r.ids).toEqual(["a", "b"]);
    expect(r.states).toEqual(["done", "failed"]);
    expect(r.running).toBe(false);
    expect(r.finished).toBe(2);
  });

  it("replaces placeholder ids with the report's", () => {
    const p = fold(startApply([]), [begin(2), upd(1, 2)]);
    const r = withReport(p, report("cancelled"));
    expect(r.ids).toEqual(["a", "b"]);
    expect(r.states).toEqual(["done", "pending"]);
  });

  it("keeps the log, and ignores an empty report", () => {
    const p = fold(startApply(plan(1)), [msg("hello")]);
    expect(withReport(p, report()).log).toEqual(["hello"]);
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
    const failure = { step: "b", node: "stor1", title: "B", number: 2, phase: "apply" as const, code: "remote_command", message: "x", undo: { result: "done" as const }, what_to_do: "y" };
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

// Steps 5 and 6: the plan, then applying it. The plan is read-only; applying shows each step's
// state as the engine reports it, a progress bar and the log, and can be cancelled (between two
// steps) and resumed (the engine skips what is already done).

import { applySummary, counts, LOG_LIMIT, STATE_LABELS, type StepRunState } from "./progress";
import type { StepInfo } from "./types";
import { badge, callout, el, stepForm, stepHeading, type StepCtx, type StepView, type Tone } from "./render-common";

const RUN_TONE: Record<StepRunState, Tone> = {
  pending: "idle",
  running: "busy",
  done: "ok",
  already_done: "ok",
  failed: "bad",
};

function nodeChip(node: string): HTMLElement {
  return el("span", { cls: "node-chip", text: node });
}

export function renderPlan(ctx: StepCtx): StepView {
  const { state, ui } = ctx;
  const busy = ui.busy !== null;
  const plan = state.plan;
  const content: (HTMLElement | null)[] = [stepHeading("The plan")];
  if (!plan) {
    content.push(callout("info", null, busy ? "Making the plan…" : "The plan has not been made yet."));
  } else {
    const nodes = new Set(plan.steps.map((s) => s.node));
    content.push(
      el("p", { cls: "lead", text: `${plan.steps.length} steps on ${nodes.size} ${nodes.size === 1 ? "machine" : "machines"}. Nothing has changed yet.` }),
      el("p", { cls: "muted", text: "Each step first checks whether its result is already there and only changes something if not, so running the setup again is safe. If a step fails, Twofold undoes that step and stops." }),
      el("ol", { cls: "plan-steps", testid: "plan-steps" }, ...plan.steps.map(planItem)),
    );
  }
  const form = stepForm("plan", content, {
    back: { label: "Back", testid: "wizard-back", run: () => ctx.back(), disabled: busy },
    primary: { label: "Start the setup", testid: "wizard-next", disabled: busy || !plan, run: () => ctx.next() },
  });
  return { root: form };
}

function planItem(s: StepInfo, i: number): HTMLElement {
  const li = el("li", { cls: "plan-step", testid: `plan-step-${s.id}` });
  li.append(
    el("div", { cls: "plan-head" }, el("span", { cls: "num", text: `${i + 1}.` }), nodeChip(s.node), el("strong", { text: s.title })),
    el("p", { cls: "why", text: s.why }),
  );
  if (s.changes.length) li.append(el("ul", { cls: "changes" }, ...s.changes.map((c) => el("li", { text: c }))));
  return li;
}

export function renderApply(ctx: StepCtx): StepView {
  const { state, ui } = ctx;
  const report = state.report;
  const titles = new Map<string, { title: string; node: string }>();
  for (const s of state.plan?.steps ?? []) titles.set(s.id, s);
  for (const s of report?.steps ?? []) if (!titles.has(s.id)) titles.set(s.id, s);

  const bar = el("progress", { cls: "run-bar", testid: "apply-progress" });
  const barText = el("p", { cls: "muted", testid: "apply-count" });
  const summary = el("div", { testid: "apply-summary" });
  summary.setAttribute("aria-live", "polite");
  const list = el("ol", { cls: "run-steps", testid: "apply-steps" });
  const items = new Map<string, { li: HTMLElement; state: HTMLElement }>();
  const log = el("ol", { cls: "log", testid: "apply-log" });
  const logBox = el("div", { cls: "log-box" }, log);
  logBox.tabIndex = 0; // scrollable with the keyboard
  logBox.setAttribute("role", "log");
  logBox.setAttribute("aria-label", "Setup log");
  let logged = 0;

  const content: HTMLElement[] = [
    stepHeading("Setting up"),
    summary,
    el("div", { cls: "run-progress" }, bar, barText),
    el("div", { cls: "run-columns" }, el("section", { cls: "group" }, el("h3", { text: "Steps" }), list), el("section", { cls: "group" }, el("h3", { text: "Log" }), logBox)),
  ];

  const running = ui.applying;
  const outcome = report?.outcome ?? null;
  const secondary = [];
  if (running) {
    secondary.push({
      label: ui.cancelling ? "Stopping after this step…" : "Cancel",
      testid: "apply-cancel",
      disabled: ui.cancelling,
      run: () => ctx.cancelApply(),
    });
  }
  const resumeLabel = outcome === "failed" ? "Try again" : outcome === "cancelled" || state.resumed ? "Resume" : "Start";
  const resume = { label: resumeLabel, testid: "apply-resume", disabled: ui.busy !== null, run: () => ctx.apply() };
  const done = outcome === "completed" && !running;
  const form = stepForm("apply", content, {
    back: running ? null : { label: "Back to the plan", testid: "wizard-back", run: () => ctx.back(), disabled: ui.busy !== null },
    secondary: done ? [{ ...resume, label: "Run again" }] : secondary,
    primary: running ? null : done ? { label: "Continue", testid: "wizard-next", run: () => ctx.next() } : resume,
  });

  const patch = () => {
    const p = ctx.ui.apply;
    bar.max = Math.max(1, p.ids.length);
    bar.value = p.finished;
    bar.setAttribute("aria-label", "Setup progress");
    const c = counts(p);
    barText.textContent = p.ids.length
      ? `${p.finished} of ${p.ids.length} steps finished${c.already_done ? ` (${c.already_done} already done)` : ""}.`
      : "";
    p.ids.forEach((id, i) => {
      let item = items.get(id);
      if (!item) {
        const info = titles.get(id);
        const st = el("span");
        const li = el("li", { cls: "run-step", testid: `step-state-${id}` }, el("span", { cls: "num", text: `${i + 1}.` }), info ? nodeChip(info.node) : null, el("span", { cls: "title", text: info?.title ?? id }), st);
        list.append(li);
        item = { li, state: st };
        items.set(id, item);
      }
      const s = p.states[i] ?? "pending";
      if (item.li.dataset.state !== s) {
        item.li.dataset.state = s;
        item.li.className = `run-step ${s}`;
        item.state.replaceWith((item.state = badge(STATE_LABELS[s], RUN_TONE[s])));
        if (s === "running") item.li.setAttribute("aria-current", "step");
        else item.li.removeAttribute("aria-current");
      }
    });
    // New lines since the last patch (the model keeps only the last LOG_LIMIT); a new run
    // starts the count again.
    if (p.logCount < logged) {
      log.replaceChildren();
      logged = 0;
    }
    const stick = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 8;
    const fresh = Math.min(p.logCount - logged, p.log.length);
    for (const line of p.log.slice(p.log.length - fresh)) {
      log.append(el("li", { text: line.text, cls: line.bad ? "bad-text" : undefined }));
    }
    logged = p.logCount;
    while (log.childElementCount > LOG_LIMIT) log.firstElementChild?.remove();
    if (stick) logBox.scrollTop = logBox.scrollHeight;
  };

  const r = state.report;
  if (running) {
    summary.replaceChildren(callout("info", null, ui.cancelling ? "Stopping after the step that is running now; nothing is left half-done." : "Twofold is setting up the machines. You can cancel: it stops between two steps."));
  } else if (r) {
    const tone = r.outcome === "completed" ? "ok" : r.outcome === "cancelled" ? "warn" : "bad";
    const box = callout(tone, r.outcome === "completed" ? "The setup is done." : r.outcome === "cancelled" ? "Cancelled." : "A step failed.", el("p", { text: applySummary(r) }));
    box.dataset.testid = "apply-outcome";
    box.dataset.outcome = r.outcome;
    summary.replaceChildren(box);
  } else if (state.resumed) {
    summary.replaceChildren(callout("info", "The setup did not finish last time.", "Resume to go on: Twofold checks each step and skips what is already done."));
  }
  patch();
  return { root: form, patch };
}

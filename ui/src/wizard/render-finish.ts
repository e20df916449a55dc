// Steps 7 and 8: check that every step's result is really there, show the four rules Twofold
// keeps, then hand over to the dashboard.

import type { Rule, RuleId, Scorecard } from "./types";
import { badge, callout, el, stepForm, stepHeading, type StepCtx, type StepView, type Tone } from "./render-common";

/** The four rules in the order they are explained, whatever order the engine sends them in. */
export const RULE_ORDER: readonly RuleId[] = ["n_plus_one", "replicated_storage", "backups", "offsite"];

const RULE_STATE: Record<Rule["state"], { label: string; tone: Tone }> = {
  ok: { label: "In place", tone: "ok" },
  warn: { label: "Needs attention", tone: "warn" },
  missing: { label: "Not yet", tone: "bad" },
};

/** What each rule is for, in a sentence, next to what the engine says about it. */
const RULE_MEANING: Record<RuleId, string> = {
  n_plus_one: "Either host can fail and the other carries the critical VMs.",
  replicated_storage: "Every VM disk is kept on both storage nodes.",
  backups: "The VMs are backed up regularly.",
  offsite: "Copies of the backups are kept somewhere else.",
};

export function sortRules(rules: Rule[]): Rule[] {
  const rank = (id: string) => {
    const i = RULE_ORDER.indexOf(id as RuleId);
    return i < 0 ? RULE_ORDER.length : i;
  };
  return [...rules].sort((a, b) => rank(a.id) - rank(b.id));
}

export function scorecardList(rules: Rule[]): HTMLElement {
  return el(
    "ul",
    { cls: "rules", testid: "scorecard" },
    ...sortRules(rules).map((r) => {
      const st = RULE_STATE[r.state] ?? RULE_STATE.missing;
      const li = el("li", { cls: `rule ${r.state}`, testid: `scorecard-${r.id}` });
      li.dataset.state = r.state;
      li.append(
        el("div", { cls: "rule-head" }, badge(st.label, st.tone), el("strong", { text: r.title })),
        el("p", { cls: "muted", text: RULE_MEANING[r.id as RuleId] ?? "" }),
        el("p", { text: r.detail }),
      );
      return li;
    }),
  );
}

/** The engine's own words about the rules: "Running, not yet protected: no backups…" until
 *  every rule holds. */
export function scorecardSummary(card: Scorecard): HTMLElement {
  const allHold = card.rules.length > 0 && card.rules.every((r) => r.state === "ok");
  const box = callout(allHold ? "ok" : "warn", card.headline, card.summary);
  box.dataset.testid = "scorecard-summary";
  return box;
}

export function renderVerify(ctx: StepCtx): StepView {
  const { state, ui } = ctx;
  const busy = ui.busy !== null;
  const v = state.verify;
  const content: (HTMLElement | null)[] = [
    stepHeading("Verify"),
    el("p", { cls: "muted", text: "Twofold checks, on every machine, that each step's result is there now." }),
  ];
  if (!v) {
    content.push(callout("info", null, busy ? "Checking…" : "The verification has not run yet."));
  } else {
    const ok = v.failed === 0;
    const box = callout(
      ok ? "ok" : "bad",
      ok ? `All ${v.passed} checks passed.` : `${v.failed} of ${v.passed + v.failed} checks failed.`,
      ok ? "Everything the setup did is in place." : "Run the setup again (it repairs what is missing), then verify again.",
    );
    box.dataset.testid = "verify-summary";
    content.push(box);
    content.push(
      el(
        "ul",
        { cls: "verify-list", testid: "verify-steps" },
        ...v.steps.map((s) => {
          const li = el("li", { cls: `verify ${s.passed ? "pass" : "fail"}`, testid: `verify-${s.id}` });
          li.dataset.passed = String(s.passed);
          li.append(el("div", { cls: "check-head" }, badge(s.passed ? "Passed" : "Failed", s.passed ? "ok" : "bad"), el("span", { cls: "node-chip", text: s.node }), el("span", { text: s.title })));
          if (!s.passed && s.reason) li.append(el("p", { cls: "reason", text: s.reason }));
          return li;
        }),
      ),
    );
  }

  const rules = el("section", { cls: "group" }, el("h3", { text: "Twofold's four rules" }));
  if (state.scorecard) rules.append(scorecardSummary(state.scorecard), scorecardList(state.scorecard.rules));
  else if (ui.scorecardError) rules.append(callout("warn", "Could not read the rules' state.", ui.scorecardError));
  else rules.append(el("p", { cls: "muted", text: busy ? "Reading…" : "Not read yet." }));
  content.push(rules);

  const ok = v !== null && v.failed === 0;
  const again = { label: "Check again", testid: "verify-again", disabled: busy, run: () => ctx.verify() };
  const form = stepForm("verify", content, {
    back: { label: "Back to the setup", testid: "wizard-back", run: () => ctx.back(), disabled: busy },
    secondary: ok ? [again] : [],
    primary: ok ? { label: "Finish", testid: "wizard-next", disabled: busy, run: () => ctx.next() } : again,
  });
  return { root: form };
}

export function renderDone(ctx: StepCtx): StepView {
  const content: (HTMLElement | null)[] = [
    stepHeading("Twofold is set up"),
    el("p", { cls: "lead", text: "Your two hosts and two storage nodes are working together. The dashboard shows the machines, the VMs and what happens to them." }),
  ];
  const card = ctx.state.scorecard;
  if (card) content.push(el("section", { cls: "group" }, el("h3", { text: "Twofold's four rules" }), scorecardSummary(card), scorecardList(card.rules)));
  const form = stepForm("done", content, {
    primary: { label: "Open the dashboard", testid: "open-dashboard", run: () => ctx.finish() },
  });
  return { root: form };
}

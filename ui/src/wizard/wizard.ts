//! The setup wizard's controller: holds the state (state.ts), runs the commands (api.ts) when a
// step needs them, feeds their answers and progress back in, saves on every step change, shows
// errors in a dialog, and keeps keyboard focus where a keyboard user expects it: on the new
// step's heading when the step changes, in the dialog while it is open, back where it was after.

import { adviceFor, settle, titleFor, toUiError } from "../errors";
import type { UiError } from "../types";
import type { WizardApi } from "./api";
import { foldApply, foldTask, startApply, startTask, withReport } from "./progress";
import { el, type StepCtx, type StepView, type UiState } from "./render-common";
import { renderMachines } from "./render-machines";
import { renderApply, renderPlan } from "./render-run";
import { renderPreflight } from "./render-preflight";
import { renderDone, renderVerify } from "./render-finish";
import { renderTrust } from "./render-trust";
import { renderWelcome } from "./render-welcome";
import {
  reduce,
  request,
  STEP_LABELS,
  STEPS,
  stepIndex,
  toSaved,
  type Action,
  type WizardState,
} from "./state";
import type { StepFailure, WizardStep } from "./types";

export interface WizardOptions {
  root: HTMLElement;
  api: WizardApi;
  state: WizardState;
  /** Said once, above the first step (e.g. the saved setup could not be read). */
  notice?: string | null;
  /** "Open the dashboard". */
  onDone: () => void;
  /** After the first step is on screen (the smoke test reports then). */
  onRendered?: () => void;
}

const RENDER: Record<WizardStep, (ctx: StepCtx) => StepView> = {
  welcome: renderWelcome,
  machines: renderMachines,
  trust: renderTrust,
  preflight: renderPreflight,
  plan: renderPlan,
  apply: renderApply,
  verify: renderVerify,
  done: renderDone,
};

interface DialogAction {
  label: string;
  testid: string;
  run: () => void;
}

export function startWizard(o: WizardOptions): void {
  new Wizard(o).start();
}

class Wizard {
  private state: WizardState;
  private readonly ui: UiState;
  private view: StepView | null = null;
  private readonly nav: HTMLOListElement;
  private readonly main: HTMLElement;
  private readonly status: HTMLElement;
  private readonly dialog: HTMLDialogElement;
  /** Where focus goes when the dialog closes; null when the dialog's action moved it itself. */
  private returnFocus: { el: Element | null; key: string | null } | null = null;

  constructor(private readonly o: WizardOptions) {
    this.state = o.state;
    this.ui = {
      touched: new Set(),
      showAll: false,
      busy: null,
      task: null,
      apply: startApply([]),
      applying: false,
      cancelling: false,
      scorecardError: null,
    };
    this.nav = el("ol", { cls: "wizard-steps" });
    this.main = el("main", { cls: "wizard-main", id: "wizard-main" });
    this.status = el("p", { cls: "wizard-status", testid: "wizard-status" });
    this.status.setAttribute("role", "status");
    this.dialog = el("dialog", { cls: "dialog", testid: "error-dialog" });
    this.dialog.setAttribute("aria-labelledby", "error-dialog-title");
    this.dialog.addEventListener("close", () => this.restoreFocus());
  }

  start(): void {
    const header = el(
      "header",
      { cls: "app-header wizard-header" },
      el("h1", {}, "Twofold ", el("span", { cls: "subtitle", text: "Setup" })),
    );
    const nav = el("nav", { cls: "wizard-nav" }, this.nav);
    nav.setAttribute("aria-label", "Setup steps");
    const notice = this.o.notice ? el("div", { cls: "callout warn wizard-notice", text: this.o.notice }) : null;
    this.o.root.replaceChildren(...[header, nav, notice, this.main, this.status, this.dialog].filter((x): x is HTMLElement => x !== null));
    this.o.root.hidden = false;
    this.paint();
    this.heading()?.focus();
    this.enter(null);
    this.o.onRendered?.();
  }

  // ---- state ---------------------------------------------------------------------------------

  private dispatch(a: Action, then: "render" | "patch" | "none" = "render"): void {
    const before = this.state.step;
    this.state = reduce(this.state, a);
    if (this.state.step !== before) {
      this.stepChanged(before);
      return;
    }
    if (then === "render") this.rerender();
    else if (then === "patch") this.view?.patch?.();
  }

  private stepChanged(from: WizardStep): void {
    this.ui.touched.clear();
    this.ui.showAll = false;
    this.ui.task = null;
    this.paint();
    this.heading()?.focus();
    void this.save();
    // After the command that caused the change has let go of `busy`.
    window.setTimeout(() => this.enter(from), 0);
  }

  /** Run what a step needs when it opens and does not have yet. */
  private enter(from: WizardStep | null): void {
    const s = this.state;
    switch (s.step) {
      case "trust":
        // Read the identities each time the step opens: what a machine shows now is what counts.
        this.scan();
        break;
      case "preflight":
        if (!s.preflight) this.preflight();
        break;
      case "plan":
        if (!s.plan) void this.fetchPlan();
        break;
      case "apply":
        // "Start the setup" starts it; coming back to this step (or reopening the app) waits.
        if (from === "plan") this.apply();
        else if (!s.plan) void this.fetchPlan(true);
        break;
      case "verify":
        if (!s.verify) this.verify();
        break;
      default:
        break;
    }
  }

  private async save(): Promise<void> {
    try {
      await this.o.api.save(toSaved(this.state));
      this.status.textContent = "";
    } catch (err) {
      // Not worth a dialog: the setup goes on, only resuming after a restart is affected.
      this.status.textContent = `Could not save where you are (${toUiError(err).message}); if Twofold is closed, the setup starts over.`;
    }
  }

  // ---- drawing -------------------------------------------------------------------------------

  private ctx(): StepCtx {
    // A getter: the step's handlers read the state after their own dispatches, not a snapshot.
    const self = this;
    return {
      get state() {
        return self.state;
      },
      ui: this.ui,
      dispatch: (a, then) => this.dispatch(a, then),
      next: () => {
        if (!this.ui.busy) this.dispatch({ type: "next" });
      },
      back: () => {
        if (!this.ui.busy) this.dispatch({ type: "back" });
      },
      renderAndFocus: (testid) => {
        this.paint();
        this.find(testid)?.focus();
      },
      touch: (id) => this.ui.touched.add(id),
      tryLab: () => this.tryLab(),
      scan: () => this.scan(),
      preflight: () => this.preflight(),
      apply: () => this.apply(),
      cancelApply: () => void this.cancelApply(),
      verify: () => this.verify(),
      finish: () => this.o.onDone(),
    };
  }

  private paint(): void {
    const step = this.state.step;
    const here = stepIndex(step);
    this.nav.replaceChildren(
      ...STEPS.map((s, i) => {
        const li = el("li", { cls: i < here ? "done" : i === here ? "current" : "todo" }, el("span", { cls: "n", text: String(i + 1) }), el("span", { cls: "label", text: STEP_LABELS[s] }));
        if (i === here) li.setAttribute("aria-current", "step");
        if (i < here) li.append(el("span", { cls: "visually-hidden", text: " (done)" }));
        return li;
      }),
    );
    this.view = RENDER[step](this.ctx());
    const section = el("section", { cls: "wizard-step", testid: `wizard-step-${step}` }, this.view.root);
    section.dataset.step = step;
    this.main.replaceChildren(section);
    document.title = `Twofold setup – ${STEP_LABELS[step]}`;
  }

  /** Redraw the step and put focus back on the same control (found again by its test id); if
   *  that control is gone, on the first of `fallbacks` there is, else on the heading. */
  private rerender(fallbacks: string[] = []): void {
    const active = document.activeElement;
    const inside = active instanceof HTMLElement && this.main.contains(active);
    const key = inside ? keyOf(active) : null;
    this.paint();
    if (!inside) return;
    const target = [key, ...fallbacks].map((k) => this.find(k)).find((e) => e !== null);
    (target ?? this.heading())?.focus();
  }

  private find(key: string | null): HTMLElement | null {
    if (!key) return null;
    return this.main.querySelector<HTMLElement>(`[data-testid="${CSS.escape(key)}"]`) ?? document.getElementById(key);
  }

  private heading(): HTMLElement | null {
    return this.main.querySelector<HTMLElement>('[data-testid="wizard-heading"]');
  }

  // ---- commands ------------------------------------------------------------------------------

  /** One command at a time: navigation waits for it, and its error goes to the dialog. Focus
   *  stays where it was, or moves to the first of `focus` when the control it was on is gone. */
  private async run(label: string, fn: () => Promise<void>, focus: string[] = []): Promise<void> {
    if (this.ui.busy) return;
    this.ui.busy = label;
    this.rerender(focus);
    try {
      await fn();
    } catch (err) {
      this.failed(toUiError(err));
    } finally {
      this.ui.busy = null;
      this.rerender(focus);
    }
  }

  private tryLab(): void {
    this.ui.task = startTask("Starting the lab");
    void this.run("Bringing up the lab", async () => {
      const lab = await this.o.api.labTry((e) => {
        if (this.ui.task) this.ui.task = foldTask(this.ui.task, e);
        this.view?.patch?.();
      });
      this.ui.task = null;
      this.dispatch({ type: "lab-ready", lab });
    }).finally(() => {
      this.ui.task = null;
      this.view?.patch?.();
    });
  }

  private scan(): void {
    void this.run("Reading the machines' identities", async () => {
      // No password is needed to read a host key, so none is sent.
      const machines = request(this.state).machines.map(({ password: _p, ...m }) => m);
      this.dispatch({ type: "scanned", seen: await this.o.api.scanHostKeys(machines) }, "none");
    });
  }

  private preflight(): void {
    this.ui.task = startTask("Checking the machines");
    void this.run("Checking the machines", async () => {
      const view = await this.o.api.preflight(request(this.state), (e) => {
        if (this.ui.task) this.ui.task = foldTask(this.ui.task, e);
        this.view?.patch?.();
      });
      this.dispatch({ type: "preflight", view }, "none");
    });
  }

  private async fetchPlan(quiet = false): Promise<void> {
    if (quiet) {
      // Only for the step names on the apply step: without it the step ids are shown.
      const plan = await settle(() => this.o.api.plan(request(this.state)));
      if (plan.ok && !this.ui.applying) {
        if (this.ui.apply.ids.length === 0) this.ui.apply = startApply(plan.value.steps);
        this.dispatch({ type: "plan", plan: plan.value });
      }
      return;
    }
    await this.run("Making the plan", async () => {
      this.dispatch({ type: "plan", plan: await this.o.api.plan(request(this.state)) }, "none");
    });
  }

  private apply(): void {
    if (this.ui.applying || this.ui.busy) return;
    this.ui.apply = startApply(this.state.plan?.steps ?? this.state.report?.steps ?? []);
    this.ui.applying = true;
    this.ui.cancelling = false;
    let failure: StepFailure | null = null;
    void this.run(
      "Setting up the machines",
      async () => {
        try {
          const report = await this.o.api.apply(request(this.state), (e) => {
            this.ui.apply = foldApply(this.ui.apply, e);
            this.view?.patch?.();
          });
          this.ui.apply = withReport(this.ui.apply, report);
          this.ui.applying = false;
          this.dispatch({ type: "applied", report }, "none");
          if (report.outcome === "failed") failure = report.failure;
        } finally {
          this.ui.applying = false;
          this.ui.cancelling = false;
        }
      },
      // While it runs, Cancel; after, what to do next.
      ["apply-cancel", "wizard-next", "apply-resume"],
    ).then(() => {
      if (failure) this.stepFailed(failure);
    });
  }

  private async cancelApply(): Promise<void> {
    if (!this.ui.applying || this.ui.cancelling) return;
    this.ui.cancelling = true;
    this.rerender();
    try {
      await this.o.api.cancel();
    } catch (err) {
      this.ui.cancelling = false;
      this.rerender();
      this.failed(toUiError(err));
    }
  }

  private verify(): void {
    this.ui.scorecardError = null;
    void this.run("Verifying", async () => {
      const [verdict, card] = await Promise.all([
        settle(() => this.o.api.verify(request(this.state))),
        settle(() => this.o.api.scorecard()),
      ]);
      if (card.ok) this.dispatch({ type: "scorecard", scorecard: card.value }, "none");
      else this.ui.scorecardError = card.error.message;
      if (!verdict.ok) throw verdict.error;
      this.dispatch({ type: "verified", report: verdict.value }, "none");
    });
  }

  // ---- errors --------------------------------------------------------------------------------

  /** A command failed: say what happened, what to do, and offer the way there when there is one. */
  private failed(err: UiError): void {
    const actions: DialogAction[] = [];
    const at = stepIndex(this.state.step);
    const goto = (step: WizardStep, label: string) => {
      if (stepIndex(step) < at) actions.push({ label, testid: "error-dialog-action", run: () => this.dispatch({ type: "goto", step }) });
    };
    switch (err.code) {
      case "auth_failed":
        if (this.state.machines.some((m) => m.password === "" && m.key.trim() === "")) {
          actions.push({ label: this.state.lab ? "Reconnect to the lab" : "Type the passwords again", testid: "error-dialog-action", run: () => this.dispatch({ type: "need-secrets" }) });
        } else goto("machines", "Back to the machines");
        break;
      case "host_key_changed":
        if (at > stepIndex("trust")) actions.push({ label: "Check the identities again", testid: "error-dialog-action", run: () => this.dispatch({ type: "recheck-keys" }) });
        break;
      case "host_unreachable":
      case "invalid_input":
        goto("machines", "Back to the machines");
        break;
      case "not_ready":
      case "too_small":
        goto("preflight", "Back to the checks");
        break;
      default:
        break;
    }
    this.openDialog({ code: err.code, title: titleFor(err.code), message: err.message, advice: adviceFor(err.code), actions });
  }

  private stepFailed(f: StepFailure): void {
    const total = this.state.report?.steps.length ?? this.ui.apply.ids.length;
    const phase = f.phase === "check" ? "while checking whether it was needed" : f.phase === "apply" ? "while making its change" : "when checking its result afterwards";
    const undo =
      f.undo.result === "not_needed"
        ? "Nothing had been changed by this step."
        : f.undo.result === "done"
          ? "Twofold undid what this step had changed."
          : f.undo.result === "nothing_to_undo"
            ? "Nothing to undo: this step has nothing to take back."
            : `Undoing it failed too (${f.undo.error}): ${f.node} may hold part of the change.`;
    this.openDialog({
      code: "step_failed",
      title: `Step ${f.number}${total ? ` of ${total}` : ""} failed: ${f.title}`,
      message: `On ${f.node}, ${phase}: ${f.message}`,
      advice: f.what_to_do || adviceFor("step_failed"),
      output: f.output,
      extra: [undo, `Error code: ${f.code}`],
      actions: [{ label: "Try again", testid: "error-dialog-action", run: () => this.apply() }],
    });
  }

  private openDialog(d: { code: string; title: string; message: string; advice: string | null; output?: string[]; extra?: string[]; actions: DialogAction[] }): void {
    if (!this.dialog.open) {
      const active = document.activeElement;
      this.returnFocus = { el: active, key: active instanceof HTMLElement ? keyOf(active) : null };
    }
    const title = el("h2", { text: d.title, id: "error-dialog-title", testid: "error-dialog-title" });
    const form = el("form", { cls: "dialog-form" });
    form.method = "dialog";
    form.append(
      title,
      el("p", { testid: "error-dialog-message", cls: "dialog-message", text: d.message }),
    );
    if (d.advice) form.append(el("p", { cls: "advice" }, el("strong", { text: "What to do: " }), d.advice));
    // The last lines the failed command printed, as it printed them.
    if (d.output?.length) {
      form.append(el("p", { cls: "muted", text: "What it printed last:" }), el("pre", { cls: "command-output", testid: "error-dialog-output", text: d.output.join("\n") }));
    }
    for (const x of d.extra ?? []) form.append(el("p", { cls: "muted", text: x }));
    form.append(el("p", { cls: "muted small" }, "Code: ", el("code", { text: d.code, testid: "error-dialog-code" })));
    const bar = el("div", { cls: "actions" }, el("span", { cls: "spacer" }));
    for (const a of d.actions) {
      const b = el("button", { text: a.label, cls: "secondary", testid: a.testid });
      b.type = "button";
      b.addEventListener("click", () => {
        // Where the action leads is where focus goes, not back to the old control.
        this.returnFocus = null;
        this.dialog.close();
        a.run();
      });
      bar.append(b);
    }
    const close = el("button", { text: "Close", cls: "primary", testid: "error-dialog-close" });
    close.type = "submit";
    bar.append(close);
    form.append(bar);
    this.dialog.dataset.code = d.code;
    this.dialog.replaceChildren(form);
    if (!this.dialog.open) this.dialog.showModal();
    close.focus();
  }

  private restoreFocus(): void {
    const back = this.returnFocus;
    this.returnFocus = null;
    if (!back) {
      if (!this.main.contains(document.activeElement)) this.heading()?.focus();
      return;
    }
    // The control may have been redrawn while the dialog was open: find it again by its test id,
    // or land on the step's main action.
    const target =
      (back.el instanceof HTMLElement && back.el.isConnected ? back.el : null) ??
      this.find(back.key) ??
      this.main.querySelector<HTMLElement>('button[type="submit"]') ??
      this.heading();
    target?.focus();
  }
}

function keyOf(e: HTMLElement): string | null {
  return e.dataset.testid ?? (e.id || null);
}

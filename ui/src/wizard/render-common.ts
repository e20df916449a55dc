// DOM building blocks shared by the wizard's steps: elements, labelled fields, the action bar,
// badges, progress and the SVG bars. Text goes in through textContent only (names and messages
// come from machines and are never parsed as HTML), and nothing sets a style attribute: the
// window's CSP allows style sheets from the app only.

import { splitCode } from "../view";
import type { Action as StateAction, WizardState } from "./state";
import type { ApplyProgress } from "./progress";
import { taskFraction, type TaskProgress } from "./progress";
import { BAR_UNITS, SEGMENT_NAMES, type Bar } from "./sizing";

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  opts: { text?: string; cls?: string; testid?: string; id?: string } = {},
  ...children: (Node | string | null | undefined | false)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (opts.text !== undefined) e.textContent = opts.text;
  if (opts.cls) e.className = opts.cls;
  if (opts.testid) e.dataset.testid = opts.testid;
  if (opts.id) e.id = opts.id;
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

/** What the wizard knows beyond its state: what is being shown and run right now. */
export interface UiState {
  /** Field ids the user has left (or typed in after leaving): their messages show. */
  touched: Set<string>;
  /** The user tried to go on: every message shows. */
  showAll: boolean;
  /** What is running now, in a sentence; navigation waits while it does. */
  busy: string | null;
  /** Progress of the checks or the lab. */
  task: TaskProgress | null;
  apply: ApplyProgress;
  applying: boolean;
  cancelling: boolean;
  scorecardError: string | null;
}

/** How a step's drawing talks to the wizard (wizard.ts). */
export interface StepCtx {
  state: WizardState;
  ui: UiState;
  /** Change the state, then redraw the step ("render"), update it in place ("patch") or neither. */
  dispatch(a: StateAction, then?: "render" | "patch" | "none"): void;
  next(): void;
  back(): void;
  /** Redraw, then put focus on the element with this data-testid. */
  renderAndFocus(testid: string): void;
  touch(fieldId: string): void;
  tryLab(): void;
  scan(): void;
  preflight(): void;
  apply(): void;
  cancelApply(): void;
  verify(): void;
  finish(): void;
}

/** What a step's drawing returns: its root, and how to update it in place (progress, messages). */
export interface StepView {
  root: HTMLElement;
  patch?: () => void;
}

/** A paragraph where `backticks` become <code> (commands the user may type). */
export function prose(text: string, cls?: string, tag: "p" | "span" | "li" = "p"): HTMLElement {
  const p = el(tag, { cls });
  for (const part of splitCode(text)) p.append(part.code ? el("code", { text: part.text }) : part.text);
  return p;
}

/** A term with its short explanation: "host key fingerprint (the machine's SSH identity)". */
export function jargon(term: string, meaning: string): HTMLElement {
  return el("span", { cls: "jargon" }, el("dfn", { text: term }), ` (${meaning})`);
}

/** The heading every step starts with; focus lands on it when the step opens. */
export function stepHeading(text: string): HTMLHeadingElement {
  const h = el("h2", { text, cls: "step-heading", testid: "wizard-heading" });
  h.tabIndex = -1;
  return h;
}

export interface Action {
  label: string;
  testid: string;
  run: () => void;
  /** Shown but refused (aria-disabled keeps it focusable, so focus never falls off the page). */
  disabled?: boolean;
  /** Why it is refused, read out with the button. */
  disabledReason?: string | null;
}

export function button(a: Action, type: "button" | "submit" = "button", cls = "secondary"): HTMLButtonElement {
  const b = el("button", { text: a.label, cls, testid: a.testid });
  b.type = type;
  setRefused(b, !!a.disabled, a.disabledReason ?? null);
  // Submit buttons act through the form's submit event (so Enter works the same as a click).
  if (type === "button") {
    b.addEventListener("click", () => {
      if (b.getAttribute("aria-disabled") !== "true") a.run();
    });
  }
  return b;
}

export function setRefused(b: HTMLButtonElement, refused: boolean, reason: string | null): void {
  if (refused) b.setAttribute("aria-disabled", "true");
  else b.removeAttribute("aria-disabled");
  b.title = refused && reason ? reason : "";
}

/**
 * The step's form: content, then the action bar (Back left, others right, the primary last).
 * The primary is the form's only submit button, so Enter in any field runs it, as a click does;
 * a refused primary does nothing (its reason is on screen).
 */
export function stepForm(
  testid: string,
  content: (Node | null | false)[],
  actions: { back?: Action | null; secondary?: Action[]; primary?: Action | null },
): HTMLFormElement {
  const form = el("form", { cls: "step-form", testid: `${testid}-form` });
  form.noValidate = true; // our messages, not the browser's bubbles
  for (const c of content) if (c) form.append(c);
  const bar = el("div", { cls: "actions" });
  if (actions.back) bar.append(button(actions.back, "button", "secondary back"));
  bar.append(el("span", { cls: "spacer" }));
  for (const a of actions.secondary ?? []) bar.append(button(a));
  const primary = actions.primary ?? null;
  if (primary) bar.append(button(primary, "submit", "primary"));
  form.append(bar);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const submitter = form.querySelector<HTMLButtonElement>('button[type="submit"]');
    if (primary && submitter?.getAttribute("aria-disabled") !== "true") primary.run();
  });
  return form;
}

export type Tone = "ok" | "warn" | "bad" | "idle" | "busy";

export function badge(text: string, tone: Tone, testid?: string): HTMLElement {
  return el("span", { text, cls: `state ${tone}`, testid });
}

/** A message box above or inside a step: info, success, warning or problem. */
export function callout(tone: "info" | "ok" | "warn" | "bad", title: string | null, ...body: (Node | string)[]): HTMLElement {
  const box = el("div", { cls: `callout ${tone}` });
  if (tone === "bad" || tone === "warn") box.setAttribute("role", "alert");
  if (title) box.append(el("strong", { text: title }));
  box.append(...body);
  return box;
}

/** A long command's progress: phase, bar (indeterminate when the total is unknown), last lines. */
export function taskBox(testid: string): { root: HTMLElement; patch: (p: TaskProgress | null) => void } {
  const phase = el("p", { cls: "task-phase" });
  const bar = el("progress", { cls: "task-bar", testid: `${testid}-progress` });
  const lines = el("ol", { cls: "task-lines", testid: `${testid}-log` });
  const root = el("div", { cls: "task", testid }, phase, bar, lines);
  root.setAttribute("role", "status");
  const patch = (p: TaskProgress | null) => {
    root.hidden = p === null;
    if (!p) return;
    phase.textContent = p.phase;
    const f = taskFraction(p);
    if (f === null) bar.removeAttribute("value");
    else {
      bar.max = 1;
      bar.value = f;
    }
    // The last few lines are enough to see it moving; the whole log is the engine's.
    const last = p.lines.slice(-6);
    lines.replaceChildren(...last.map((l) => el("li", { text: l })));
  };
  return { root, patch };
}

const SVG = "http://www.w3.org/2000/svg";

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** One sizing bar: segments as rectangles, the host's end as a line; the caption is its text. */
export function barSvg(bar: Bar, testid: string): SVGSVGElement {
  const height = 10;
  const s = svg("svg", {
    viewBox: `0 0 ${BAR_UNITS} ${height}`,
    preserveAspectRatio: "none",
    role: "img",
    "aria-label": bar.caption,
    class: `bar${bar.short ? " short" : ""}`,
    "data-testid": testid,
  });
  s.append(svg("rect", { x: 0, y: 0, width: BAR_UNITS, height, class: "seg-track" }));
  for (const seg of bar.segments) {
    const r = svg("rect", { x: seg.x, y: 0, width: seg.width, height, class: `seg-${seg.kind}` });
    const t = svg("title", {});
    t.textContent = seg.label;
    r.append(t);
    s.append(r);
  }
  if (bar.short) {
    s.append(svg("line", { x1: bar.limitX, y1: 0, x2: bar.limitX, y2: height, class: "limit" }));
  }
  return s;
}

/** The colour key under the bars, so colour is never the only way to tell them apart. */
export function barLegend(kinds: (keyof typeof SEGMENT_NAMES)[]): HTMLElement {
  return el(
    "ul",
    { cls: "legend" },
    ...kinds.map((k) => el("li", {}, el("span", { cls: `swatch seg-${k}` }), SEGMENT_NAMES[k])),
  );
}

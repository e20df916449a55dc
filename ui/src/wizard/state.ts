// The wizard as a state machine: which step it is on, what the user typed, what the commands
// answered, and the rules for moving on, going back, saving and resuming. Pure: wizard.ts runs
// the commands and feeds their answers in as actions; render-*.ts draw the state.
//
// Results of later steps depend on earlier input (a preflight is only good for the machines it
// checked), so every edit clears what it makes stale instead of trusting the user to re-run it.

import type { NodeSpec, Outcome } from "../types";
import type {
  ApplyReport,
  HostKeySeen,
  LabMachines,
  MachineInput,
  PlanView,
  PreflightView,
  ProtectVm,
  Scorecard,
  SetupRequest,
  VerifyReport,
  WizardSaved,
  WizardStep,
} from "./types";
import {
  blankMachine,
  blankVm,
  defaultMachines,
  fromMachineInput,
  fromProtectVm,
  toMachineInput,
  toProtectVm,
  validateAll,
  type MachineDraft,
  type MachineField,
  type VmDraft,
  type VmField,
} from "./validate";

export const STEPS: readonly WizardStep[] = ["welcome", "machines", "trust", "preflight", "plan", "apply", "verify", "done"];

/** Short names for the step list at the top of the window. */
export const STEP_LABELS: Record<WizardStep, string> = {
  welcome: "Welcome",
  machines: "Machines",
  trust: "Identities",
  preflight: "Checks",
  plan: "Plan",
  apply: "Set up",
  verify: "Verify",
  done: "Done",
};

export interface WizardState {
  step: WizardStep;
  machines: MachineDraft[];
  vms: VmDraft[];
  allow_emulation: boolean;
  /** The machines are the built-in lab's. */
  lab: boolean;
  /** Why the user is on this step, when the wizard sent them here (shown above the form). */
  notice: string | null;
  scan: HostKeySeen[] | null;
  preflight: PreflightView | null;
  plan: PlanView | null;
  report: ApplyReport | null;
  verify: VerifyReport | null;
  scorecard: Scorecard | null;
  /** Came back to the apply step after the app was closed: wait for the user instead of starting. */
  resumed: boolean;
}

export function initialState(): WizardState {
  return {
    step: "welcome",
    machines: defaultMachines(),
    vms: [],
    allow_emulation: false,
    lab: false,
    notice: null,
    scan: null,
    preflight: null,
    plan: null,
    report: null,
    verify: null,
    scorecard: null,
    resumed: false,
  };
}

export function stepIndex(step: WizardStep): number {
  return STEPS.indexOf(step);
}

export type Action =
  | { type: "next" }
  | { type: "back" }
  | { type: "edit-machine"; index: number; field: MachineField; value: string }
  | { type: "add-machine" }
  | { type: "remove-machine"; index: number }
  | { type: "edit-vm"; index: number; field: VmField; value: string }
  | { type: "set-vm-critical"; index: number; critical: boolean }
  | { type: "add-vm" }
  | { type: "remove-vm"; index: number }
  | { type: "set-emulation"; allow: boolean }
  | { type: "lab-ready"; lab: LabMachines }
  | { type: "scanned"; seen: HostKeySeen[] }
  | { type: "trust"; name: string; trusted: boolean }
  | { type: "preflight"; view: PreflightView }
  | { type: "plan"; plan: PlanView }
  | { type: "applied"; report: ApplyReport }
  | { type: "verified"; report: VerifyReport }
  | { type: "scorecard"; scorecard: Scorecard }
  /** A command needs a password that is gone: back to the machines step to type it again. */
  | { type: "need-secrets" }
  /** The host key changed or could not be confirmed: back to the trust step. */
  | { type: "recheck-keys" }
  /** Back to an earlier step because an error says its answer is wrong; that answer is redone. */
  | { type: "goto"; step: WizardStep };

/** Whatever the machines step changes makes every later answer stale. */
function stale(s: WizardState): WizardState {
  return { ...s, scan: null, preflight: null, plan: null, report: null, verify: null, scorecard: null, resumed: false };
}

export function reduce(s: WizardState, a: Action): WizardState {
  switch (a.type) {
    case "next": {
      const why = blockedReason(s);
      const to = nextStep(s.step);
      if (why !== null || to === null) return s;
      return { ...s, step: to, notice: null, resumed: false };
    }
    case "back": {
      const to = prevStep(s.step);
      return to === null ? s : { ...s, step: to, notice: null, resumed: false };
    }
    case "edit-machine": {
      const m = s.machines[a.index];
      if (!m) return s;
      const next: MachineDraft = { ...m };
      switch (a.field) {
        case "role":
          next.role = a.value === "storage" ? "storage" : "host";
          break;
        case "port":
          next.port = a.value;
          break;
        default:
          next[a.field] = a.value;
      }
      // A host key belongs to the machine at that address: another address is another machine.
      if ((a.field === "address" || a.field === "port") && a.value.trim() !== m[a.field].trim()) next.host_key = "";
      if (a.field === "password" && a.value !== "") next.passwordNeeded = false;
      return stale({ ...s, machines: replace(s.machines, a.index, next) });
    }
    case "add-machine": {
      const hosts = s.machines.filter((m) => m.role === "host").length;
      return stale({ ...s, machines: [...s.machines, blankMachine(hosts < 2 ? "host" : "storage")] });
    }
    case "remove-machine":
      if (!s.machines[a.index]) return s;
      return stale({ ...s, machines: s.machines.filter((_, i) => i !== a.index) });
    case "edit-vm": {
      const v = s.vms[a.index];
      if (!v) return s;
      return stale({ ...s, vms: replace(s.vms, a.index, { ...v, [a.field]: a.value }) });
    }
    case "set-vm-critical": {
      const v = s.vms[a.index];
      if (!v) return s;
      return stale({ ...s, vms: replace(s.vms, a.index, { ...v, critical: a.critical }) });
    }
    case "add-vm":
      return stale({ ...s, vms: [...s.vms, blankVm()] });
    case "remove-vm":
      if (!s.vms[a.index]) return s;
      return stale({ ...s, vms: s.vms.filter((_, i) => i !== a.index) });
    case "set-emulation":
      return stale({ ...s, allow_emulation: a.allow });
    case "lab-ready":
      return stale({
        ...s,
        step: "machines",
        lab: true,
        allow_emulation: a.lab.allow_emulation,
        // The lab's machines are new each time it comes up: their old host keys mean nothing.
        machines: a.lab.machines.map((m) => ({ ...fromMachineInput(m), host_key: "" })),
        notice: "The lab's four machines are filled in. Look them over, then continue.",
      });
    case "scanned": {
      // A key the user pinned earlier stays confirmed only if the machine still shows it.
      const machines = s.machines.map((m) => {
        const seen = seenFor(a.seen, m);
        return seen && m.host_key === seen.key && !seen.changed_from ? m : { ...m, host_key: "" };
      });
      // The checks, plan and verify logged in with the confirmed keys: they still hold when every
      // machine shows the same one (Back to this step and on again does not redo them).
      const same = machines.every((m, i) => m.host_key !== "" && m.host_key === s.machines[i]!.host_key);
      return same ? { ...s, machines, scan: a.seen } : { ...s, machines, scan: a.seen, preflight: null, plan: null, verify: null };
    }
    case "trust": {
      const i = s.machines.findIndex((m) => m.name.trim() === a.name);
      const seen = s.scan && i >= 0 ? seenFor(s.scan, s.machines[i]!) : undefined;
      if (i < 0 || !seen) return s;
      const m = { ...s.machines[i]!, host_key: a.trusted ? seen.key : "" };
      return { ...s, machines: replace(s.machines, i, m), preflight: null, plan: null, verify: null };
    }
    case "preflight":
      return { ...s, preflight: a.view };
    case "plan":
      return { ...s, plan: a.plan };
    case "applied":
      return { ...s, report: a.report, verify: null, resumed: false };
    case "verified":
      return { ...s, verify: a.report };
    case "scorecard":
      return { ...s, scorecard: a.scorecard };
    case "need-secrets": {
      const machines = s.machines.map((m) =>
        m.password === "" && m.key.trim() === "" ? { ...m, passwordNeeded: true } : m,
      );
      const names = machines.filter((m) => m.passwordNeeded && m.password === "").map((m) => m.name.trim());
      return {
        ...s,
        step: "machines",
        machines,
        resumed: false,
        notice: secretsNotice(s.lab, names),
      };
    }
    case "goto": {
      if (stepIndex(a.step) < 0 || stepIndex(a.step) >= stepIndex(s.step)) return s;
      const redo: Partial<WizardState> =
        a.step === "trust"
          ? { scan: null }
          : a.step === "preflight"
            ? { preflight: null }
            : a.step === "plan"
              ? { plan: null }
              : a.step === "verify"
                ? { verify: null }
                : {};
      return { ...s, ...redo, step: a.step, notice: null, resumed: false };
    }
    case "recheck-keys":
      return { ...s, step: "trust", scan: null, preflight: null, plan: null, verify: null, resumed: false, notice: null };
  }
}

function replace<T>(list: T[], i: number, item: T): T[] {
  return list.map((x, j) => (j === i ? item : x));
}

/** The scanned key of a machine: by name, and at the address the user gave. */
export function seenFor(seen: HostKeySeen[], m: MachineDraft): HostKeySeen | undefined {
  return seen.find((k) => k.name === m.name.trim() && k.address === m.address.trim());
}

function secretsNotice(lab: boolean, names: string[]): string {
  if (lab) {
    return "The lab's machines log in with a password Twofold does not keep once it is closed. Press “Reconnect to the lab” to get it again.";
  }
  const who = names.length ? ` for ${names.join(", ")}` : "";
  return `Type the password again${who}: Twofold does not keep passwords once it is closed, and these machines do not accept Twofold's own key yet.`;
}

export function nextStep(step: WizardStep): WizardStep | null {
  return STEPS[stepIndex(step) + 1] ?? null;
}

/** Back goes one step, except from the ends: the welcome has nothing before it, and once the
 *  setup is done there is nothing to go back to. */
export function prevStep(step: WizardStep): WizardStep | null {
  if (step === "welcome" || step === "done") return null;
  return STEPS[stepIndex(step) - 1] ?? null;
}

/** Why the user cannot go on from this step yet, in a sentence; null when they can. */
export function blockedReason(s: WizardState): string | null {
  switch (s.step) {
    case "welcome":
      return null;
    case "machines":
      return validateAll(s.machines, s.vms).ok ? null : "Some details are missing or wrong: see the messages in the form.";
    case "trust": {
      if (!s.scan) return "Twofold has not read the machines' identities yet.";
      const missing = s.machines.filter((m) => !seenFor(s.scan!, m));
      if (missing.length) return `No identity was read from ${missing.map((m) => m.name).join(", ")}.`;
      const open = s.machines.filter((m) => m.host_key === "" || m.host_key !== seenFor(s.scan!, m)?.key);
      if (open.length) return `Confirm the identity of ${open.map((m) => m.name).join(", ")} first.`;
      return null;
    }
    case "preflight":
      if (!s.preflight) return "The checks have not run yet.";
      if (!s.preflight.passed) return "Some checks failed: fix what they say, then check again.";
      if (s.preflight.sizing && !s.preflight.sizing.ok) return "The hosts are too small for the critical VMs (see the picture).";
      return null;
    case "plan":
      return s.plan ? null : "The plan has not been made yet.";
    case "apply":
      return s.report?.outcome === "completed" ? null : "The setup has not finished yet.";
    case "verify":
      if (!s.verify) return "The verification has not run yet.";
      return s.verify.failed === 0 ? null : "Some checks failed: run the setup again, or check again.";
    case "done":
      return "This is the last step.";
  }
}

/** Names of machines whose password is gone and that have no key file. */
export function secretsMissing(s: Pick<WizardState, "machines">): string[] {
  return s.machines.filter((m) => m.passwordNeeded && m.password === "" && m.key.trim() === "").map((m) => m.name.trim());
}

/** What the commands take. */
export function request(s: WizardState): SetupRequest {
  return { machines: s.machines.map(toMachineInput), protect: s.vms.map(toProtectVm), allow_emulation: s.allow_emulation };
}

/** What is kept between runs of the app: the input and where the user was, never a password. */
export function toSaved(s: WizardState): WizardSaved {
  return {
    step: s.step,
    machines: s.machines.map((m) => {
      const { password: _secret, ...rest } = toMachineInput(m);
      return rest;
    }),
    protect: s.vms.map(savedVm),
    allow_emulation: s.allow_emulation,
    lab: s.lab,
  };
}

// A VM row may be half typed when the user goes back to the welcome; keep what is a number.
function savedVm(v: VmDraft): ProtectVm {
  const n = (t: string) => (/^[0-9]+$/.test(t.trim()) ? Number(t.trim()) : 0);
  return { ...toProtectVm(v), vcpus: n(v.vcpus), ram_mib: n(v.ram_mib), disk_gib: n(v.disk_gib), priority: n(v.priority) };
}

const NEEDS_SSH: readonly WizardStep[] = ["preflight", "plan"];

/**
 * The state to resume from what `wizard_load` returned. The file may come from an older version
 * or have been edited by hand, so nothing in it is trusted:
 * - an unknown step starts over at the welcome; missing lists are empty;
 * - past the machines step, a machine without a key file logged in with a password, which is not
 *   kept: it is marked "password needed again";
 * - details that no longer pass validation send the user to the machines step;
 * - the checks and the plan log in to the machines: without the passwords they cannot, so the
 *   user goes to the machines step first (the identities step needs no password);
 * - the apply and verify steps resume where they were: once the setup has run its first steps the
 *   machines accept Twofold's own key, and the app tries it when a password is missing. If they
 *   still refuse, the wizard sends the user to the machines step then (`need-secrets`).
 */
export function resume(saved: unknown): WizardState {
  const s = initialState();
  if (typeof saved !== "object" || saved === null) return s;
  const raw = saved as Partial<Record<keyof WizardSaved, unknown>>;
  const step: WizardStep = STEPS.includes(raw.step as WizardStep) ? (raw.step as WizardStep) : "welcome";
  const lab = raw.lab === true;
  const machines = Array.isArray(raw.machines) ? raw.machines.filter(isObject).map((m) => sanitizeMachine(m)) : null;
  const vms = Array.isArray(raw.protect) ? raw.protect.filter(isObject).map((v) => sanitizeVm(v)) : [];
  const out: WizardState = {
    ...s,
    step,
    lab,
    allow_emulation: raw.allow_emulation === true,
    machines: machines && machines.length > 0 ? machines : s.machines,
    vms,
  };
  if (stepIndex(step) <= stepIndex("machines")) return out;

  out.machines = out.machines.map((m) => (m.key.trim() === "" ? { ...m, passwordNeeded: true } : m));
  if (step === "done") return out;

  if (!validateAll(out.machines.map((m) => ({ ...m, password: m.passwordNeeded ? "x" : m.password })), out.vms).ok) {
    return { ...out, step: "machines", notice: "Some of the saved details need fixing before the setup can go on." };
  }
  const missing = secretsMissing(out);
  if (NEEDS_SSH.includes(step) && missing.length) {
    return { ...out, step: "machines", notice: secretsNotice(lab, missing) };
  }
  return { ...out, resumed: step === "apply" };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null;
}

function str(x: unknown, fallback = ""): string {
  return typeof x === "string" ? x : fallback;
}

function sanitizeMachine(m: Record<string, unknown>): MachineDraft {
  const input: MachineInput = {
    name: str(m.name),
    role: m.role === "storage" ? "storage" : "host",
    address: str(m.address),
    ssh_port: typeof m.ssh_port === "number" ? m.ssh_port : 22,
    user: str(m.user, "root"),
  };
  if (typeof m.key === "string") input.key = m.key;
  if (typeof m.host_key === "string") input.host_key = m.host_key;
  // A password in the file would be a bug elsewhere; never bring one back into the form.
  return fromMachineInput(input);
}

function sanitizeVm(v: Record<string, unknown>): VmDraft {
  const num = (x: unknown, d: number) => (typeof x === "number" && Number.isFinite(x) ? x : d);
  return fromProtectVm({
    name: str(v.name),
    vcpus: num(v.vcpus, 1),
    ram_mib: num(v.ram_mib, 1024),
    disk_gib: num(v.disk_gib, 0),
    priority: num(v.priority, 0),
    critical: v.critical === true,
  });
}

/** Which window to show at start: the wizard while a setup is unfinished or nothing is set up. */
export type Entry = { view: "wizard"; state: WizardState; notice: string | null } | { view: "dashboard" };

export function chooseView(saved: Outcome<WizardSaved | null>, nodes: Outcome<NodeSpec[]>): Entry {
  const value = saved.ok ? saved.value : null;
  if (value && value.step !== "done") return { view: "wizard", state: resume(value), notice: null };
  if (nodes.ok && nodes.value.length === 0) {
    // Nothing is set up (a finished wizard whose inventory was since emptied starts again, with
    // the machines it knew filled in).
    const state = value ? { ...resume({ ...value, step: "welcome" }) } : initialState();
    const notice = saved.ok ? null : `Twofold could not read the saved setup (${saved.error.message}); starting afresh.`;
    return { view: "wizard", state, notice };
  }
  // Nodes exist, or the inventory could not be read: the dashboard shows the nodes or the error.
  return { view: "dashboard" };
}

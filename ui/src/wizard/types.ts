// The shapes the setup wizard's Tauri commands take and return (src-tauri/src/wizard.rs, serde of
// the engine's types in src/provision). Field names are the engine's snake_case; command argument
// names are camelCase (Tauri's convention).

export type Role = "host" | "storage";

export interface MachineInput {
  name: string;
  role: Role;
  address: string;
  ssh_port: number;
  user: string;
  /** Only ever in memory: never saved, never logged. */
  password?: string;
  /** Path to a private key file on this computer. */
  key?: string;
  /** OpenSSH public key line, pinned once the user confirmed its fingerprint. */
  host_key?: string;
}

export interface ProtectVm {
  name: string;
  vcpus: number;
  ram_mib: number;
  disk_gib: number;
  priority: number;
  critical: boolean;
}

export interface SetupRequest {
  machines: MachineInput[];
  protect: ProtectVm[];
  allow_emulation: boolean;
}

export interface HostKeySeen {
  name: string;
  address: string;
  key: string;
  fingerprint: string;
  /** The machine's pinned key, if it had one and it differs. */
  changed_from?: string;
}

export type ProgressEvent =
  | { kind: "begin"; phase: string; total: number | null }
  | { kind: "update"; done: number; total: number | null }
  | { kind: "message"; line: string }
  | { kind: "finish" };

export type CheckId = "os" | "cpu_virt" | "cores" | "ram" | "disk" | "packages" | "clock" | "reach" | "resolve";
export type CheckStatus = "pass" | "warn" | "fail";

export interface CheckResult {
  node: string;
  peer?: string;
  check: CheckId;
  status: CheckStatus;
  found: string;
  reason: string;
  fix: string;
}

export interface RamFit {
  total_mib: number;
  reserved_mib: number;
  capacity_mib: number;
  need_mib: number;
  short_mib: number;
  spare_mib: number;
}

export interface VcpuFit {
  cores: number;
  reserved_cores: number;
  vcpus_per_core: number;
  capacity: number;
  need: number;
  over: number;
  spare: number;
}

export interface VmShortfall {
  vm: string;
  priority: number;
  ram_mib_short: number;
  vcpus_over: number;
  wider_than_host: boolean;
}

export interface HostVerdict {
  host: string;
  fits: boolean;
  ram: RamFit;
  vcpus: VcpuFit;
  not_fitting: VmShortfall[];
  free_disk_gib?: number;
}

export interface StoreNodeFit {
  node: string;
  free_gib: number | null;
  fits: boolean | null;
  short_gib: number;
}

export interface StoreVerdict {
  need_gib: number;
  nodes: StoreNodeFit[];
  fits: boolean | null;
}

export interface SizingProblem {
  code: string;
  message: string;
  /** The engine also sends which host, storage node or VM it is about ("all" for everything). */
  subject?: string;
}

export interface SizingReport {
  ok: boolean;
  hosts: HostVerdict[];
  store: StoreVerdict;
  problems: SizingProblem[];
  /** Things worth knowing that are not problems; the engine's report has them (optional here). */
  notes?: string[];
}

export interface PreflightView {
  passed: boolean;
  summary: string;
  results: CheckResult[];
  sizing: SizingReport | null;
}

export interface StepInfo {
  id: string;
  node: string;
  title: string;
  why: string;
  changes: string[];
}

export interface PlanView {
  name: string;
  steps: StepInfo[];
}

export type StepStatus = "already_done" | "changed" | "failed" | "not_run";

export interface StepOutcome {
  id: string;
  node: string;
  title: string;
  status: StepStatus;
  job_id: string | null;
  done_by_previous_run: boolean;
  duration_ms: number;
}

export type UndoOutcome = { result: "not_needed" } | { result: "done" } | { result: "failed"; error: string };

export interface StepFailure {
  step: string;
  node: string;
  title: string;
  /** 1-based position in the plan. */
  number: number;
  phase: "check" | "apply" | "confirm";
  code: string;
  message: string;
  undo: UndoOutcome;
  what_to_do: string;
}

export interface ApplyReport {
  plan: string;
  run_id: string;
  outcome: "completed" | "failed" | "cancelled";
  steps: StepOutcome[];
  changed: number;
  already_done: number;
  resumed_from: { run_id: string; state: string; error: string | null; changed: string[] } | null;
  failure: StepFailure | null;
}

export interface StepVerdict {
  id: string;
  node: string;
  title: string;
  passed: boolean;
  reason: string | null;
}

export interface VerifyReport {
  plan: string;
  steps: StepVerdict[];
  passed: number;
  failed: number;
}

export type RuleId = "n_plus_one" | "replicated_storage" | "backups" | "offsite";

export interface Rule {
  id: RuleId;
  title: string;
  state: "ok" | "warn" | "missing";
  detail: string;
}

export type WizardStep = "welcome" | "machines" | "trust" | "preflight" | "plan" | "apply" | "verify" | "done";

/** What `wizard_save` keeps between runs of the app: never a password. */
export interface WizardSaved {
  step: WizardStep;
  machines: MachineInput[];
  protect: ProtectVm[];
  allow_emulation: boolean;
  lab: boolean;
}

export interface LabMachines {
  /** With `password` set to the lab's root password and `host_key` empty. */
  machines: MachineInput[];
  allow_emulation: boolean;
}

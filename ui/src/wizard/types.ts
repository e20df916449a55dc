// The shapes the setup wizard's Tauri commands take and return (src-tauri/src/wizard.rs and the
// engine's types in src/provision), generated from the Rust types into ../bindings (see
// src-tauri/src/bindings.rs): never written by hand here. Field names are the engine's
// snake_case; command argument names are camelCase (Tauri's convention). Below them, the few
// shapes that exist only in the window.

export type { Role } from "../bindings/Role";
export type { MachineInput } from "../bindings/MachineInput";
export type { VmSpec as ProtectVm } from "../bindings/VmSpec";
export type { SetupRequest } from "../bindings/SetupRequest";
export type { HostKeySeen } from "../bindings/HostKeySeen";
export type { ProgressEvent } from "../bindings/ProgressEvent";
export type { StepRef } from "../bindings/StepRef";
export type { CheckId } from "../bindings/CheckId";
export type { Status as CheckStatus } from "../bindings/Status";
export type { CheckResult } from "../bindings/CheckResult";
export type { RamFit } from "../bindings/RamFit";
export type { VcpuFit } from "../bindings/VcpuFit";
export type { VmShortfall } from "../bindings/VmShortfall";
export type { HostVerdict } from "../bindings/HostVerdict";
export type { StoreNodeFit } from "../bindings/StoreNodeFit";
export type { StoreVerdict } from "../bindings/StoreVerdict";
export type { Problem as SizingProblem } from "../bindings/Problem";
export type { SizingReport } from "../bindings/SizingReport";
export type { PreflightView } from "../bindings/PreflightView";
export type { StepInfo } from "../bindings/StepInfo";
export type { PlanView } from "../bindings/PlanView";
export type { StepStatus } from "../bindings/StepStatus";
export type { StepOutcome } from "../bindings/StepOutcome";
export type { UndoOutcome } from "../bindings/UndoOutcome";
export type { StepFailure } from "../bindings/StepFailure";
export type { ApplyReport } from "../bindings/ApplyReport";
export type { StepVerdict } from "../bindings/StepVerdict";
export type { VerifyReport } from "../bindings/VerifyReport";
export type { Rule } from "../bindings/Rule";
export type { RuleState } from "../bindings/RuleState";
export type { Scorecard } from "../bindings/Scorecard";
export type { LabMachines } from "../bindings/LabMachines";

import type { MachineInput } from "../bindings/MachineInput";
import type { VmSpec } from "../bindings/VmSpec";

/** The four rules' ids, in the order the engine reports them (`Rule.id`). */
export type RuleId = "n_plus_one" | "replicated_storage" | "backups" | "offsite";

export type WizardStep = "welcome" | "machines" | "trust" | "preflight" | "plan" | "apply" | "verify" | "done";

/** What `wizard_save` keeps between runs of the app: never a password. */
export interface WizardSaved {
  step: WizardStep;
  machines: MachineInput[];
  protect: VmSpec[];
  allow_emulation: boolean;
  lab: boolean;
}

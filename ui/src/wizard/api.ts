// The Tauri commands of the setup wizard (src-tauri/src/wizard.rs). Every call rejects with a
// UiError ({code, message}), whatever Tauri itself rejected with, so the wizard only ever
// branches on codes. Behind an interface so the wizard can be driven without Tauri.

import { Channel } from "@tauri-apps/api/core";

import { command, type AnswerOf, type ArgsOf, type CommandName } from "../command";
import { toUiError } from "../errors";
import type {
  ApplyReport,
  HostKeySeen,
  LabMachines,
  MachineInput,
  PlanView,
  PreflightView,
  ProgressEvent,
  Scorecard,
  SetupRequest,
  VerifyReport,
  WizardSaved,
} from "./types";

export type OnProgress = (e: ProgressEvent) => void;

export interface WizardApi {
  load(): Promise<WizardSaved | null>;
  save(state: WizardSaved): Promise<void>;
  clear(): Promise<void>;
  scanHostKeys(machines: MachineInput[]): Promise<HostKeySeen[]>;
  preflight(request: SetupRequest, onProgress: OnProgress): Promise<PreflightView>;
  plan(request: SetupRequest): Promise<PlanView>;
  apply(request: SetupRequest, onProgress: OnProgress): Promise<ApplyReport>;
  cancel(): Promise<void>;
  verify(request: SetupRequest): Promise<VerifyReport>;
  scorecard(): Promise<Scorecard>;
  labTry(onProgress: OnProgress): Promise<LabMachines>;
}

async function call<K extends CommandName>(cmd: K, ...args: {} extends ArgsOf<K> ? [ArgsOf<K>?] : [ArgsOf<K>]): Promise<AnswerOf<K>> {
  try {
    return await command(cmd, ...args);
  } catch (err) {
    throw toUiError(err);
  }
}

function channel(onProgress: OnProgress): Channel<ProgressEvent> {
  const ch = new Channel<ProgressEvent>();
  ch.onmessage = onProgress;
  return ch;
}

/** Passwords must never reach `wizard_save`; the state module strips them, this makes sure. */
function withoutSecrets(state: WizardSaved): WizardSaved {
  return { ...state, machines: state.machines.map(({ password: _p, ...m }) => m) };
}

export const tauriApi: WizardApi = {
  // The saved state is the window's own (the app stores it without reading it).
  load: async () => (await call("wizard_load")) as WizardSaved | null,
  save: async (state) => void (await call("wizard_save", { state: withoutSecrets(state) })),
  clear: async () => void (await call("wizard_clear")),
  scanHostKeys: (machines) => call("scan_host_keys", { machines }),
  preflight: (request, onProgress) => call("setup_preflight", { request, onProgress: channel(onProgress) }),
  plan: (request) => call("setup_plan", { request }),
  apply: (request, onProgress) => call("setup_apply", { request, onProgress: channel(onProgress) }),
  cancel: async () => void (await call("setup_cancel")),
  verify: (request) => call("setup_verify", { request }),
  scorecard: () => call("scorecard"),
  labTry: (onProgress) => call("lab_try", { onProgress: channel(onProgress) }),
};

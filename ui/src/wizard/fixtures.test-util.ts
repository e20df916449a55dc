// Shared test data: what the commands answer for a good four-machine setup.

import type { ApplyReport, HostKeySeen, HostVerdict, PreflightView, SizingReport, WizardSaved } from "./types";
import { blankMachine, type MachineDraft } from "./validate";

export const good = (): MachineDraft[] => [
  { ...blankMachine("host", "host1"), address: "192.0.2.11", password: "pw" },
  { ...blankMachine("host", "host2"), address: "192.0.2.12", password: "pw" },
  { ...blankMachine("storage", "stor1"), address: "192.0.2.21", password: "pw" },
  { ...blankMachine("storage", "stor2"), address: "192.0.2.22", key: "/root/.ssh/id_ed25519" },
];

export const seen = (ms: MachineDraft[], over: Partial<HostKeySeen> = {}): HostKeySeen[] =>
  ms.map((m) => ({
    name: m.name,
    address: m.address,
    key: `ssh-ed25519 AAAA${m.name}`,
    fingerprint: `SHA256:${m.name}fingerprintfingerprintfingerprint`,
    ...over,
  }));

export const host = (over: Partial<HostVerdict> = {}): HostVerdict => ({
  host: "host1",
  fits: true,
  ram: { total_mib: 32768, reserved_mib: 3276, capacity_mib: 29492, need_mib: 16384, short_mib: 0, spare_mib: 13108 },
  vcpus: { cores: 8, reserved_cores: 1, vcpus_per_core: 4, capacity: 28, need: 8, over: 0, spare: 20 },
  not_fitting: [],
  ...over,
});

export const sizing = (over: Partial<SizingReport> = {}): SizingReport => ({
  ok: true,
  params: { vcpus_per_core: 4, host_reserve_ram_mib: 2048, host_reserve_ram_percent: 10, host_reserve_cores: 1 },
  notes: [],
  hosts: [host(), host({ host: "host2" })],
  store: { need_gib: 100, nodes: [{ node: "stor1", free_gib: 500, fits: true, short_gib: 0 }], fits: true },
  problems: [],
  ...over,
});

export const preflight = (passed = true, s: SizingReport | null = null): PreflightView => ({
  passed,
  summary: passed ? "All 4 machines are ready." : "1 check failed.",
  results: [],
  sizing: s,
});

export const report = (outcome: ApplyReport["outcome"] = "completed"): ApplyReport => ({
  plan: "platform",
  run_id: "r1",
  outcome,
  steps: [
    { id: "a", node: "host1", title: "A", status: "changed", job_id: "j1", done_by_previous_run: false, duration_ms: 5 },
    { id: "b", node: "stor1", title: "B", status: outcome === "completed" ? "already_done" : outcome === "failed" ? "failed" : "not_run", job_id: null, done_by_previous_run: false, duration_ms: 1 },
  ],
  changed: 1,
  already_done: outcome === "completed" ? 1 : 0,
  resumed_from: null,
  failure: null,
});

export const saved = (over: Partial<WizardSaved> = {}): WizardSaved => ({
  step: "preflight",
  machines: [
    { name: "host1", role: "host", address: "192.0.2.11", ssh_port: 22, user: "root", host_key: "ssh-ed25519 AAAAhost1" },
    { name: "host2", role: "host", address: "192.0.2.12", ssh_port: 22, user: "root", key: "/k" },
    { name: "stor1", role: "storage", address: "192.0.2.21", ssh_port: 22, user: "root", key: "/k" },
    { name: "stor2", role: "storage", address: "192.0.2.22", ssh_port: 22, user: "root", key: "/k" },
  ],
  protect: [],
  allow_emulation: false,
  lab: false,
  ...over,
});

// The dashboard's live part as plain data: what the health header, the node cards (with their
// charts) and the migrate action show, from the engine's PlatformStatus and the recent history.
// No DOM here, so all of it is unit-tested.

import type { Tone } from "../format";
import type { Health, History, LiveVm, MigrationStats, NodeState, NodeStatus, PlatformStatus, Point, RuleState } from "./types";

export function healthTone(h: Health): Tone {
  return h === "healthy" ? "ok" : h === "degraded" ? "warn" : h === "down" ? "bad" : "idle";
}

export function stateTone(s: NodeState): Tone {
  return s === "up" ? "ok" : s === "degraded" ? "warn" : "bad";
}

export function ruleTone(s: RuleState): Tone {
  return s === "ok" ? "ok" : s === "warn" ? "warn" : "bad";
}

export interface Meter {
  label: string;
  /** 0-100, or null when not known (shown as an empty bar with a dash). */
  percent: number | null;
  text: string;
}

export interface NodeCard {
  name: string;
  role: string;
  address: string;
  state: NodeState;
  tone: Tone;
  detail: string;
  meters: Meter[];
  /** SVG polyline points of CPU use over time, in a 0..CHART_W x 0..CHART_H box. */
  cpuChart: string;
  memChart: string;
}

export const CHART_W = 120;
export const CHART_H = 32;

const clamp = (v: number) => Math.max(0, Math.min(100, v));

/** A polyline of percentages, oldest left, newest at the right edge; gaps (null) are skipped. */
export function sparkline(values: (number | null)[], w = CHART_W, h = CHART_H): string {
  if (values.length === 0) return "";
  const step = values.length > 1 ? w / (values.length - 1) : 0;
  const pts: string[] = [];
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) return;
    const x = values.length > 1 ? i * step : w;
    const y = h - (clamp(v) / 100) * h;
    pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
  });
  return pts.join(" ");
}

function gib(mib: number): string {
  return (mib / 1024).toFixed(1);
}

export function nodeCard(n: NodeStatus, points: Point[] = []): NodeCard {
  const u = n.usage;
  const meters: Meter[] = [
    {
      label: "CPU",
      percent: u?.cpu_percent ?? null,
      text: u ? (u.cpu_percent === null ? `measuring… (${u.cores} cores)` : `${Math.round(u.cpu_percent)}% of ${u.cores} cores`) : "—",
    },
    {
      label: "Memory",
      percent: u && u.mem_total_mib > 0 ? clamp((u.mem_used_mib / u.mem_total_mib) * 100) : null,
      text: u ? `${gib(u.mem_used_mib)} of ${gib(u.mem_total_mib)} GiB` : "—",
    },
    {
      label: "Disk",
      percent: u && u.disk_total_gib > 0 ? clamp((u.disk_used_gib / u.disk_total_gib) * 100) : null,
      text: u ? `${u.disk_used_gib.toFixed(1)} of ${u.disk_total_gib.toFixed(1)} GiB` : "—",
    },
  ];
  return {
    name: n.name,
    role: n.role === "host" ? "Virtualization host" : "Storage node",
    address: n.address,
    state: n.state,
    tone: stateTone(n.state),
    detail: n.detail,
    meters,
    cpuChart: sparkline(points.map((p) => p.cpu_percent)),
    memChart: sparkline(points.map((p) => p.mem_percent)),
  };
}

export interface LiveView {
  health: Health;
  healthLabel: string;
  tone: Tone;
  summary: string;
  nodes: NodeCard[];
  rules: { id: string; title: string; detail: string; tone: Tone }[];
}

export function liveView(s: PlatformStatus, history: History): LiveView {
  return {
    health: s.health,
    // The engine's words: "Healthy" only when every rule holds.
    healthLabel: s.headline,
    tone: healthTone(s.health),
    summary: s.summary,
    nodes: s.nodes.map((n) => nodeCard(n, history[n.name] ?? [])),
    rules: s.rules.map((r) => ({ id: r.id, title: r.title, detail: r.detail, tone: ruleTone(r.state) })),
  };
}

/** Where a VM can go: every host that is up, other than the one it runs on. Only a running VM moves. */
export function migrationTargets(vm: LiveVm, s: PlatformStatus): string[] {
  if (vm.state !== "running") return [];
  return s.nodes.filter((n) => n.role === "host" && n.state === "up" && n.name !== vm.host).map((n) => n.name);
}

/** Why a VM has no migrate action, or null when it has one. */
export function whyNoMigration(vm: LiveVm, s: PlatformStatus): string | null {
  if (vm.state !== "running") return `${vm.name} is ${vm.state}: only a running VM can be moved live.`;
  if (migrationTargets(vm, s).length === 0) return "No other host is up to take it.";
  return null;
}

export function migrationDone(m: MigrationStats): string {
  const pause = m.downtime_ms === null ? "" : `, paused ${m.downtime_ms} ms`;
  return `${m.vm} moved from ${m.from} to ${m.to} in ${(m.wall_ms / 1000).toFixed(1)} s${pause}.`;
}

/** "45% (58 MiB of 128 MiB)": how far a transfer is. */
export function transferLine(done: number, total: number): string {
  const mib = (b: number) => `${Math.round(b / (1024 * 1024))} MiB`;
  const pct = total > 0 ? Math.min(100, Math.round((done / total) * 100)) : 0;
  return `${pct}% (${mib(done)} of ${mib(total)})`;
}

// The N+1 sizing report as a picture: for each host, a bar for memory and one for vCPUs, showing
// what the host keeps for itself, what the critical VMs need, and what is spare or missing. Pure
// geometry and wording; render-preflight.ts draws the bars as SVG rectangles.
//
// A bar's scale is the larger of the host's size and what is asked of it, so a shortfall sticks
// out past the end of the host (the "short" segment, drawn red) instead of being clipped.

import { formatMemory } from "../format";
import type { HostVerdict, SizingReport, StoreNodeFit, StoreVerdict } from "./types";

/** Bars are drawn in a 0..BAR_UNITS coordinate space (the SVG stretches it to the width). */
export const BAR_UNITS = 100;

export type SegmentKind = "reserve" | "need" | "short" | "spare";

export interface Segment {
  kind: SegmentKind;
  x: number;
  width: number;
  /** For a tooltip / text alternative: "Kept for the host: 3.2 GiB". */
  label: string;
}

export interface Bar {
  /** "Memory", "vCPUs", "Disk". */
  title: string;
  segments: Segment[];
  /** Where the host ends (its size on the scale); the short segment starts here. */
  limitX: number;
  short: boolean;
  /** The whole bar in one sentence (also the SVG's text alternative). */
  caption: string;
}

export interface HostPicture {
  host: string;
  fits: boolean;
  bars: Bar[];
  /** One sentence per critical VM that would not start on this host alone. */
  notFitting: string[];
}

export interface StorePicture {
  needGib: number;
  /** null when no storage node's free space is known. */
  fits: boolean | null;
  nodes: { node: string; fits: boolean | null; bar: Bar | null; caption: string }[];
}

export interface SizingPicture {
  ok: boolean;
  hosts: HostPicture[];
  store: StorePicture;
  problems: string[];
  notes: string[];
}

/** Engine numbers are unsigned, but the window must not draw NaN if one is missing. */
function n(x: unknown): number {
  return typeof x === "number" && Number.isFinite(x) && x > 0 ? x : 0;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export function formatGib(gib: number): string {
  return formatMemory(gib * 1024);
}

function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}

/**
 * The segments of one bar: [reserve | need … | spare] within the host, and a short segment past
 * its end when the need does not fit. `capacity` is what the VMs may use (size minus reserve).
 */
export function barSegments(
  size: number,
  reserve: number,
  need: number,
  label: (kind: SegmentKind, amount: number) => string,
): { segments: Segment[]; limitX: number; short: boolean } {
  const total = n(size);
  const res = Math.min(n(reserve), total);
  const capacity = total - res;
  const want = n(need);
  const scale = Math.max(total, res + want, 1);
  const u = (v: number) => round((v / scale) * BAR_UNITS);
  const segments: Segment[] = [];
  const add = (kind: SegmentKind, from: number, amount: number) => {
    if (amount > 0) segments.push({ kind, x: u(from), width: u(amount), label: label(kind, amount) });
  };
  const fitting = Math.min(want, capacity);
  const short = want - fitting;
  add("reserve", 0, res);
  add("need", res, fitting);
  add("spare", res + fitting, capacity - fitting);
  add("short", total, short);
  return { segments, limitX: u(total), short: short > 0 };
}

export function ramBar(h: HostVerdict): Bar {
  const r = h.ram;
  const label = (kind: SegmentKind, mib: number) => `${SEGMENT_NAMES[kind]}: ${formatMemory(mib)}`;
  const g = barSegments(r.total_mib, r.reserved_mib, r.need_mib, label);
  const base = `Memory: the critical VMs need ${formatMemory(n(r.need_mib))} of the ${formatMemory(n(r.capacity_mib))} VMs may use (${formatMemory(n(r.reserved_mib))} of ${formatMemory(n(r.total_mib))} is kept for the host itself).`;
  const end = g.short
    ? ` Short by ${formatMemory(Math.max(n(r.short_mib), n(r.need_mib) - n(r.capacity_mib)))}.`
    : ` ${formatMemory(n(r.spare_mib))} spare.`;
  return { title: "Memory", ...g, caption: base + end };
}

export function vcpuBar(h: HostVerdict): Bar {
  const v = h.vcpus;
  // vCPUs are counted per core left after the reserve; the reserve is drawn in the same unit.
  const ratio = n(v.vcpus_per_core) >= 1 ? n(v.vcpus_per_core) : 1;
  const reserve = n(v.reserved_cores) * ratio;
  const label = (kind: SegmentKind, amount: number) => `${SEGMENT_NAMES[kind]}: ${plural(Math.round(amount), "vCPU")}`;
  const g = barSegments(n(v.capacity) + reserve, reserve, v.need, label);
  const usable = Math.max(0, n(v.cores) - n(v.reserved_cores));
  const base = `vCPUs: the critical VMs need ${n(v.need)} of ${n(v.capacity)} (${plural(usable, "core")} of ${n(v.cores)}, up to ${ratio} vCPUs each; ${plural(n(v.reserved_cores), "core")} kept for the host).`;
  const end = g.short ? ` ${plural(Math.max(n(v.over), n(v.need) - n(v.capacity)), "vCPU")} too many.` : ` ${plural(n(v.spare), "vCPU")} spare.`;
  return { title: "vCPUs", ...g, caption: base + end };
}

export const SEGMENT_NAMES: Record<SegmentKind, string> = {
  reserve: "Kept for the host",
  need: "Critical VMs",
  spare: "Spare",
  short: "Missing",
};

/** "web (priority 80) would not start: 2 GiB of memory missing, 3 vCPUs too many." */
export function shortfallSentence(s: HostVerdict["not_fitting"][number]): string {
  const why: string[] = [];
  if (n(s.ram_mib_short) > 0) why.push(`${formatMemory(s.ram_mib_short)} of memory missing`);
  if (n(s.vcpus_over) > 0) why.push(`${plural(s.vcpus_over, "vCPU")} too many`);
  if (s.wider_than_host) why.push("it has more vCPUs than the host has cores");
  return `${s.vm} (priority ${n(s.priority)}) would not start${why.length ? `: ${why.join(", ")}` : ""}.`;
}

export function hostPicture(h: HostVerdict): HostPicture {
  const bars = [ramBar(h), vcpuBar(h)];
  return {
    host: h.host,
    // The engine's verdict decides; the bars only show why.
    fits: h.fits === true,
    bars,
    notFitting: (h.not_fitting ?? []).map(shortfallSentence),
  };
}

export function storeNodePicture(s: StoreNodeFit, needGib: number): StorePicture["nodes"][number] {
  if (s.free_gib === null || s.free_gib === undefined) {
    return { node: s.node, fits: null, bar: null, caption: `${s.node}: free space unknown; it needs ${formatGib(n(needGib))}.` };
  }
  const label = (kind: SegmentKind, gib: number) => `${kind === "need" ? "VM disks" : SEGMENT_NAMES[kind]}: ${formatGib(gib)}`;
  const g = barSegments(s.free_gib, 0, needGib, label);
  const caption = g.short
    ? `${s.node}: the VM disks need ${formatGib(n(needGib))}, ${formatGib(n(s.free_gib))} is free: short by ${formatGib(Math.max(n(s.short_gib), n(needGib) - n(s.free_gib)))}.`
    : `${s.node}: the VM disks need ${formatGib(n(needGib))} of ${formatGib(n(s.free_gib))} free.`;
  return { node: s.node, fits: s.fits, bar: { title: "Disk", ...g, caption }, caption };
}

export function storePicture(s: StoreVerdict): StorePicture {
  return { needGib: n(s.need_gib), fits: s.fits, nodes: (s.nodes ?? []).map((x) => storeNodePicture(x, s.need_gib)) };
}

export function sizingPicture(r: SizingReport): SizingPicture {
  return {
    ok: r.ok === true,
    hosts: (r.hosts ?? []).map(hostPicture),
    store: storePicture(r.store ?? { need_gib: 0, nodes: [], fits: null }),
    problems: (r.problems ?? []).map((p) => p.message),
    notes: r.notes ?? [],
  };
}

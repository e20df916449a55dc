// The preflight answer grouped for reading: one group per machine, in the order the user listed
// them, each with its checks in the order the engine runs them (src/provision/preflight.rs
// `CheckId::per_node`), the checks between machines last. Pure.

import type { CheckId, CheckResult, CheckStatus, Role } from "./types";

/** What each check is about, for people (the engine's `CheckId::label`, capitalized). */
export const CHECK_LABELS: Record<CheckId, string> = {
  os: "Operating system",
  cpu_virt: "Hardware virtualization",
  cores: "CPU cores",
  ram: "Memory",
  disk: "Free disk space",
  packages: "Software packages",
  clock: "Clock",
  reach: "Network connection",
  resolve: "Name resolution",
};

const ORDER: readonly CheckId[] = ["os", "cpu_virt", "cores", "ram", "disk", "packages", "clock", "reach", "resolve"];

export const STATUS_LABELS: Record<CheckStatus, string> = { pass: "Passed", warn: "Warning", fail: "Failed" };

export interface CheckRow {
  check: CheckId | string;
  /** "Memory", or "Network connection to stor1" for a check between two machines. */
  label: string;
  status: CheckStatus;
  found: string;
  reason: string;
  fix: string;
}

export interface NodeGroup {
  node: string;
  role: Role | null;
  /** The worst status of its checks: what the group's header shows. */
  worst: CheckStatus;
  counts: Record<CheckStatus, number>;
  checks: CheckRow[];
}

const RANK: Record<CheckStatus, number> = { pass: 0, warn: 1, fail: 2 };

function label(r: CheckResult): string {
  const base = CHECK_LABELS[r.check] ?? String(r.check).replace(/_/g, " ");
  return r.peer ? `${base} to ${r.peer}` : base;
}

/** An unknown status is treated as a failure: better to stop than to go on unchecked. */
function status(s: unknown): CheckStatus {
  return s === "pass" || s === "warn" || s === "fail" ? s : "fail";
}

export function groupResults(results: CheckResult[], machines: { name: string; role: Role }[]): NodeGroup[] {
  const order = new Map(machines.map((m, i) => [m.name, i]));
  const groups = new Map<string, CheckResult[]>();
  for (const r of results) {
    const list = groups.get(r.node);
    if (list) list.push(r);
    else groups.set(r.node, [r]);
  }
  const rank = (node: string) => order.get(node) ?? machines.length;
  const checkRank = (c: string) => {
    const i = ORDER.indexOf(c as CheckId);
    return i < 0 ? ORDER.length : i;
  };
  return [...groups.entries()]
    .map(([node, rs], firstSeen) => ({ node, rs, firstSeen }))
    .sort((a, b) => rank(a.node) - rank(b.node) || a.firstSeen - b.firstSeen)
    .map(({ node, rs }) => {
      const sorted = rs
        .map((r, i) => ({ r, i }))
        .sort(
          (a, b) =>
            checkRank(a.r.check) - checkRank(b.r.check) ||
            rank(a.r.peer ?? "") - rank(b.r.peer ?? "") ||
            a.i - b.i,
        )
        .map(({ r }) => r);
      const counts: Record<CheckStatus, number> = { pass: 0, warn: 0, fail: 0 };
      let worst: CheckStatus = "pass";
      const checks = sorted.map((r): CheckRow => {
        const s = status(r.status);
        counts[s]++;
        if (RANK[s] > RANK[worst]) worst = s;
        return { check: r.check, label: label(r), status: s, found: r.found ?? "", reason: r.reason ?? "", fix: r.fix ?? "" };
      });
      const m = machines.find((x) => x.name === node);
      return { node, role: m ? m.role : null, worst, counts, checks };
    });
}

/** "12 passed, 2 warnings, 1 failed" over all machines. */
export function countsSentence(groups: NodeGroup[]): string {
  const c = { pass: 0, warn: 0, fail: 0 };
  for (const g of groups) {
    c.pass += g.counts.pass;
    c.warn += g.counts.warn;
    c.fail += g.counts.fail;
  }
  const parts = [`${c.pass} passed`];
  if (c.warn) parts.push(`${c.warn} ${c.warn === 1 ? "warning" : "warnings"}`);
  if (c.fail) parts.push(`${c.fail} failed`);
  return parts.join(", ");
}

/** Machines the user listed that no check mentions: the engine should never do that, but a
 *  silent gap would read as "all fine". */
export function missingNodes(groups: NodeGroup[], machines: { name: string }[]): string[] {
  const seen = new Set(groups.map((g) => g.node));
  return machines.map((m) => m.name).filter((n) => !seen.has(n));
}

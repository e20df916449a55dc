// The Tauri commands the window calls (src-tauri/src/commands.rs, src-tauri/src/smoke.rs).

import { command } from "./command";
import { settle } from "./errors";
import type { NodeSpec, Outcome, Snapshot, UiError } from "./types";
import { EVENT_LIMIT } from "./view";

/** Only the nodes: at start, an empty inventory means the setup wizard. */
export function fetchNodes(): Promise<Outcome<NodeSpec[]>> {
  return settle(() => command("list_nodes"));
}

export async function fetchSnapshot(): Promise<Snapshot> {
  const [nodes, vms, events] = await Promise.all([
    settle(() => command("list_nodes")),
    settle(() => command("list_vms")),
    settle(() => command("recent_events", { limit: EVENT_LIMIT })),
  ]);
  return { nodes, vms, events };
}

/** What the window rendered, for the CI smoke test (TWOFOLD_DESKTOP_SMOKE). */
export interface SmokeReport {
  nodeRows: number;
  vmRows: number;
  eventRows: number;
  nodeNames: string[];
  error?: UiError;
  /** Which window showed: the setup wizard (its counts are 0) or the dashboard. */
  view?: "wizard" | "dashboard";
}

export async function smokeEnabled(): Promise<boolean> {
  try {
    return await command("smoke_enabled");
  } catch {
    return false; // outside Tauri (vite dev in a browser): no smoke test
  }
}

export function smokeReport(report: SmokeReport): Promise<void> {
  return command("smoke_report", { report }).then(() => undefined);
}

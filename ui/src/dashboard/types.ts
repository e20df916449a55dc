// The shapes of src/status (serde of PlatformStatus, NodeStatus, Usage) and of the desktop's
// status history (src-tauri/src/status.rs) and migration statistics.

import type { Role } from "../types";

export type NodeState = "up" | "degraded" | "down";
export type Health = "unconfigured" | "healthy" | "degraded" | "down";
export type RuleState = "ok" | "warn" | "missing";

export interface Usage {
  cores: number;
  cpu_percent: number | null;
  load1: number;
  mem_total_mib: number;
  mem_used_mib: number;
  disk_total_gib: number;
  disk_used_gib: number;
}

export interface NodeStatus {
  name: string;
  role: Role;
  address: string;
  state: NodeState;
  detail: string;
  code: string | null;
  usage: Usage | null;
  probe_ms: number;
}

export interface LiveVm {
  name: string;
  host: string;
  uuid: string;
  state: string;
  vcpus: number;
  memory_mib: number;
  persistent: boolean;
}

export interface Rule {
  id: string;
  title: string;
  state: RuleState;
  detail: string;
}

export interface PlatformStatus {
  checked_at: number;
  health: Health;
  summary: string;
  nodes: NodeStatus[];
  vms: LiveVm[];
  rules: Rule[];
}

export interface Point {
  at: number;
  cpu_percent: number | null;
  mem_percent: number | null;
  up: boolean;
}

export type History = Record<string, Point[]>;

export interface MigrationStats {
  vm: string;
  from: string;
  to: string;
  wall_ms: number;
  total_ms: number | null;
  downtime_ms: number | null;
}

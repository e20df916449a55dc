// The shapes the Tauri commands return (serde of the engine's types in src/inventory and
// src/nodes.rs) and the error shape every command rejects with.

export type Role = "host" | "storage";

export interface NodeSpec {
  name: string;
  role: Role;
  address: string;
  ssh_port: number;
  user: string;
  key?: string;
  host_key?: string;
}

export interface VmRecord {
  name: string;
  uuid: string;
  host: string | null;
  state: string;
  vcpus: number;
  memory_mib: number;
  protected: boolean;
  priority: number;
  updated_at: number;
}

export type Severity = "info" | "warning" | "error";

export interface InventoryEvent {
  id: number;
  /** Milliseconds since the Unix epoch. */
  at: number;
  severity: Severity;
  source: string;
  message: string;
}

/** What every command rejects with: a stable code to branch on and a message to show. */
export interface UiError {
  code: string;
  message: string;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: UiError };

/** One refresh: the three lists, each of which may have failed on its own. */
export interface Snapshot {
  nodes: Outcome<NodeSpec[]>;
  vms: Outcome<VmRecord[]>;
  events: Outcome<InventoryEvent[]>;
}

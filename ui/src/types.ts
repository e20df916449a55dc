// The shapes the Tauri commands return, generated from the engine's types (src/inventory,
// src/nodes.rs) and the error shape every command rejects with (src-tauri/src/error.rs) into
// ./bindings (see src-tauri/src/bindings.rs). Below them, the window's own shapes.

export type { Role } from "./bindings/Role";
export type { NodeSpec } from "./bindings/NodeSpec";
export type { VmRecord } from "./bindings/VmRecord";
export type { Severity } from "./bindings/Severity";
export type { InventoryEvent } from "./bindings/InventoryEvent";
export type { UiError } from "./bindings/UiError";

import type { InventoryEvent } from "./bindings/InventoryEvent";
import type { NodeSpec } from "./bindings/NodeSpec";
import type { UiError } from "./bindings/UiError";
import type { VmRecord } from "./bindings/VmRecord";

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: UiError };

/** One refresh: the three lists, each of which may have failed on its own. */
export interface Snapshot {
  nodes: Outcome<NodeSpec[]>;
  vms: Outcome<VmRecord[]>;
  events: Outcome<InventoryEvent[]>;
}

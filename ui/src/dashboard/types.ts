// The shapes of src/status (PlatformStatus and what it holds), of the desktop's status history
// (src-tauri/src/status.rs) and of migration statistics, generated from the Rust types into
// ../bindings (see src-tauri/src/bindings.rs).

export type { NodeState } from "../bindings/NodeState";
export type { Health } from "../bindings/Health";
export type { RuleState } from "../bindings/RuleState";
export type { Usage } from "../bindings/Usage";
export type { NodeStatus } from "../bindings/NodeStatus";
export type { VmView as LiveVm } from "../bindings/VmView";
export type { Rule } from "../bindings/Rule";
export type { PlatformStatus } from "../bindings/PlatformStatus";
export type { Point } from "../bindings/Point";
export type { MigrationStats } from "../bindings/MigrationStats";

import type { Point } from "../bindings/Point";

/** `status_history`: every node's recent points, oldest first. */
export type History = Record<string, Point[]>;

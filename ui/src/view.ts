// Turning one refresh (three command results) into what the window shows: table rows, the event
// list, the empty state and the error banners. Pure: render.ts puts it in the DOM.

import { bannersFor, type Banner } from "./errors";
import { formatAge, formatMemory, roleLabel, vmState, type Tone } from "./format";
import type { InventoryEvent, NodeSpec, Outcome, Snapshot, UiError, VmRecord } from "./types";

export const EMPTY_STATE = "No nodes yet: run `twofold lab up` or the setup wizard";

/** How many events the window asks for and lists. */
export const EVENT_LIMIT = 8;

export interface NodeRow {
  name: string;
  role: string;
  address: string;
}

export interface VmRow {
  name: string;
  host: string;
  state: string;
  tone: Tone;
  vcpus: string;
  memory: string;
}

export interface EventItem {
  id: number;
  age: string;
  severity: string;
  source: string;
  message: string;
}

export interface View {
  nodes: NodeRow[];
  vms: VmRow[];
  events: EventItem[];
  /** The empty-state text, when the inventory was read and holds no nodes; otherwise null. */
  empty: string | null;
  /** Lists that could not be read this time (their error is in `banners`). */
  failed: { nodes: boolean; vms: boolean; events: boolean };
  banners: Banner[];
}

/** What an empty table or list says: "none" only if it was read, else that it could not be. */
export const UNAVAILABLE = "Could not be read (see the message above)";

export function nodeRow(n: NodeSpec): NodeRow {
  const address = n.ssh_port && n.ssh_port !== 22 ? `${n.address}:${n.ssh_port}` : n.address;
  return { name: n.name, role: roleLabel(n.role), address };
}

export function vmRow(vm: VmRecord): VmRow {
  const { label, tone } = vmState(vm.state);
  return {
    name: vm.name,
    host: vm.host ?? "—",
    state: label,
    tone,
    vcpus: String(vm.vcpus),
    memory: formatMemory(vm.memory_mib),
  };
}

export function eventItem(e: InventoryEvent, nowMs: number): EventItem {
  return {
    id: e.id,
    age: formatAge(e.at, nowMs),
    severity: e.severity,
    source: e.source,
    message: e.message,
  };
}

export function buildView(s: Snapshot, nowMs: number): View {
  const errors: UiError[] = [];
  const nodes = valueOr(s.nodes, errors);
  const vms = valueOr(s.vms, errors);
  const events = valueOr(s.events, errors);
  return {
    nodes: (nodes ?? []).map(nodeRow),
    vms: (vms ?? []).map(vmRow),
    events: (events ?? []).slice(0, EVENT_LIMIT).map((e) => eventItem(e, nowMs)),
    // Only claim "no nodes" when the inventory was actually read.
    empty: nodes !== null && nodes.length === 0 ? EMPTY_STATE : null,
    failed: { nodes: nodes === null, vms: vms === null, events: events === null },
    banners: bannersFor(errors),
  };
}

function valueOr<T>(o: Outcome<T>, errors: UiError[]): T | null {
  if (o.ok) return o.value;
  errors.push(o.error);
  return null;
}

/** Split text on `backticks` so commands can be shown as code: "run `x` now" -> 3 parts. */
export function splitCode(text: string): { text: string; code: boolean }[] {
  return text
    .split("`")
    .map((part, i) => ({ text: part, code: i % 2 === 1 }))
    .filter((p) => p.text !== "");
}

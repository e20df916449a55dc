import { describe, expect, it } from "vitest";

import type { InventoryEvent, NodeSpec, Snapshot, VmRecord } from "./types";
import { buildView, EMPTY_STATE, EVENT_LIMIT, nodeRow, splitCode, vmRow } from "./view";

const NOW = 1_700_000_000_000;

const node = (name: string, role: "host" | "storage", address: string, ssh_port = 22): NodeSpec => ({
  name,
  role,
  address,
  ssh_port,
  user: "root",
});

const vm = (over: Partial<VmRecord> = {}): VmRecord => ({
  name: "web",
  uuid: "u1",
  host: "host1",
  state: "running",
  vcpus: 2,
  memory_mib: 2048,
  protected: false,
  priority: 0,
  updated_at: NOW,
  ...over,
});

const event = (id: number, agoMs: number): InventoryEvent => ({
  id,
  at: NOW - agoMs,
  severity: "info",
  source: "host1",
  message: `event ${id}`,
});

const ok = <T>(value: T) => ({ ok: true as const, value });
const fail = (code: string, message = "boom") => ({ ok: false as const, error: { code, message } });

describe("rows", () => {
  it("turns a node into name, role and address", () => {
    expect(nodeRow(node("host1", "host", "10.0.0.1"))).toEqual({ name: "host1", role: "Host", address: "10.0.0.1" });
  });

  it("shows a non-standard SSH port with the address", () => {
    expect(nodeRow(node("stor1", "storage", "10.0.0.2", 2222)).address).toBe("10.0.0.2:2222");
  });

  it("turns a VM into display cells", () => {
    expect(vmRow(vm())).toEqual({
      name: "web",
      host: "host1",
      state: "Running",
      tone: "ok",
      vcpus: "2",
      memory: "2 GiB",
    });
    expect(vmRow(vm({ host: null, state: "shut off" })).host).toBe("—");
  });
});

describe("buildView", () => {
  it("lists what the inventory holds", () => {
    const s: Snapshot = {
      nodes: ok([node("host1", "host", "10.0.0.1"), node("stor1", "storage", "10.0.0.2")]),
      vms: ok([vm()]),
      events: ok([event(2, 60_000), event(1, 120_000)]),
    };
    const v = buildView(s, NOW);
    expect(v.nodes.map((n) => n.name)).toEqual(["host1", "stor1"]);
    expect(v.vms).toHaveLength(1);
    expect(v.events.map((e) => e.age)).toEqual(["1 min ago", "2 min ago"]);
    expect(v.empty).toBeNull();
    expect(v.failed).toEqual({ nodes: false, vms: false, events: false });
    expect(v.banners).toEqual([]);
  });

  it("shows the empty state when the inventory has no nodes", () => {
    const v = buildView({ nodes: ok([]), vms: ok([]), events: ok([]) }, NOW);
    expect(v.empty).toBe(EMPTY_STATE);
    expect(v.empty).toBe("No nodes yet: run `twofold lab up` or the setup wizard");
  });

  it("does not claim 'no nodes' when the inventory could not be read", () => {
    const err = "inventory database /var/lib/twofold/twofold.db: unable to open";
    const v = buildView({ nodes: fail("inventory", err), vms: fail("inventory", err), events: fail("inventory", err) }, NOW);
    expect(v.empty).toBeNull();
    expect(v.nodes).toEqual([]);
    expect(v.failed).toEqual({ nodes: true, vms: true, events: true });
    expect(v.banners).toEqual([{ code: "inventory", title: "Twofold could not read its inventory", message: err }]);
  });

  it("still shows the lists that worked when one fails", () => {
    const v = buildView({ nodes: ok([node("host1", "host", "h")]), vms: ok([vm()]), events: fail("io") }, NOW);
    expect(v.nodes).toHaveLength(1);
    expect(v.vms).toHaveLength(1);
    expect(v.events).toEqual([]);
    expect(v.failed).toEqual({ nodes: false, vms: false, events: true });
    expect(v.banners.map((b) => b.code)).toEqual(["io"]);
  });

  it("lists at most EVENT_LIMIT events", () => {
    const many = Array.from({ length: EVENT_LIMIT + 5 }, (_, i) => event(i, i * 1000));
    expect(buildView({ nodes: ok([]), vms: ok([]), events: ok(many) }, NOW).events).toHaveLength(EVENT_LIMIT);
  });
});

describe("splitCode", () => {
  it("marks backticked parts as code", () => {
    expect(splitCode(EMPTY_STATE)).toEqual([
      { text: "No nodes yet: run ", code: false },
      { text: "twofold lab up", code: true },
      { text: " or the setup wizard", code: false },
    ]);
    expect(splitCode("plain")).toEqual([{ text: "plain", code: false }]);
  });
});

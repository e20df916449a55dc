import { describe, expect, it } from "vitest";

import { liveView, migrationDone, migrationTargets, nodeCard, sparkline, transferLine, whyNoMigration } from "./live";
import type { MigrationStats, NodeStatus, PlatformStatus } from "./types";

function node(name: string, role: "host" | "storage", state: NodeStatus["state"] = "up"): NodeStatus {
  return {
    name,
    role,
    address: "10.251.77.11",
    state,
    detail: `${name} detail`,
    code: state === "down" ? "host_unreachable" : null,
    usage:
      state === "down"
        ? null
        : { cores: 4, cpu_percent: 25, load1: 0.5, mem_total_mib: 8192, mem_used_mib: 2048, disk_total_gib: 100, disk_used_gib: 10 },
    probe_ms: 4,
    store_waiting_s: null,
  };
}

function status(over: Partial<PlatformStatus> = {}): PlatformStatus {
  return {
    checked_at: 1,
    health: "healthy",
    headline: "Running, not yet protected",
    summary: "Running, not yet protected: no backups, no offsite copies. Every node is up.",
    nodes: [node("host1", "host"), node("host2", "host"), node("stor1", "storage"), node("stor2", "storage")],
    vms: [{ name: "web", host: "host1", uuid: "u", state: "running", vcpus: 1, memory_mib: 512, persistent: true }],
    rules: [{ id: "backups", title: "Backups", state: "missing", detail: "none" }],
    ...over,
  };
}

describe("sparkline", () => {
  it("maps percentages into the box, newest at the right, skipping gaps", () => {
    expect(sparkline([0, null, 100], 100, 10)).toBe("0.0,10.0 100.0,0.0");
    expect(sparkline([50], 100, 10)).toBe("100.0,5.0");
    expect(sparkline([], 100, 10)).toBe("");
    // Out-of-range values are clamped, not drawn outside the chart.
    expect(sparkline([150, -5], 100, 10)).toBe("0.0,0.0 100.0,10.0");
  });
});

describe("node cards", () => {
  it("show resource use as meters", () => {
    const c = nodeCard(node("host1", "host"));
    expect(c.role).toBe("Virtualization host");
    expect(c.meters.map((m) => m.percent)).toEqual([25, 25, 10]);
    expect(c.meters[1].text).toBe("2.0 of 8.0 GiB");
  });
  it("of a node that is down show no figures and say why", () => {
    const c = nodeCard(node("stor1", "storage", "down"));
    expect(c.tone).toBe("bad");
    expect(c.meters.every((m) => m.percent === null && m.text === "—")).toBe(true);
    expect(c.detail).toBe("stor1 detail");
  });
  it("say CPU is being measured before the second look", () => {
    const n = node("host1", "host");
    n.usage!.cpu_percent = null;
    expect(nodeCard(n).meters[0].text).toBe("measuring… (4 cores)");
  });
});

describe("the live view", () => {
  it("carries the health, the rules and each node's history", () => {
    const v = liveView(status({ health: "degraded", headline: "Degraded" }), {
      host1: [
        { at: 1, cpu_percent: 10, mem_percent: 20, up: true },
        { at: 2, cpu_percent: 90, mem_percent: 20, up: true },
      ],
    });
    expect(v.healthLabel).toBe("Degraded");
    expect(v.tone).toBe("warn");
    expect(v.nodes[0].cpuChart).toBe("0.0,28.8 120.0,3.2");
    expect(v.nodes[1].cpuChart).toBe("");
    expect(v.rules[0].tone).toBe("bad");
  });
  it("shows the engine's headline, never \"Healthy\" while a rule does not hold", () => {
    const v = liveView(status(), {});
    expect(v.healthLabel).toBe("Running, not yet protected");
    expect(v.summary).toContain("no backups");
  });
});

describe("migration", () => {
  it("offers every other host that is up, for a running VM only", () => {
    const s = status();
    expect(migrationTargets(s.vms[0], s)).toEqual(["host2"]);
    expect(whyNoMigration(s.vms[0], s)).toBeNull();
    const down = status({ nodes: [node("host1", "host"), node("host2", "host", "down")] });
    expect(migrationTargets(down.vms[0], down)).toEqual([]);
    expect(whyNoMigration(down.vms[0], down)).toContain("No other host");
    const off = { ...s.vms[0], state: "shutoff" as const };
    expect(whyNoMigration(off, s)).toContain("only a running VM");
  });
  it("reports what happened", () => {
    const stats: MigrationStats = {
      vm: "web",
      from: "host1",
      to: "host2",
      wall_ms: 3170,
      total_ms: 1300,
      downtime_ms: 106,
      setup_ms: null,
      data_total_bytes: null,
      data_processed_bytes: null,
      data_remaining_bytes: null,
      memory_total_bytes: null,
      memory_processed_bytes: null,
      memory_bps: null,
      memory_iterations: null,
      memory_dirty_rate: null,
      stats_from: "destination",
    };
    expect(migrationDone(stats)).toBe(
      "web moved from host1 to host2 in 3.2 s, paused 106 ms.",
    );
  });
});

describe("transferLine", () => {
  it("says how far a transfer is, in percent and MiB", () => {
    expect(transferLine(58 * 1024 * 1024, 128 * 1024 * 1024)).toBe("45% (58 MiB of 128 MiB)");
    expect(transferLine(10, 0)).toBe("0% (0 MiB of 0 MiB)");
    expect(transferLine(200, 100)).toBe("100% (0 MiB of 0 MiB)");
  });
});

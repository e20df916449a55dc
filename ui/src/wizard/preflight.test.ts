import { describe, expect, it } from "vitest";

import { countsSentence, groupResults, missingNodes } from "./preflight";
import type { CheckResult } from "./types";

const r = (node: string, check: CheckResult["check"], status: CheckResult["status"] = "pass", peer?: string): CheckResult => ({
  node,
  check,
  status,
  found: `${check} found`,
  reason: "why",
  fix: status === "pass" ? "" : "do this",
  ...(peer ? { peer } : {}),
});

const machines = [
  { name: "host1", role: "host" as const },
  { name: "host2", role: "host" as const },
  { name: "stor1", role: "storage" as const },
  { name: "stor2", role: "storage" as const },
];

describe("groupResults", () => {
  it("groups by machine in the user's order, checks in the engine's order, peers last", () => {
    const results = [
      r("stor1", "disk"),
      r("host1", "reach", "pass", "stor2"),
      r("host1", "clock", "warn"),
      r("host1", "reach", "pass", "host2"),
      r("host1", "os"),
      r("host2", "cpu_virt", "fail"),
      r("host1", "resolve", "pass", "stor1"),
      r("host1", "cpu_virt"),
    ];
    const g = groupResults(results, machines);
    expect(g.map((x) => x.node)).toEqual(["host1", "host2", "stor1"]);
    expect(g[0]!.checks.map((c) => c.label)).toEqual([
      "Operating system",
      "Hardware virtualization",
      "Clock",
      "Network connection to host2",
      "Network connection to stor2",
      "Name resolution to stor1",
    ]);
    expect(g[0]!.worst).toBe("warn");
    expect(g[0]!.counts).toEqual({ pass: 5, warn: 1, fail: 0 });
    expect(g[1]).toMatchObject({ node: "host2", role: "host", worst: "fail" });
    expect(g[2]).toMatchObject({ role: "storage", worst: "pass" });
  });

  it("puts machines it does not know last, in the order they came, with no role", () => {
    const g = groupResults([r("zed", "os"), r("stor2", "os"), r("alpha", "os")], machines);
    expect(g.map((x) => [x.node, x.role])).toEqual([
      ["stor2", "storage"],
      ["zed", null],
      ["alpha", null],
    ]);
  });

  it("treats an unknown status as a failure and labels unknown checks readably", () => {
    const odd = { ...r("host1", "os"), check: "new_thing", status: "maybe" } as unknown as CheckResult;
    const g = groupResults([odd], machines);
    expect(g[0]!.worst).toBe("fail");
    expect(g[0]!.checks[0]!.label).toBe("new thing");
  });

  it("keeps the found, reason and fix texts", () => {
    const g = groupResults([r("host1", "ram", "fail")], machines);
    expect(g[0]!.checks[0]).toEqual({ check: "ram", label: "Memory", status: "fail", found: "ram found", reason: "why", fix: "do this" });
  });

  it("is empty for no results", () => {
    expect(groupResults([], machines)).toEqual([]);
  });
});

describe("summaries", () => {
  it("counts over all machines", () => {
    const g = groupResults([r("host1", "os"), r("host1", "ram", "warn"), r("host2", "ram", "fail"), r("host2", "os", "warn")], machines);
    expect(countsSentence(g)).toBe("1 passed, 2 warnings, 1 failed");
    expect(countsSentence(groupResults([r("host1", "os"), r("host1", "ram", "warn")], machines))).toBe("1 passed, 1 warning");
    expect(countsSentence([])).toBe("0 passed");
  });

  it("names machines no result mentions", () => {
    const g = groupResults([r("host1", "os"), r("stor1", "os")], machines);
    expect(missingNodes(g, machines)).toEqual(["host2", "stor2"]);
  });
});

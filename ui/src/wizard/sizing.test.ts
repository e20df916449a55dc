import { describe, expect, it } from "vitest";

import { host, sizing } from "./fixtures.test-util";
import {
  BAR_UNITS,
  barSegments,
  formatGib,
  hostPicture,
  ramBar,
  shortfallSentence,
  sizingPicture,
  storeNodePicture,
  vcpuBar,
  type Segment,
} from "./sizing";

const kinds = (segs: Segment[]) => segs.map((s) => s.kind);
const width = (segs: Segment[], kind: string) => segs.find((s) => s.kind === kind)?.width ?? 0;
const label = () => "";

describe("barSegments", () => {
  it("draws reserve, need and spare inside the host when it fits", () => {
    const g = barSegments(100, 10, 60, label);
    expect(kinds(g.segments)).toEqual(["reserve", "need", "spare"]);
    expect(g.segments.map((s) => [s.x, s.width])).toEqual([
      [0, 10],
      [10, 60],
      [70, 30],
    ]);
    expect(g.limitX).toBe(BAR_UNITS);
    expect(g.short).toBe(false);
  });

  it("scales to the need when it does not fit, the missing part past the host's end", () => {
    // Host of 100, reserve 20, need 130: 80 fit, 50 missing; the scale is 150.
    const g = barSegments(100, 20, 130, label);
    expect(kinds(g.segments)).toEqual(["reserve", "need", "short"]);
    expect(g.short).toBe(true);
    expect(g.limitX).toBeCloseTo((100 / 150) * BAR_UNITS, 3);
    expect(width(g.segments, "need")).toBeCloseTo((80 / 150) * BAR_UNITS, 3);
    const short = g.segments.find((s) => s.kind === "short")!;
    expect(short.x).toBeCloseTo(g.limitX, 3);
    expect(short.x + short.width).toBeCloseTo(BAR_UNITS, 2);
  });

  it("fills the host exactly when the need equals what VMs may use", () => {
    const g = barSegments(100, 10, 90, label);
    expect(kinds(g.segments)).toEqual(["reserve", "need"]);
    expect(g.short).toBe(false);
  });

  it("shows only the reserve and spare with no critical VMs", () => {
    expect(kinds(barSegments(100, 10, 0, label).segments)).toEqual(["reserve", "spare"]);
  });

  it("never draws NaN or negative widths from bad numbers", () => {
    for (const [size, reserve, need] of [
      [0, 0, 0],
      [NaN, 5, 5],
      [-10, -1, 5],
      [10, 50, 5],
      [Infinity, 1, 1],
    ]) {
      const g = barSegments(size!, reserve!, need!, label);
      for (const s of g.segments) {
        expect(Number.isFinite(s.x) && Number.isFinite(s.width), `${size},${reserve},${need}`).toBe(true);
        expect(s.width).toBeGreaterThan(0);
        expect(s.x + s.width).toBeLessThanOrEqual(BAR_UNITS + 0.01);
      }
      expect(Number.isFinite(g.limitX)).toBe(true);
    }
  });

  it("keeps the reserve within the host", () => {
    const g = barSegments(10, 50, 0, label);
    expect(g.segments).toEqual([{ kind: "reserve", x: 0, width: 100, label: "" }]);
  });
});

describe("host bars", () => {
  it("describes memory in words", () => {
    const b = ramBar(host());
    expect(b.title).toBe("Memory");
    expect(b.short).toBe(false);
    expect(b.caption).toBe(
      "Memory: the critical VMs need 16 GiB of the 28.8 GiB VMs may use (3.2 GiB of 32 GiB is kept for the host itself). 12.8 GiB spare.",
    );
    expect(b.segments[0]!.label).toBe("Kept for the host: 3.2 GiB");
  });

  it("says how much memory is missing", () => {
    const h = host({ fits: false, ram: { total_mib: 8192, reserved_mib: 2048, capacity_mib: 6144, need_mib: 8192, short_mib: 2048, spare_mib: 0 } });
    const b = ramBar(h);
    expect(b.short).toBe(true);
    expect(b.caption).toContain("Short by 2 GiB.");
  });

  it("describes vCPUs with the reserve in vCPU units", () => {
    const b = vcpuBar(host());
    expect(b.caption).toBe(
      "vCPUs: the critical VMs need 8 of 28 (7 cores of 8, up to 4 vCPUs each; 1 core kept for the host). 20 vCPUs spare.",
    );
    // 4 reserved vCPUs (1 core × 4) on a scale of 32.
    expect(b.segments[0]).toMatchObject({ kind: "reserve", x: 0, width: 12.5 });
    expect(width(b.segments, "need")).toBe(25);
  });

  it("says how many vCPUs are too many", () => {
    const h = host({ fits: false, vcpus: { cores: 2, reserved_cores: 1, vcpus_per_core: 1, capacity: 1, need: 4, over: 3, spare: 0 } });
    const b = vcpuBar(h);
    expect(b.short).toBe(true);
    expect(b.caption).toContain("3 vCPUs too many.");
  });

  it("treats a ratio below 1 as 1 (no overcommit)", () => {
    const h = host({ vcpus: { cores: 4, reserved_cores: 1, vcpus_per_core: 0, capacity: 3, need: 1, over: 0, spare: 2 } });
    expect(vcpuBar(h).segments[0]).toMatchObject({ kind: "reserve", width: 25 });
  });

  it("lists the VMs that would not start, most important first as the engine sent them", () => {
    const h = host({
      fits: false,
      not_fitting: [
        { vm: "db", priority: 90, ram_mib_short: 2048, vcpus_over: 2, wider_than_host: false },
        { vm: "big", priority: 10, ram_mib_short: 0, vcpus_over: 0, wider_than_host: true },
      ],
    });
    const p = hostPicture(h);
    expect(p.fits).toBe(false);
    expect(p.notFitting).toEqual([
      "db (priority 90) would not start: 2 GiB of memory missing, 2 vCPUs too many.",
      "big (priority 10) would not start: it has more vCPUs than the host has cores.",
    ]);
  });

  it("says 1 vCPU, not 1 vCPUs", () => {
    expect(shortfallSentence({ vm: "a", priority: 0, ram_mib_short: 0, vcpus_over: 1, wider_than_host: false })).toBe(
      "a (priority 0) would not start: 1 vCPU too many.",
    );
    expect(shortfallSentence({ vm: "a", priority: 0, ram_mib_short: 0, vcpus_over: 0, wider_than_host: false })).toBe("a (priority 0) would not start.");
  });
});

describe("store", () => {
  it("draws each node's free space against the disks' need", () => {
    const n = storeNodePicture({ node: "stor1", free_gib: 500, fits: true, short_gib: 0 }, 100);
    expect(n.bar!.segments.map((s) => s.kind)).toEqual(["need", "spare"]);
    expect(n.caption).toBe("stor1: the VM disks need 100 GiB of 500 GiB free.");
  });

  it("shows a shortfall", () => {
    const n = storeNodePicture({ node: "stor2", free_gib: 50, fits: false, short_gib: 50 }, 100);
    expect(n.bar!.short).toBe(true);
    expect(n.caption).toContain("short by 50 GiB");
  });

  it("says when the free space is unknown, with no bar", () => {
    const n = storeNodePicture({ node: "stor2", free_gib: null, fits: null, short_gib: 0 }, 100);
    expect(n.bar).toBeNull();
    expect(n.caption).toBe("stor2: free space unknown; it needs 100 GiB.");
  });

  it("formats large sizes", () => {
    expect(formatGib(2048)).toBe("2 TiB");
    expect(formatGib(1.5)).toBe("1.5 GiB");
  });
});

describe("sizingPicture", () => {
  it("takes the verdicts, problems and notes from the report", () => {
    const p = sizingPicture(sizing({ ok: false, problems: [{ code: "ram_short", message: "host1 lacks 2 GiB", subject: "host1" }], notes: ["n"] }));
    expect(p.ok).toBe(false);
    expect(p.hosts.map((h) => h.host)).toEqual(["host1", "host2"]);
    expect(p.problems).toEqual(["host1 lacks 2 GiB"]);
    expect(p.notes).toEqual(["n"]);
    expect(p.store.nodes).toHaveLength(1);
  });

  it("copes with a report missing its lists", () => {
    const p = sizingPicture({ ok: true } as never);
    expect(p).toEqual({ ok: true, hosts: [], store: { needGib: 0, fits: null, nodes: [] }, problems: [], notes: [] });
  });
});

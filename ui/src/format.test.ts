import { describe, expect, it } from "vitest";

import { formatAge, formatMemory, roleLabel, vmState } from "./format";

describe("formatMemory", () => {
  it("keeps small sizes in MiB", () => {
    expect(formatMemory(0)).toBe("0 MiB");
    expect(formatMemory(512)).toBe("512 MiB");
    expect(formatMemory(1023)).toBe("1023 MiB");
  });

  it("uses GiB with at most one decimal", () => {
    expect(formatMemory(1024)).toBe("1 GiB");
    expect(formatMemory(1536)).toBe("1.5 GiB");
    expect(formatMemory(2048)).toBe("2 GiB");
    expect(formatMemory(3000)).toBe("2.9 GiB");
    expect(formatMemory(65536)).toBe("64 GiB");
  });

  it("uses TiB for very large machines", () => {
    expect(formatMemory(1024 * 1024)).toBe("1 TiB");
    expect(formatMemory(1.5 * 1024 * 1024)).toBe("1.5 TiB");
  });

  it("shows a dash for nonsense", () => {
    expect(formatMemory(-1)).toBe("—");
    expect(formatMemory(Number.NaN)).toBe("—");
  });
});

describe("formatAge", () => {
  const now = 1_700_000_000_000;
  it.each([
    [0, "just now"],
    [4_999, "just now"],
    [42_000, "42 s ago"],
    [5 * 60_000, "5 min ago"],
    [3 * 3_600_000, "3 h ago"],
    [3 * 86_400_000, "3 d ago"],
  ])("%i ms ago -> %s", (ago, text) => {
    expect(formatAge(now - ago, now)).toBe(text);
  });

  it("treats clock skew (an event from the future) as just now", () => {
    expect(formatAge(now + 10_000, now)).toBe("just now");
  });
});

describe("roleLabel", () => {
  it("names the two roles and passes others through", () => {
    expect(roleLabel("host")).toBe("Host");
    expect(roleLabel("storage")).toBe("Storage");
    expect(roleLabel("witness")).toBe("witness");
  });
});

describe("vmState", () => {
  it("maps libvirt states to labels and tones", () => {
    expect(vmState("running")).toEqual({ label: "Running", tone: "ok" });
    expect(vmState("shut off")).toEqual({ label: "Shut off", tone: "idle" });
    expect(vmState("shutoff")).toEqual({ label: "Shut off", tone: "idle" });
    expect(vmState("paused")).toEqual({ label: "Paused", tone: "warn" });
    expect(vmState("crashed")).toEqual({ label: "Crashed", tone: "bad" });
    expect(vmState("in_shutdown")).toEqual({ label: "In shutdown", tone: "warn" });
  });

  it("shows unknown states as they are, neutrally", () => {
    expect(vmState("Blocked")).toEqual({ label: "Blocked", tone: "idle" });
    expect(vmState("")).toEqual({ label: "Unknown", tone: "idle" });
  });
});

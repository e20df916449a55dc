import { describe, expect, it } from "vitest";

import type { NodeSpec } from "../types";
import { good, preflight, report, saved, seen, sizing } from "./fixtures.test-util";
import {
  blockedReason,
  chooseView,
  initialState,
  nextStep,
  prevStep,
  reduce,
  request,
  resume,
  secretsMissing,
  STEPS,
  toSaved,
  type Action,
  type WizardState,
} from "./state";
import type { WizardSaved } from "./types";

const at = (step: WizardState["step"], over: Partial<WizardState> = {}): WizardState => ({
  ...initialState(),
  machines: good(),
  step,
  ...over,
});

const run = (s: WizardState, ...actions: Action[]) => actions.reduce(reduce, s);

/** The machines with every scanned key confirmed. */
const trusted = (s: WizardState): WizardState => {
  const scanned = reduce(s, { type: "scanned", seen: seen(s.machines) });
  return scanned.machines.reduce((acc, m) => reduce(acc, { type: "trust", name: m.name, trusted: true }), scanned);
};

describe("step order", () => {
  it("goes forward one step and back one step", () => {
    expect(nextStep("welcome")).toBe("machines");
    expect(nextStep("verify")).toBe("done");
    expect(nextStep("done")).toBeNull();
    expect(prevStep("machines")).toBe("welcome");
    expect(prevStep("verify")).toBe("apply");
  });

  it("has no back from the ends", () => {
    expect(prevStep("welcome")).toBeNull();
    expect(prevStep("done")).toBeNull();
    expect(reduce(at("done"), { type: "back" }).step).toBe("done");
  });

  it("lists the eight steps", () => {
    expect(STEPS).toEqual(["welcome", "machines", "trust", "preflight", "plan", "apply", "verify", "done"]);
  });
});

describe("next is refused until the step is complete", () => {
  it("welcome → machines always", () => {
    expect(reduce(initialState(), { type: "next" }).step).toBe("machines");
  });

  it("machines: only with valid details", () => {
    const empty = { ...initialState(), step: "machines" as const };
    expect(blockedReason(empty)).toContain("missing or wrong");
    expect(reduce(empty, { type: "next" })).toBe(empty);
    expect(reduce(at("machines"), { type: "next" }).step).toBe("trust");
    const badVm = at("machines", { vms: [{ name: "", vcpus: "1", ram_mib: "1", disk_gib: "0", priority: "0", critical: true }] });
    expect(reduce(badVm, { type: "next" }).step).toBe("machines");
  });

  it("trust: only when every machine's scanned key is confirmed", () => {
    const s = at("trust");
    expect(blockedReason(s)).toContain("not read");
    const scanned = reduce(s, { type: "scanned", seen: seen(s.machines) });
    expect(blockedReason(scanned)).toBe("Confirm the identity of host1, host2, stor1, stor2 first.");
    const three = run(scanned, ...["host1", "host2", "stor1"].map((name): Action => ({ type: "trust", name, trusted: true })));
    expect(blockedReason(three)).toBe("Confirm the identity of stor2 first.");
    expect(reduce(three, { type: "next" }).step).toBe("trust");
    const all = reduce(three, { type: "trust", name: "stor2", trusted: true });
    expect(blockedReason(all)).toBeNull();
    expect(reduce(all, { type: "next" }).step).toBe("preflight");
    const undone = reduce(all, { type: "trust", name: "host2", trusted: false });
    expect(blockedReason(undone)).toContain("host2");
  });

  it("trust: a machine the scan did not answer for blocks", () => {
    const s = at("trust");
    const partial = reduce(s, { type: "scanned", seen: seen(s.machines).slice(0, 3) });
    expect(blockedReason(partial)).toBe("No identity was read from stor2.");
  });

  it("trust: a key scanned at another address does not count", () => {
    const s = at("trust");
    const moved = seen(s.machines).map((k) => (k.name === "host1" ? { ...k, address: "192.0.2.99" } : k));
    expect(blockedReason(reduce(s, { type: "scanned", seen: moved }))).toContain("host1");
  });

  it("trust: ignores unknown names", () => {
    const s = reduce(at("trust"), { type: "scanned", seen: seen(good()) });
    expect(reduce(s, { type: "trust", name: "nope", trusted: true })).toBe(s);
  });

  it("preflight: only when it passed and the hosts are big enough", () => {
    const s = at("preflight");
    expect(blockedReason(s)).toContain("not run");
    expect(blockedReason(reduce(s, { type: "preflight", view: preflight(false) }))).toContain("Some checks failed");
    expect(blockedReason(reduce(s, { type: "preflight", view: preflight(true, sizing({ ok: false })) }))).toContain("too small");
    expect(reduce(reduce(s, { type: "preflight", view: preflight(true, sizing()) }), { type: "next" }).step).toBe("plan");
  });

  it("apply: only after a completed run", () => {
    const s = at("apply");
    expect(reduce(reduce(s, { type: "applied", report: report("failed") }), { type: "next" }).step).toBe("apply");
    expect(reduce(reduce(s, { type: "applied", report: report("cancelled") }), { type: "next" }).step).toBe("apply");
    expect(reduce(reduce(s, { type: "applied", report: report("completed") }), { type: "next" }).step).toBe("verify");
  });

  it("verify: only when nothing failed", () => {
    const s = at("verify");
    const failed = reduce(s, { type: "verified", report: { plan: "p", steps: [], passed: 3, failed: 1 } });
    expect(reduce(failed, { type: "next" }).step).toBe("verify");
    const ok = reduce(s, { type: "verified", report: { plan: "p", steps: [], passed: 4, failed: 0 } });
    expect(reduce(ok, { type: "next" }).step).toBe("done");
  });
});

describe("edits make later answers stale", () => {
  const full = (): WizardState =>
    ({
      ...trusted(at("machines")),
      preflight: preflight(),
      plan: { name: "p", steps: [] },
      report: report(),
      verify: { plan: "p", steps: [], passed: 1, failed: 0 },
      scorecard: { headline: "Running, not yet protected", summary: "Not yet protected: no backups.", rules: [] },
    });

  it("clears the scan, checks, plan and results on any machine edit", () => {
    const s = reduce(full(), { type: "edit-machine", index: 0, field: "user", value: "admin" });
    expect(s).toMatchObject({ scan: null, preflight: null, plan: null, report: null, verify: null, scorecard: null });
    expect(s.machines[0]!.user).toBe("admin");
    // The pinned key stays: same machine, same address.
    expect(s.machines[0]!.host_key).toBe("ssh-ed25519 AAAAhost1");
  });

  it("forgets the pinned key when the address or port changes", () => {
    const a = reduce(full(), { type: "edit-machine", index: 0, field: "address", value: "192.0.2.99" });
    expect(a.machines[0]!.host_key).toBe("");
    const p = reduce(full(), { type: "edit-machine", index: 1, field: "port", value: "2222" });
    expect(p.machines[1]!.host_key).toBe("");
    const same = reduce(full(), { type: "edit-machine", index: 0, field: "address", value: " 192.0.2.11 " });
    expect(same.machines[0]!.host_key).toBe("ssh-ed25519 AAAAhost1");
  });

  it("clears 'password needed again' once a password is typed", () => {
    const s = at("machines", { machines: good().map((m) => ({ ...m, password: "", passwordNeeded: true })) });
    const t = reduce(s, { type: "edit-machine", index: 0, field: "password", value: "x" });
    expect(t.machines[0]!.passwordNeeded).toBe(false);
    expect(t.machines[1]!.passwordNeeded).toBe(true);
  });

  it("normalizes the role", () => {
    expect(reduce(at("machines"), { type: "edit-machine", index: 0, field: "role", value: "storage" }).machines[0]!.role).toBe("storage");
    expect(reduce(at("machines"), { type: "edit-machine", index: 2, field: "role", value: "evil" }).machines[2]!.role).toBe("host");
  });

  it("adds and removes machines and VMs, ignoring bad indexes", () => {
    let s = at("machines");
    s = reduce(s, { type: "add-machine" });
    expect(s.machines).toHaveLength(5);
    expect(s.machines[4]!.role).toBe("storage");
    s = reduce(s, { type: "remove-machine", index: 0 });
    expect(s.machines.map((m) => m.name)).toEqual(["host2", "stor1", "stor2", ""]);
    expect(reduce(s, { type: "remove-machine", index: 9 })).toBe(s);
    expect(reduce(s, { type: "edit-machine", index: 9, field: "name", value: "x" })).toBe(s);
    // With one host left, a new machine is a host.
    expect(reduce(s, { type: "add-machine" }).machines[4]!.role).toBe("host");

    s = reduce(s, { type: "add-vm" });
    s = reduce(s, { type: "edit-vm", index: 0, field: "name", value: "db" });
    s = reduce(s, { type: "set-vm-critical", index: 0, critical: false });
    expect(s.vms[0]).toMatchObject({ name: "db", critical: false });
    expect(reduce(s, { type: "edit-vm", index: 3, field: "name", value: "x" })).toBe(s);
    expect(reduce(s, { type: "set-vm-critical", index: 3, critical: true })).toBe(s);
    expect(reduce(s, { type: "remove-vm", index: 3 })).toBe(s);
    expect(reduce(s, { type: "remove-vm", index: 0 }).vms).toEqual([]);
  });

  it("a new scan keeps confirmations only for keys that did not change", () => {
    const s = trusted(at("trust"));
    const again = reduce(s, { type: "scanned", seen: seen(s.machines) });
    expect(blockedReason(again)).toBeNull();
    const other = seen(s.machines).map((k) => (k.name === "stor1" ? { ...k, key: "ssh-ed25519 AAAAother" } : k));
    const changed = reduce(s, { type: "scanned", seen: other });
    expect(changed.machines[2]!.host_key).toBe("");
    expect(blockedReason(changed)).toBe("Confirm the identity of stor1 first.");
  });

  it("a new scan with every key unchanged keeps the checks and the plan; a changed key drops them", () => {
    const s = { ...trusted(at("trust")), preflight: preflight(), plan: { name: "p", steps: [] } };
    const again = reduce(s, { type: "scanned", seen: seen(s.machines) });
    expect(again.preflight).toBe(s.preflight);
    expect(again.plan).toBe(s.plan);
    const other = seen(s.machines).map((k) => (k.name === "stor2" ? { ...k, key: "ssh-ed25519 AAAAnew" } : k));
    const changed = reduce(s, { type: "scanned", seen: other });
    expect(changed.preflight).toBeNull();
    expect(changed.plan).toBeNull();
  });

  it("a key the engine says changed must be confirmed again", () => {
    const s = trusted(at("trust"));
    const warned = seen(s.machines).map((k) => (k.name === "host2" ? { ...k, changed_from: "ssh-ed25519 AAAAold" } : k));
    expect(reduce(s, { type: "scanned", seen: warned }).machines[1]!.host_key).toBe("");
  });
});

describe("the lab", () => {
  it("fills in its machines, with their passwords and no old keys, and lands on the machines step", () => {
    const s = reduce(initialState(), {
      type: "lab-ready",
      lab: {
        allow_emulation: true,
        machines: good().map((m) => ({ name: m.name, role: m.role, address: m.address, ssh_port: 22, user: "root", password: "lab", host_key: "" })),
      },
    });
    expect(s).toMatchObject({ step: "machines", lab: true, allow_emulation: true });
    expect(s.machines.every((m) => m.password === "lab" && m.host_key === "")).toBe(true);
    expect(s.notice).toContain("lab's four machines");
    expect(blockedReason(s)).toBeNull();
  });
});

describe("need-secrets and errors that send the user back", () => {
  it("marks the machines without a password or key and explains", () => {
    const ms = good().map((m) => ({ ...m, password: "" }));
    const s = reduce(at("apply", { machines: ms }), { type: "need-secrets" });
    expect(s.step).toBe("machines");
    expect(s.machines.map((m) => !!m.passwordNeeded)).toEqual([true, true, true, false]);
    expect(s.notice).toContain("for host1, host2, stor1");
    expect(secretsMissing(s)).toEqual(["host1", "host2", "stor1"]);
  });

  it("tells lab users to reconnect instead", () => {
    const s = reduce(at("preflight", { lab: true, machines: good().map((m) => ({ ...m, password: "", key: "" })) }), { type: "need-secrets" });
    expect(s.notice).toContain("Reconnect to the lab");
  });

  it("recheck-keys goes to the trust step and reads the keys again", () => {
    const s = reduce(trusted(at("apply")), { type: "recheck-keys" });
    expect(s.step).toBe("trust");
    expect(s.scan).toBeNull();
  });

  it("goto only goes back, and redoes the step it goes to", () => {
    const s = at("apply", { preflight: preflight(), plan: { name: "p", steps: [] } });
    const back = reduce(s, { type: "goto", step: "preflight" });
    expect(back.step).toBe("preflight");
    expect(back.preflight).toBeNull();
    expect(back.plan).not.toBeNull();
    expect(reduce(s, { type: "goto", step: "verify" })).toBe(s);
    expect(reduce(s, { type: "goto", step: "apply" })).toBe(s);
    expect(reduce(s, { type: "goto", step: "nowhere" as never })).toBe(s);
    expect(reduce(s, { type: "goto", step: "machines" }).step).toBe("machines");
  });
});

describe("toSaved", () => {
  it("never includes a password, anywhere", () => {
    const s = at("preflight", { machines: good().map((m) => ({ ...m, password: "hunter2" })) });
    const out = toSaved(s);
    expect(JSON.stringify(out)).not.toContain("hunter2");
    expect(out.machines.every((m) => !("password" in m))).toBe(true);
  });

  it("keeps the step, machines with keys and pinned host keys, VMs and flags", () => {
    const s = trusted(at("trust", { lab: true, allow_emulation: true, vms: [{ name: "db", vcpus: "2", ram_mib: "2048", disk_gib: "10", priority: "9", critical: true }] }));
    const out = toSaved(s);
    expect(out.step).toBe("trust");
    expect(out.lab).toBe(true);
    expect(out.allow_emulation).toBe(true);
    expect(out.machines[3]).toEqual({ name: "stor2", role: "storage", address: "192.0.2.22", ssh_port: 22, user: "root", key: "/root/.ssh/id_ed25519", host_key: "ssh-ed25519 AAAAstor2" });
    expect(out.protect).toEqual([{ name: "db", vcpus: 2, ram_mib: 2048, disk_gib: 10, priority: 9, critical: true }]);
  });

  it("saves half-typed VM numbers as 0, never NaN", () => {
    const out = toSaved(at("welcome", { vms: [{ name: "x", vcpus: "two", ram_mib: "", disk_gib: "1.5", priority: "7", critical: false }] }));
    expect(out.protect[0]).toEqual({ name: "x", vcpus: 0, ram_mib: 0, disk_gib: 0, priority: 7, critical: false });
  });

  it("round-trips through resume", () => {
    const s = trusted(at("trust"));
    const back = resume(JSON.parse(JSON.stringify(toSaved(s))));
    expect(back.machines.map((m) => m.host_key)).toEqual(s.machines.map((m) => m.host_key));
    expect(back.machines.map((m) => m.password)).toEqual(["", "", "", ""]);
  });
});

describe("request", () => {
  it("is what the commands take, passwords included (in memory only)", () => {
    const r = request(at("preflight", { allow_emulation: true, vms: [{ name: "db", vcpus: "2", ram_mib: "2048", disk_gib: "10", priority: "9", critical: true }] }));
    expect(r.machines[0]).toEqual({ name: "host1", role: "host", address: "192.0.2.11", ssh_port: 22, user: "root", password: "pw" });
    expect(r.protect[0]!.ram_mib).toBe(2048);
    expect(r.allow_emulation).toBe(true);
  });
});

describe("resume", () => {
  it("starts afresh from nothing or garbage", () => {
    for (const x of [null, undefined, 42, "text", [], { step: "nope" }]) {
      const s = resume(x);
      expect(s.step, JSON.stringify(x)).toBe("welcome");
      expect(s.machines).toHaveLength(4);
    }
  });

  it("resumes the early steps where they were, with no password flags", () => {
    const s = resume(saved({ step: "machines" }));
    expect(s.step).toBe("machines");
    expect(s.machines.some((m) => m.passwordNeeded)).toBe(false);
    expect(resume(saved({ step: "welcome" })).step).toBe("welcome");
  });

  it("marks machines that had a password as needing it again", () => {
    const s = resume(saved({ step: "trust" }));
    expect(s.machines.map((m) => !!m.passwordNeeded)).toEqual([true, false, false, false]);
  });

  it("keeps the trust step (reading identities needs no password)", () => {
    expect(resume(saved({ step: "trust" })).step).toBe("trust");
  });

  it("sends the checks and the plan to the machines step when a password is gone", () => {
    for (const step of ["preflight", "plan"] as const) {
      const s = resume(saved({ step }));
      expect(s.step, step).toBe("machines");
      expect(s.notice).toContain("for host1");
    }
  });

  it("resumes the checks and the plan when every machine has a key file", () => {
    const all = saved({ step: "plan" });
    all.machines = all.machines.map((m) => ({ ...m, key: "/k" }));
    expect(resume(all).step).toBe("plan");
  });

  it("resumes apply and verify where they were (Twofold's own key may work now)", () => {
    const a = resume(saved({ step: "apply" }));
    expect(a.step).toBe("apply");
    expect(a.resumed).toBe(true);
    const v = resume(saved({ step: "verify" }));
    expect(v.step).toBe("verify");
    expect(v.resumed).toBe(false);
  });

  it("sends the user to the machines step when the saved details no longer pass", () => {
    const bad = saved({ step: "apply" });
    bad.machines[1] = { ...bad.machines[1]!, address: "not an address" };
    const s = resume(bad);
    expect(s.step).toBe("machines");
    expect(s.notice).toContain("need fixing");
    const three = saved({ step: "verify", machines: saved().machines.slice(0, 3) });
    expect(resume(three).step).toBe("machines");
    expect(resume(saved({ step: "plan", machines: [] })).step).toBe("machines");
  });

  it("never brings a password back, even if the file had one", () => {
    const leaky = saved({ step: "apply" }) as WizardSaved & { machines: { password?: string }[] };
    leaky.machines[0]!.password = "hunter2";
    const s = resume(leaky);
    expect(s.machines[0]!.password).toBe("");
  });

  it("survives wrong types in the file", () => {
    const s = resume({ step: "machines", machines: [null, 3, { name: 7, role: "x", ssh_port: "22" }], protect: "no", lab: "yes", allow_emulation: 1 });
    expect(s.machines).toEqual([{ name: "", role: "host", address: "", port: "22", user: "root", password: "", key: "", host_key: "" }]);
    expect(s.vms).toEqual([]);
    expect(s.lab).toBe(false);
    expect(s.allow_emulation).toBe(false);
    const vms = resume({ step: "machines", protect: [{ name: "db", vcpus: "x", ram_mib: Infinity }] }).vms;
    expect(vms).toEqual([{ name: "db", vcpus: "1", ram_mib: "1024", disk_gib: "0", priority: "0", critical: false }]);
  });

  it("tells lab users to reconnect", () => {
    const lab = saved({ step: "preflight", lab: true });
    lab.machines = lab.machines.map(({ key: _k, ...m }) => m);
    const s = resume(lab);
    expect(s.step).toBe("machines");
    expect(s.notice).toContain("Reconnect to the lab");
  });
});

describe("chooseView", () => {
  const nodes = (n: number) => ({ ok: true as const, value: Array.from({ length: n }, (_, i): NodeSpec => ({ name: `n${i}`, role: "host", address: "a", ssh_port: 22, user: "root" })) });
  const none = { ok: true as const, value: null };
  const failed = { ok: false as const, error: { code: "internal", message: "command wizard_load not found" } };

  it("shows the wizard for an unfinished setup, even with nodes", () => {
    const e = chooseView({ ok: true, value: saved({ step: "apply" }) }, nodes(4));
    expect(e.view).toBe("wizard");
    if (e.view === "wizard") expect(e.state.step).toBe("apply");
  });

  it("shows the wizard for an empty inventory", () => {
    const e = chooseView(none, nodes(0));
    expect(e).toMatchObject({ view: "wizard", notice: null });
    if (e.view === "wizard") expect(e.state.step).toBe("welcome");
  });

  it("shows the dashboard when the setup is done and there are nodes", () => {
    expect(chooseView({ ok: true, value: saved({ step: "done" }) }, nodes(4))).toEqual({ view: "dashboard" });
    expect(chooseView(none, nodes(2))).toEqual({ view: "dashboard" });
  });

  it("shows the dashboard (with its error) when the inventory cannot be read", () => {
    expect(chooseView(none, { ok: false, error: { code: "inventory", message: "locked" } })).toEqual({ view: "dashboard" });
    expect(chooseView(failed, { ok: false, error: { code: "inventory", message: "locked" } })).toEqual({ view: "dashboard" });
  });

  it("does not let a broken saved state hide the dashboard", () => {
    expect(chooseView(failed, nodes(4))).toEqual({ view: "dashboard" });
  });

  it("starts afresh, saying why, when the saved state cannot be read and nothing is set up", () => {
    const e = chooseView(failed, nodes(0));
    expect(e.view).toBe("wizard");
    if (e.view === "wizard") expect(e.notice).toContain("could not read the saved setup");
  });

  it("starts again at the welcome, machines kept, when a finished setup lost its inventory", () => {
    const e = chooseView({ ok: true, value: saved({ step: "done" }) }, nodes(0));
    expect(e.view).toBe("wizard");
    if (e.view === "wizard") {
      expect(e.state.step).toBe("welcome");
      expect(e.state.machines[0]!.name).toBe("host1");
    }
  });
});

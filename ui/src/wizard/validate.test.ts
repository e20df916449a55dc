import { describe, expect, it } from "vitest";

import {
  addressKey,
  blankMachine,
  checkAddress,
  checkCredentials,
  checkKeyPath,
  checkMachine,
  checkName,
  checkPort,
  checkRoles,
  checkUser,
  checkVm,
  defaultMachines,
  fromMachineInput,
  fromProtectVm,
  parseIPv4,
  parseIPv6,
  parsePort,
  problemList,
  toMachineInput,
  toProtectVm,
  validateAll,
  type MachineDraft,
  type VmDraft,
} from "./validate";

const machine = (over: Partial<MachineDraft> = {}): MachineDraft => ({
  ...blankMachine("host", "host1"),
  address: "192.0.2.11",
  password: "secret",
  ...over,
});

const four = (): MachineDraft[] => [
  machine({ name: "host1", address: "192.0.2.11" }),
  machine({ name: "host2", address: "192.0.2.12" }),
  machine({ name: "stor1", role: "storage", address: "192.0.2.21" }),
  machine({ name: "stor2", role: "storage", address: "192.0.2.22", password: "", key: "/root/.ssh/id_ed25519" }),
];

const vm = (over: Partial<VmDraft> = {}): VmDraft => ({
  name: "web",
  vcpus: "2",
  ram_mib: "4096",
  disk_gib: "40",
  priority: "50",
  critical: true,
  ...over,
});

describe("checkName", () => {
  it.each(["host1", "a", "stor-2", "x".repeat(63), "1host", "h0-s7"])("accepts %s", (n) => {
    expect(checkName(n)).toBeNull();
  });

  it("trims the name before judging it", () => {
    expect(checkName("  host1 ")).toBeNull();
  });

  it.each([
    ["", "Give the machine a name"],
    ["   ", "Give the machine a name"],
    ["x".repeat(64), "at most 63"],
    ["Host1", "lowercase letters: host1"],
    ["host_1", "only letters a to z"],
    ["host 1", "only letters a to z"],
    ["höst", "only letters a to z"],
    ["host.example", "only letters a to z"],
    ["-host", "start or end with a hyphen"],
    ["host-", "start or end with a hyphen"],
    ["<script>", "only letters a to z"],
  ])("rejects %j", (n, msg) => {
    expect(checkName(n)).toContain(msg);
  });
});

describe("IP parsing", () => {
  it("parses IPv4 the way the engine does: no leading zeros, 0-255", () => {
    expect(parseIPv4("192.0.2.10")).toEqual([192, 0, 2, 10]);
    expect(parseIPv4("0.0.0.0")).toEqual([0, 0, 0, 0]);
    expect(parseIPv4("255.255.255.255")).toEqual([255, 255, 255, 255]);
    for (const bad of ["256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1..2.3", "1.2.3.-4", "a.b.c.d", "", "1.2.3.4 "]) {
      expect(parseIPv4(bad), bad).toBeNull();
    }
  });

  it("parses IPv6 with ::, embedded IPv4 and any case", () => {
    expect(parseIPv6("::1")).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(parseIPv6("::")).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseIPv6("2001:DB8::a")).toEqual([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xa]);
    expect(parseIPv6("fe80:0:0:0:0:0:0:1")).toEqual([0xfe80, 0, 0, 0, 0, 0, 0, 1]);
    expect(parseIPv6("1::")).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseIPv6("::ffff:192.0.2.1")).toEqual([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201]);
    expect(parseIPv6("1:2:3:4:5:6:7::")).toEqual([1, 2, 3, 4, 5, 6, 7, 0]);
  });

  it("rejects broken IPv6", () => {
    for (const bad of [
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      ":1",
      "1:",
      "12345::",
      "g::1",
      "::ffff:300.0.2.1",
      "fe80::1%eth0",
      "1:2:3:4:5:6:7:8::",
      "192.0.2.1",
      "",
    ]) {
      expect(parseIPv6(bad), bad).toBeNull();
    }
  });
});

describe("checkAddress", () => {
  it.each(["192.0.2.10", "2001:db8::10", "::1", "host1", "host1.example.com", "HOST1.Example.COM", "a-b.c", "1host.lan", "10.0.0.1a"])(
    "accepts %s",
    (a) => {
      expect(checkAddress(a)).toBeNull();
    },
  );

  it.each([
    ["", "Give the machine's IP address or DNS name"],
    ["  ", "Give the machine's IP address or DNS name"],
    ["192.0.2.999", "not a valid IPv4 address"],
    ["192.0.2", "not a valid IPv4 address"],
    ["192.0.2.1.", "not a valid IPv4 address"],
    ["10.0.0.01", "not a valid IPv4 address"],
    ["[2001:db8::1]", "without the square brackets"],
    ["2001:db8:::1", "not a valid IPv6 address"],
    ["fe80::1%eth0", "zone"],
    ["host1:22", "SSH port field"],
    ["192.0.2.1:2222", "SSH port field"],
    ["root@host1", "user name goes in the SSH user field"],
    ["host 1", "no spaces"],
    ["host_1.lan", "neither an IP address nor a host name"],
    ["-host.lan", "neither an IP address nor a host name"],
    ["host..lan", "neither an IP address nor a host name"],
    ["host.lan.", "neither an IP address nor a host name"],
    [`${"a".repeat(64)}.lan`, "neither an IP address nor a host name"],
    [`${"a.".repeat(127)}ab`, "neither an IP address nor a host name"],
    ["http://host1", "not a link or a path"],
    ["ssh://root@host1", "user name goes in the SSH user field"],
    ["192.0.2.0/24", "not a link or a path"],
  ])("rejects %j", (a, msg) => {
    expect(checkAddress(a)).toContain(msg);
  });
});

describe("ports", () => {
  it("parses 1..65535 only", () => {
    expect(parsePort("22")).toBe(22);
    expect(parsePort(" 2222 ")).toBe(2222);
    expect(parsePort("65535")).toBe(65535);
    for (const bad of ["0", "65536", "-1", "22.0", "2e3", "0x16", "", "abc", "999999"]) {
      expect(parsePort(bad), bad).toBeNull();
    }
  });

  it("says what is wrong", () => {
    expect(checkPort("22")).toBeNull();
    expect(checkPort("")).toContain("Give the SSH port");
    expect(checkPort("ssh")).toContain("whole number");
    expect(checkPort("-22")).toContain("whole number");
    expect(checkPort("0")).toContain("from 1 to 65535");
    expect(checkPort("70000")).toContain("from 1 to 65535");
    expect(checkPort("0000000000022")).toContain("from 1 to 65535");
  });
});

describe("checkUser", () => {
  it.each(["root", "admin", "ops_user", "first.last", "a-b", "_svc"])("accepts %s", (u) => {
    expect(checkUser(u)).toBeNull();
  });

  it.each([
    ["", "usually root"],
    ["root@host1", "not user@machine"],
    ["ro ot", "no spaces"],
    ["-root", "not a valid user name"],
    ["x".repeat(33), "not a valid user name"],
    ["r;oot", "not a valid user name"],
  ])("rejects %j", (u, msg) => {
    expect(checkUser(u)).toContain(msg);
  });
});

describe("checkKeyPath", () => {
  it("accepts full paths, and no path at all", () => {
    expect(checkKeyPath("")).toBeNull();
    expect(checkKeyPath("/home/me/.ssh/id_ed25519")).toBeNull();
    expect(checkKeyPath("C:\\Users\\me\\.ssh\\id_ed25519")).toBeNull();
  });

  it.each([
    ["~/.ssh/id_ed25519", "~ is not expanded"],
    [".ssh/id_ed25519", "full path"],
    ["id_rsa", "full path"],
    ["/home/me/.ssh/id_ed25519.pub", "public half"],
    ["-----BEGIN OPENSSH PRIVATE KEY-----", "not the key itself"],
    ["/a\n/b", "not the key itself"],
  ])("rejects %j", (k, msg) => {
    expect(checkKeyPath(k)).toContain(msg);
  });
});

describe("checkCredentials", () => {
  it("wants a password or a key", () => {
    expect(checkCredentials({ password: "x", key: "" })).toBeNull();
    expect(checkCredentials({ password: "", key: "/k" })).toBeNull();
    expect(checkCredentials({ password: " ", key: "" })).toBeNull(); // a password may be spaces
    expect(checkCredentials({ password: "", key: "  " })).toContain("Give the password, or the path");
  });

  it("says when a password was lost with the app", () => {
    expect(checkCredentials({ password: "", key: "", passwordNeeded: true })).toContain("Password needed again");
  });
});

describe("checkMachine", () => {
  it("finds nothing wrong with a good machine", () => {
    expect(checkMachine(machine())).toEqual({});
  });

  it("reports every bad field at once", () => {
    const errs = checkMachine({ ...blankMachine("host"), port: "0", user: "", address: "x y" });
    expect(Object.keys(errs).sort()).toEqual(["address", "name", "password", "port", "user"]);
  });

  it("does not nag about the password when the key path itself is wrong", () => {
    const errs = checkMachine(machine({ password: "", key: "id_rsa" }));
    expect(errs.key).toContain("full path");
    expect(errs.password).toBeUndefined();
  });

  it("rejects a role that is neither host nor storage (a tampered saved file)", () => {
    expect(checkMachine(machine({ role: "nas" as never })).role).toContain("host or a storage node");
  });
});

describe("checkRoles", () => {
  it("wants exactly two of each", () => {
    expect(checkRoles(four())).toEqual([]);
    expect(checkRoles([])).toEqual(["Add the four machines: two virtualization hosts and two storage nodes."]);
    expect(checkRoles([{ role: "host" }])).toEqual([
      "Add 1 more host: Twofold needs exactly two virtualization hosts (you have 1).",
      "Add 2 more storage nodes: Twofold needs exactly two (you have 0).",
    ]);
    expect(checkRoles([{ role: "host" }, { role: "host" }, { role: "host" }, { role: "storage" }])).toEqual([
      "There are 3 hosts; Twofold uses exactly two. Remove one, or make it a storage node.",
      "Add 1 more storage node: Twofold needs exactly two (you have 1).",
    ]);
    expect(checkRoles([{ role: "host" }, { role: "host" }, { role: "storage" }, { role: "storage" }, { role: "storage" }])).toEqual([
      "There are 3 storage nodes; Twofold uses exactly two. Remove one, or make it a host.",
    ]);
  });
});

describe("checkVm", () => {
  it("accepts a good VM, including one without a disk", () => {
    expect(checkVm(vm())).toEqual({});
    expect(checkVm(vm({ disk_gib: "0", priority: "0" }))).toEqual({});
    expect(checkVm(vm({ priority: "100" }))).toEqual({});
  });

  it.each([
    ["name", "", "as libvirt knows it"],
    ["name", "a/b", "cannot contain /"],
    ["vcpus", "0", "at least 1"],
    ["vcpus", "", "Give the number of vCPUs"],
    ["vcpus", "1.5", "whole number"],
    ["vcpus", "-2", "cannot be negative"],
    ["vcpus", "two", "whole number"],
    ["vcpus", "5000", "at most 4096"],
    ["ram_mib", "0", "at least 1"],
    ["ram_mib", "4 GiB", "whole number"],
    ["ram_mib", "1e3", "whole number"],
    ["disk_gib", "-1", "cannot be negative"],
    ["priority", "101", "at most 100"],
    ["priority", "", "Give a priority"],
  ] as const)("rejects %s = %j", (field, value, msg) => {
    expect(checkVm(vm({ [field]: value }))[field]).toContain(msg);
  });
});

describe("validateAll", () => {
  it("passes four good machines and no VMs", () => {
    const v = validateAll(four(), []);
    expect(v.ok).toBe(true);
    expect(v.list).toEqual([]);
  });

  it("the default four rows need addresses and passwords before they pass", () => {
    const v = validateAll(defaultMachines(), []);
    expect(v.ok).toBe(false);
    expect(v.list).toEqual([]);
    expect(v.machines.every((e) => e.address && e.password)).toBe(true);
  });

  it("flags the later of two machines with the same name", () => {
    const ms = four();
    ms[3] = { ...ms[3]!, name: " host1 " };
    const v = validateAll(ms, []);
    expect(v.ok).toBe(false);
    expect(v.machines[0]!.name).toBeUndefined();
    expect(v.machines[3]!.name).toBe("Machine 1 already has the name host1; each machine needs its own.");
  });

  it("flags the same address and port, spelled differently", () => {
    const ms = four();
    ms[1] = { ...ms[1]!, address: "2001:db8::1" };
    ms[2] = { ...ms[2]!, address: "2001:DB8:0:0::1" };
    ms[3] = { ...ms[3]!, address: "Host1.lan" };
    ms[0] = { ...ms[0]!, address: "host1.LAN" };
    const v = validateAll(ms, []);
    expect(v.machines[2]!.address).toContain("Machine 2 has the same address and SSH port");
    expect(v.machines[3]!.address).toContain("Machine 1 has the same address and SSH port");
  });

  it("allows one address with two ports (machines behind one NAT address)", () => {
    const ms = four();
    ms[1] = { ...ms[1]!, address: "192.0.2.11", port: "2222" };
    expect(validateAll(ms, []).ok).toBe(true);
  });

  it("flags duplicate VM names and bad VM fields", () => {
    const v = validateAll(four(), [vm(), vm({ vcpus: "0" }), vm({ name: " web" })]);
    expect(v.ok).toBe(false);
    expect(v.vms[1]!.vcpus).toContain("at least 1");
    expect(v.vms[1]!.name).toBe("VM 1 already has the name web; list each VM once.");
    expect(v.vms[2]!.name).toBe("VM 1 already has the name web; list each VM once.");
  });

  it("fails on the role counts alone", () => {
    const ms = four();
    ms[2] = { ...ms[2]!, role: "host" };
    const v = validateAll(ms, []);
    expect(v.ok).toBe(false);
    expect(v.machines.every((e) => Object.keys(e).length === 0)).toBe(true);
    expect(v.list).toHaveLength(2);
  });

  it("lists the problems by machine for the summary", () => {
    const ms = four();
    ms[1] = { ...ms[1]!, address: "" };
    const vms = [vm({ name: "", priority: "x" })];
    const v = validateAll(ms, vms);
    expect(problemList(v, ms, vms)).toEqual([
      "Machine 2 (host2): Give the machine's IP address or DNS name, like 192.0.2.10 or host1.example.com.",
      "VM 1: Give the VM's name as libvirt knows it (virsh list --all shows it).",
      "VM 1: Give a priority as a whole number (0 to 100, higher starts first).",
    ]);
  });
});

describe("conversion", () => {
  it("trims, parses the port and leaves out empty secrets", () => {
    expect(toMachineInput(machine({ name: " host1 ", address: " 192.0.2.11 ", port: " 2222 ", user: " admin " }))).toEqual({
      name: "host1",
      role: "host",
      address: "192.0.2.11",
      ssh_port: 2222,
      user: "admin",
      password: "secret",
    });
    const withKey = toMachineInput(machine({ password: "", key: " /k ", host_key: "ssh-ed25519 AAAA" }));
    expect(withKey).not.toHaveProperty("password");
    expect(withKey.key).toBe("/k");
    expect(withKey.host_key).toBe("ssh-ed25519 AAAA");
  });

  it("keeps a password exactly as typed (spaces are part of it)", () => {
    expect(toMachineInput(machine({ password: " pa ss " })).password).toBe(" pa ss ");
  });

  it("round-trips machines and VMs", () => {
    const m = toMachineInput(machine({ key: "/k" }));
    expect(toMachineInput(fromMachineInput(m))).toEqual(m);
    const v = toProtectVm(vm());
    expect(v).toEqual({ name: "web", vcpus: 2, ram_mib: 4096, disk_gib: 40, priority: 50, critical: true });
    expect(toProtectVm(fromProtectVm(v))).toEqual(v);
  });

  it("compares addresses in one spelling", () => {
    expect(addressKey("2001:DB8::1", "22")).toBe(addressKey("2001:db8:0:0:0:0:0:1", " 22"));
    expect(addressKey("Host1", "22")).toBe(addressKey("host1", "22"));
    expect(addressKey("host1", "22")).not.toBe(addressKey("host1", "2222"));
  });
});

// Checking what the user typed on the machines step, field by field, with messages a person can
// act on. Pure: the form shows the messages next to the fields (render-machines.ts). The rules
// mirror the engine's (src/nodes.rs `validate_name`, `validate_user`, `validate_address`;
// src/provision/sizing.rs `validate`), a little stricter where that saves a round trip: names are
// lowercase because they become host names.
//
// Drafts hold what is in the inputs, as strings: "22x" in the port field must be reported, not
// silently turned into NaN.

import type { MachineInput, ProtectVm, Role } from "./types";

export interface MachineDraft {
  name: string;
  role: Role;
  address: string;
  port: string;
  user: string;
  password: string;
  key: string;
  /** Pinned host key (OpenSSH line), once the user confirmed its fingerprint; "" when not. */
  host_key: string;
  /** The machine logged in with a password that was not kept (the app was closed). */
  passwordNeeded?: boolean;
}

export interface VmDraft {
  name: string;
  vcpus: string;
  ram_mib: string;
  disk_gib: string;
  priority: string;
  critical: boolean;
}

export type MachineField = "name" | "role" | "address" | "port" | "user" | "password" | "key";
export type VmField = "name" | "vcpus" | "ram_mib" | "disk_gib" | "priority";

export type FieldErrors<F extends string> = Partial<Record<F, string>>;

export interface Validation {
  /** One entry per machine, in order; empty when the machine is fine. */
  machines: FieldErrors<MachineField>[];
  vms: FieldErrors<VmField>[];
  /** Problems with the list as a whole (how many hosts and storage nodes). */
  list: string[];
  ok: boolean;
}

export const HOSTS_NEEDED = 2;
export const STORAGE_NEEDED = 2;
export const DEFAULT_PORT = 22;
export const DEFAULT_USER = "root";
export const PRIORITY_MAX = 100;

const NAME_MAX = 63;

/** A machine's name: it becomes the host name and part of file names. */
export function checkName(raw: string): string | null {
  const name = raw.trim();
  if (name === "") return "Give the machine a name, like host1.";
  if (name.length > NAME_MAX) return `A name has at most ${NAME_MAX} characters (this one has ${name.length}).`;
  if (/[A-Z]/.test(name) && /^[A-Za-z0-9-]+$/.test(name)) {
    return `Use lowercase letters: ${name.toLowerCase()}.`;
  }
  if (!/^[a-z0-9-]+$/.test(name)) return "Use only letters a to z, digits and hyphens (like host1).";
  if (name.startsWith("-") || name.endsWith("-")) return "A name cannot start or end with a hyphen.";
  return null;
}

/** Four decimal numbers 0-255 without leading zeros (as the engine's parser wants), or null. */
export function parseIPv4(s: string): number[] | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

/** The eight 16-bit groups of an IPv6 address, or null. No zone ids ("%eth0"): SSH to a
 *  link-local address needs them and the engine does not take them. */
export function parseIPv6(s: string): number[] | null {
  if (!s.includes(":") || /[^0-9A-Fa-f:.]/.test(s)) return null;
  let text = s;
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    // An IPv4 address in the last 32 bits (::ffff:192.0.2.1).
    const v4 = parseIPv4(tail);
    if (!v4) return null;
    const hi = ((v4[0]! << 8) | v4[1]!).toString(16);
    const lo = ((v4[2]! << 8) | v4[3]!).toString(16);
    text = `${text.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  const all = [...left, ...right];
  if (!all.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return null;
  if (halves.length === 1 && left.length !== 8) return null;
  if (halves.length === 2 && all.length > 7) return null;
  const zeros = 8 - all.length;
  return [...left, ...Array<string>(halves.length === 2 ? zeros : 0).fill("0"), ...right].map((g) =>
    parseInt(g, 16),
  );
}

function isHostname(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  // All digits and dots is a mistyped IPv4 address, not a name.
  if (/^[0-9.]+$/.test(s)) return false;
  return s
    .split(".")
    .every((l) => l.length > 0 && l.length <= 63 && /^[A-Za-z0-9-]+$/.test(l) && !l.startsWith("-") && !l.endsWith("-"));
}

/** An IPv4 or IPv6 address or a DNS name, as the engine accepts them. */
export function checkAddress(raw: string): string | null {
  const a = raw.trim();
  if (a === "") return "Give the machine's IP address or DNS name, like 192.0.2.10 or host1.example.com.";
  if (/\s/.test(a)) return "An address has no spaces.";
  if (a.startsWith("[") && a.endsWith("]")) return "Give the IPv6 address without the square brackets.";
  if (a.includes("@")) return "Give only the address here; the user name goes in the SSH user field.";
  if (a.includes("://") || a.includes("/")) return "Give only the machine's address (like host1.example.com), not a link or a path.";
  if (parseIPv4(a) || isHostname(a)) return null;
  if (a.includes(":")) {
    if (parseIPv6(a)) return null;
    if (a.includes("%")) return "Twofold cannot use link-local IPv6 addresses with a zone (%…); give another address.";
    if (/^[^:]+:\d+$/.test(a)) return "Put the port in the SSH port field, not in the address.";
    return "That is not a valid IPv6 address.";
  }
  if (/^[0-9.]+$/.test(a)) return "That is not a valid IPv4 address: four numbers from 0 to 255, like 192.0.2.10.";
  return "That is neither an IP address nor a host name: use letters, digits, hyphens and dots, like host1.example.com.";
}

/** The SSH port as a number, or null if the text is not one. */
export function parsePort(raw: string): number | null {
  const t = raw.trim();
  if (!/^[0-9]{1,5}$/.test(t)) return null;
  const n = Number(t);
  return n >= 1 && n <= 65535 ? n : null;
}

export function checkPort(raw: string): string | null {
  const t = raw.trim();
  if (t === "") return `Give the SSH port (${DEFAULT_PORT} unless the machine's SSH server listens elsewhere).`;
  if (!/^[0-9]+$/.test(t)) return `The port is a whole number, like ${DEFAULT_PORT}.`;
  if (parsePort(t) === null) return `Ports go from 1 to 65535; ${DEFAULT_PORT} is the usual one.`;
  return null;
}

export function checkUser(raw: string): string | null {
  const u = raw.trim();
  if (u === "") return `Give the user Twofold logs in as (usually ${DEFAULT_USER}).`;
  if (u.includes("@")) return `Give only the user name (like ${DEFAULT_USER}), not user@machine.`;
  if (/\s/.test(u)) return "A user name has no spaces.";
  if (u.length > 32 || !/^[A-Za-z0-9_][A-Za-z0-9._-]*\$?$/.test(u)) {
    return "That is not a valid user name: letters, digits, dots, hyphens and underscores.";
  }
  return null;
}

/** A private key file on this computer: a full path, and not the public half. */
export function checkKeyPath(raw: string): string | null {
  const k = raw.trim();
  if (k === "") return null;
  if (/[\n\r]/.test(k)) return "Give the path of the key file, not the key itself.";
  if (k.startsWith("-----BEGIN")) return "Give the path of the key file, not the key itself.";
  if (k.startsWith("~")) return "Give the full path (like /home/you/.ssh/id_ed25519): ~ is not expanded here.";
  const absolute = k.startsWith("/") || /^[A-Za-z]:[\\/]/.test(k) || k.startsWith("\\\\");
  if (!absolute) return "Give the full path of the key file, like /home/you/.ssh/id_ed25519.";
  if (k.endsWith(".pub")) return "That is the public half of the key; give the private key file (the same name without .pub).";
  return null;
}

/** How Twofold logs in: a password or a key file, at least one. */
export function checkCredentials(d: Pick<MachineDraft, "password" | "key" | "passwordNeeded">): string | null {
  if (d.password !== "" || d.key.trim() !== "") return null;
  if (d.passwordNeeded) return "Password needed again: Twofold does not keep passwords once it is closed.";
  return "Give the password, or the path of a private key file Twofold may use.";
}

/** Host names and IPv6 addresses have more than one spelling; compare them in one form. */
export function addressKey(address: string, port: string): string {
  const a = address.trim();
  const v6 = a.includes(":") ? parseIPv6(a) : null;
  const canonical = v6 ? v6.map((g) => g.toString(16)).join(":") : a.toLowerCase();
  return `${canonical}#${parsePort(port) ?? port.trim()}`;
}

export function checkMachine(d: MachineDraft): FieldErrors<MachineField> {
  const errs: FieldErrors<MachineField> = {};
  const set = (f: MachineField, m: string | null) => {
    if (m) errs[f] = m;
  };
  set("name", checkName(d.name));
  set("role", d.role === "host" || d.role === "storage" ? null : "Choose whether this is a host or a storage node.");
  set("address", checkAddress(d.address));
  set("port", checkPort(d.port));
  set("user", checkUser(d.user));
  set("key", checkKeyPath(d.key));
  // The key field's own problem is enough; don't also say "give a password or a key".
  if (!errs.key) set("password", checkCredentials(d));
  return errs;
}

function plural(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}

/** Twofold sets up exactly two hosts and two storage nodes. */
export function checkRoles(machines: Pick<MachineDraft, "role">[]): string[] {
  const hosts = machines.filter((m) => m.role === "host").length;
  const stors = machines.filter((m) => m.role === "storage").length;
  const out: string[] = [];
  if (machines.length === 0) {
    return ["Add the four machines: two virtualization hosts and two storage nodes."];
  }
  if (hosts < HOSTS_NEEDED) {
    const n = HOSTS_NEEDED - hosts;
    out.push(`Add ${n} more ${plural(n, "host", "hosts")}: Twofold needs exactly two virtualization hosts (you have ${hosts}).`);
  } else if (hosts > HOSTS_NEEDED) {
    out.push(`There are ${hosts} hosts; Twofold uses exactly two. Remove one, or make it a storage node.`);
  }
  if (stors < STORAGE_NEEDED) {
    const n = STORAGE_NEEDED - stors;
    out.push(`Add ${n} more storage ${plural(n, "node", "nodes")}: Twofold needs exactly two (you have ${stors}).`);
  } else if (stors > STORAGE_NEEDED) {
    out.push(`There are ${stors} storage nodes; Twofold uses exactly two. Remove one, or make it a host.`);
  }
  return out;
}

/** A whole number within bounds, or a message that says what is wrong. */
function checkWhole(raw: string, what: string, min: number, max: number, example: string): string | null {
  const t = raw.trim();
  if (t === "") return `Give ${what} (${example}).`;
  if (/^-/.test(t) && /^-[0-9]+$/.test(t)) return `${capitalize(what)} cannot be negative.`;
  if (!/^[0-9]+$/.test(t)) return `Give ${what} as a whole number (${example}).`;
  const n = Number(t);
  if (n < min) return `${capitalize(what)} must be at least ${min}.`;
  if (n > max) return `${capitalize(what)} can be at most ${max}.`;
  return null;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function checkVm(d: VmDraft): FieldErrors<VmField> {
  const errs: FieldErrors<VmField> = {};
  const name = d.name.trim();
  if (name === "") errs.name = "Give the VM's name as libvirt knows it (virsh list --all shows it).";
  else if (name.includes("/") || /[\u0000-\u001f]/.test(name)) errs.name = "A VM name cannot contain / or control characters.";
  else if (name.length > 200) errs.name = "That name is too long for a VM.";
  const set = (f: VmField, m: string | null) => {
    if (m) errs[f] = m;
  };
  set("vcpus", checkWhole(d.vcpus, "the number of vCPUs", 1, 4096, "like 2"));
  set("ram_mib", checkWhole(d.ram_mib, "the memory in MiB", 1, 64 * 1024 * 1024, "4096 for 4 GiB"));
  set("disk_gib", checkWhole(d.disk_gib, "the disk size in GiB", 0, 1024 * 1024, "like 40; 0 if it has no disk"));
  set("priority", checkWhole(d.priority, "a priority", 0, PRIORITY_MAX, `0 to ${PRIORITY_MAX}, higher starts first`));
  return errs;
}

/** Every field of the step, plus duplicates across machines and the role counts. */
export function validateAll(machines: MachineDraft[], vms: VmDraft[]): Validation {
  const m = machines.map(checkMachine);

  // Duplicates: the later one gets the message, naming the earlier one.
  const names = new Map<string, number>();
  const addrs = new Map<string, number>();
  machines.forEach((d, i) => {
    const name = d.name.trim();
    if (name !== "" && !m[i]!.name) {
      const first = names.get(name);
      if (first !== undefined) m[i]!.name = `Machine ${first + 1} already has the name ${name}; each machine needs its own.`;
      else names.set(name, i);
    }
    if (!m[i]!.address && !m[i]!.port) {
      const key = addressKey(d.address, d.port);
      const first = addrs.get(key);
      if (first !== undefined) {
        m[i]!.address = `Machine ${first + 1} has the same address and SSH port; list each machine once.`;
      } else addrs.set(key, i);
    }
  });

  const v = vms.map(checkVm);
  const vmNames = new Map<string, number>();
  vms.forEach((d, i) => {
    const name = d.name.trim();
    if (name === "" || v[i]!.name) return;
    const first = vmNames.get(name);
    if (first !== undefined) v[i]!.name = `VM ${first + 1} already has the name ${name}; list each VM once.`;
    else vmNames.set(name, i);
  });

  const list = checkRoles(machines);
  const ok = list.length === 0 && m.every((e) => Object.keys(e).length === 0) && v.every((e) => Object.keys(e).length === 0);
  return { machines: m, vms: v, list, ok };
}

/** A machine as the commands take it. Only call on a draft that passed validation. */
export function toMachineInput(d: MachineDraft): MachineInput {
  const out: MachineInput = {
    name: d.name.trim(),
    role: d.role,
    address: d.address.trim(),
    ssh_port: parsePort(d.port) ?? DEFAULT_PORT,
    user: d.user.trim(),
  };
  if (d.password !== "") out.password = d.password;
  if (d.key.trim() !== "") out.key = d.key.trim();
  if (d.host_key !== "") out.host_key = d.host_key;
  return out;
}

export function fromMachineInput(m: MachineInput): MachineDraft {
  return {
    name: m.name ?? "",
    role: m.role === "storage" ? "storage" : "host",
    address: m.address ?? "",
    port: String(m.ssh_port ?? DEFAULT_PORT),
    user: m.user ?? DEFAULT_USER,
    password: m.password ?? "",
    key: m.key ?? "",
    host_key: m.host_key ?? "",
  };
}

export function toProtectVm(d: VmDraft): ProtectVm {
  return {
    name: d.name.trim(),
    vcpus: Number(d.vcpus.trim()),
    ram_mib: Number(d.ram_mib.trim()),
    disk_gib: Number(d.disk_gib.trim()),
    priority: Number(d.priority.trim()),
    critical: d.critical,
  };
}

export function fromProtectVm(v: ProtectVm): VmDraft {
  return {
    name: v.name,
    vcpus: String(v.vcpus),
    ram_mib: String(v.ram_mib),
    disk_gib: String(v.disk_gib),
    priority: String(v.priority),
    critical: v.critical,
  };
}

export function blankMachine(role: Role, name = ""): MachineDraft {
  return { name, role, address: "", port: String(DEFAULT_PORT), user: DEFAULT_USER, password: "", key: "", host_key: "" };
}

export function blankVm(): VmDraft {
  return { name: "", vcpus: "2", ram_mib: "4096", disk_gib: "40", priority: "50", critical: true };
}

/** Where a new wizard starts: the four machines, with names and roles filled in. */
export function defaultMachines(): MachineDraft[] {
  return [blankMachine("host", "host1"), blankMachine("host", "host2"), blankMachine("storage", "stor1"), blankMachine("storage", "stor2")];
}

/** The list of problems for the summary above the form: "Machine 2 (host2): …". */
export function problemList(v: Validation, machines: MachineDraft[], vms: VmDraft[]): string[] {
  const out = [...v.list];
  v.machines.forEach((errs, i) => {
    const label = machines[i]?.name.trim() ? `Machine ${i + 1} (${machines[i]!.name.trim()})` : `Machine ${i + 1}`;
    for (const msg of Object.values(errs)) out.push(`${label}: ${msg}`);
  });
  v.vms.forEach((errs, i) => {
    const label = vms[i]?.name.trim() ? `VM ${i + 1} (${vms[i]!.name.trim()})` : `VM ${i + 1}`;
    for (const msg of Object.values(errs)) out.push(`${label}: ${msg}`);
  });
  return out;
}

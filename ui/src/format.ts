// Formatting of single values for display. Pure functions, unit-tested in format.test.ts.

const KIB = 1024;

/** 512 -> "512 MiB", 2048 -> "2 GiB", 1536 -> "1.5 GiB", 1048576 -> "1 TiB". */
export function formatMemory(mib: number): string {
  if (!Number.isFinite(mib) || mib < 0) return "—";
  if (mib < KIB) return `${Math.round(mib)} MiB`;
  if (mib < KIB * KIB) return `${oneDecimal(mib / KIB)} GiB`;
  return `${oneDecimal(mib / (KIB * KIB))} TiB`;
}

function oneDecimal(x: number): string {
  const r = Math.round(x * 10) / 10;
  return Number.isInteger(r) ? String(r) : r.toFixed(1);
}

/** How long ago `atMs` was, relative to `nowMs`: "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function formatAge(atMs: number, nowMs: number): string {
  const s = Math.floor((nowMs - atMs) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min ago`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} d ago`;
}

export function roleLabel(role: string): string {
  switch (role) {
    case "host":
      return "Host";
    case "storage":
      return "Storage";
    default:
      return role;
  }
}

export type Tone = "ok" | "warn" | "bad" | "idle";

/** A libvirt state ("running", "shut off", "paused", ...) as a label and a colour tone. */
export function vmState(state: string): { label: string; tone: Tone } {
  const s = state.trim().toLowerCase().replace(/[_-]/g, " ");
  switch (s) {
    case "running":
      return { label: "Running", tone: "ok" };
    case "paused":
    case "pmsuspended":
    case "in shutdown":
    case "migrating":
      return { label: capitalize(s), tone: "warn" };
    case "crashed":
      return { label: "Crashed", tone: "bad" };
    case "shut off":
    case "shutoff":
      return { label: "Shut off", tone: "idle" };
    default:
      return { label: s ? capitalize(s) : "Unknown", tone: "idle" };
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

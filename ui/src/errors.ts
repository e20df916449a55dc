// Turning whatever a command rejected with into a banner. The UI branches on the engine's error
// code (src/error.rs, `Error::code`), never on the message text.

import type { Outcome, UiError } from "./types";

/** Headline per error code; the engine's message follows it. */
const TITLES: Record<string, string> = {
  inventory: "Twofold could not read its inventory",
  nodes_file: "Twofold could not read the node list",
  io: "Twofold could not read or write a file",
  needs_root: "This needs administrator rights",
  host_unreachable: "A node cannot be reached",
  libvirt: "The hypervisor reported an error",
  unknown_vm: "That VM is not in the inventory",
  unknown_host: "That host is not in the inventory",
  invalid_input: "Twofold did not accept the request",
  lab: "The lab reported an error",
  internal: "The desktop app hit an internal error",
};

const FALLBACK_TITLE = "Something went wrong";

export interface Banner {
  code: string;
  title: string;
  message: string;
}

export function titleFor(code: string): string {
  return TITLES[code] ?? FALLBACK_TITLE;
}

/**
 * Normalize a rejection: our commands reject with `{code, message}`; Tauri itself rejects with a
 * plain string (e.g. an unknown command), and outside Tauri `invoke` throws an Error.
 */
export function toUiError(err: unknown): UiError {
  if (typeof err === "object" && err !== null) {
    const e = err as Record<string, unknown>;
    if (typeof e.code === "string" && typeof e.message === "string") {
      return { code: e.code, message: e.message };
    }
    if (err instanceof Error) return { code: "internal", message: err.message };
  }
  if (typeof err === "string") return { code: "internal", message: err };
  return { code: "internal", message: String(err) };
}

export function toBanner(err: UiError): Banner {
  return { code: err.code, title: titleFor(err.code), message: err.message };
}

/** One banner per distinct error: the three lists usually fail together, for the same reason. */
export function bannersFor(errors: UiError[]): Banner[] {
  const seen = new Set<string>();
  const out: Banner[] = [];
  for (const e of errors) {
    const key = `${e.code}\u0000${e.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(toBanner(e));
  }
  return out;
}

/** Run a command and capture its outcome, so one failing list does not hide the others. */
export async function settle<T>(call: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await call() };
  } catch (err) {
    return { ok: false, error: toUiError(err) };
  }
}

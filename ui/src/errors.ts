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
  // The setup wizard's.
  auth_failed: "A machine refused the login",
  host_key_changed: "A machine's identity changed",
  ssh: "The SSH connection failed",
  remote_command: "A command on a machine failed",
  step_failed: "A setup step failed",
  step_not_effective: "A setup step did not take effect",
  cancelled: "The setup was cancelled",
  not_ready: "The machines are not ready yet",
  too_small: "The hosts are too small for the critical VMs",
  busy: "Another setup is already running",
};

/** What the user can do about each code, for the wizard's error dialog. */
const ADVICE: Record<string, string> = {
  auth_failed:
    "Check the SSH user and the password or key file of that machine on the machines step. The user must be allowed to log in over SSH (for root, `PermitRootLogin` in /etc/ssh/sshd_config).",
  host_key_changed:
    "If that machine was reinstalled, this is expected: check its new fingerprint on its console and confirm it again. If not, stop here: another machine may be answering in its place.",
  host_unreachable:
    "Check that the machine is on, that its address and SSH port are right, and that this computer can reach it (for example with `ssh user@address` in a terminal).",
  ssh: "Check the machine's SSH server and the network between this computer and the machine, then try again.",
  remote_command: "Read the message for the command and the machine, fix the cause on that machine, then try again.",
  step_failed: "Fix what the message says on that machine, then try again: steps already done are skipped.",
  step_not_effective:
    "The step ran, but its result was not there afterwards. Check the machine for what undid it, then try again: steps already done are skipped.",
  cancelled: "Nothing is left half-done. Resume when you are ready: the setup goes on where it stopped.",
  invalid_input: "Go back and correct the details the message names.",
  not_ready: "Fix what the failed checks say on the machines, then run the checks again.",
  too_small:
    "Give the hosts more memory or cores, mark fewer VMs as critical, or make the critical VMs smaller; then run the checks again.",
  needs_root:
    "The lab needs Linux and administrator (root) rights: start Twofold as root to try it, or set up your own machines instead.",
  lab: "Try again; if it keeps failing, the message says which part of the lab did not come up.",
  busy: "Wait until the other setup run has finished or was cancelled, then try again.",
  io: "Check that the file or folder named in the message exists and can be written, then try again.",
  internal: "Restart the app and try again; if it happens again, report the message.",
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

/** What to do about an error with this code; null when the message has to speak for itself. */
export function adviceFor(code: string): string | null {
  return ADVICE[code] ?? null;
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

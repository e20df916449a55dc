// The one way the window calls the app: `command(name, args)` takes the arguments and gives the
// answer that ./bindings/Commands.ts (generated from the Rust handlers) says that command has, so
// a command whose Rust signature changed no longer typechecks here.

import { invoke } from "@tauri-apps/api/core";

import type { Commands } from "./bindings/Commands";

export type CommandName = keyof Commands;
export type ArgsOf<K extends CommandName> = Commands[K]["args"];
export type AnswerOf<K extends CommandName> = Commands[K]["answer"];

/** Calls `cmd`; its arguments may be left out when it takes none. Rejects as Tauri does. */
export function command<K extends CommandName>(cmd: K, ...args: {} extends ArgsOf<K> ? [ArgsOf<K>?] : [ArgsOf<K>]): Promise<AnswerOf<K>> {
  return invoke<AnswerOf<K>>(cmd, args[0] as Record<string, unknown> | undefined);
}

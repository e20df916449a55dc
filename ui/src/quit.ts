// The question the app asks before quitting during a setup. The tray's "Quit" (or closing the
// window where no tray exists) while the setup is being applied sends `quit-requested`
// (src-tauri/src/lifecycle.rs); this dialog says what quitting means and lets the user keep going
// (the default) or stop the setup and quit, which `quit_app` does after the step in progress.

import { listen } from "@tauri-apps/api/event";

import { command } from "./command";
import { el } from "./wizard/render-common";

export const QUIT_TITLE = "Quit Twofold during the setup?";
export const QUIT_MESSAGE =
  "The setup is still being applied to your machines. Quitting stops it after the step in progress, " +
  "so no step is left half-done; open Twofold again to resume the setup where it stopped. " +
  "While Twofold is not running, nothing watches the platform.";

/** The dialog, built once and reused. */
function build(): HTMLDialogElement {
  const dialog = el("dialog", { cls: "dialog", testid: "quit-dialog" });
  dialog.setAttribute("aria-labelledby", "quit-dialog-title");
  const status = el("p", { cls: "muted", testid: "quit-dialog-status" });
  status.setAttribute("role", "status");
  const stay = el("button", { text: "Keep setting up", cls: "primary", testid: "quit-dialog-stay" });
  stay.type = "button";
  const quit = el("button", { text: "Stop the setup and quit", cls: "secondary", testid: "quit-dialog-quit" });
  quit.type = "button";
  stay.addEventListener("click", () => dialog.close());
  quit.addEventListener("click", () => {
    for (const b of [stay, quit]) {
      b.disabled = true;
    }
    status.textContent = "Stopping the setup after the step in progress, then quitting…";
    command("quit_app").catch((err: unknown) => {
      status.textContent = `Could not quit: ${String((err as { message?: string })?.message ?? err)}`;
      for (const b of [stay, quit]) {
        b.disabled = false;
      }
    });
  });
  dialog.append(
    el(
      "div",
      { cls: "dialog-form" },
      el("h2", { text: QUIT_TITLE, id: "quit-dialog-title" }),
      el("p", { cls: "dialog-message", text: QUIT_MESSAGE, testid: "quit-dialog-message" }),
      status,
      el("div", { cls: "actions" }, el("span", { cls: "spacer" }), quit, stay),
    ),
  );
  document.body.append(dialog);
  return dialog;
}

/** Ask, each time the shell says a quit is pending. */
export function listenForQuit(): void {
  let dialog: HTMLDialogElement | null = null;
  void listen("quit-requested", () => {
    dialog ??= build();
    if (!dialog.open) dialog.showModal();
    dialog.querySelector<HTMLButtonElement>('[data-testid="quit-dialog-stay"]')?.focus();
  }).catch(() => undefined); // outside the app (vite in a browser): nothing to listen to
}

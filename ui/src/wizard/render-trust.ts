// Step 3: the machines' SSH identities. Twofold shows the fingerprint each machine presented and
// the user confirms each one, ideally against the machine's own console: that is what stops
// another machine on the network from posing as it (and learning the password).

import { titleFor } from "../errors";
import { consoleCommand, fingerprintGroups } from "./hostkeys";
import { blockedReason, seenFor } from "./state";
import { callout, el, jargon, prose, stepForm, stepHeading, type StepCtx, type StepView } from "./render-common";

export function renderTrust(ctx: StepCtx): StepView {
  const { state, ui } = ctx;
  const busy = ui.busy !== null;
  const scan = state.scan;

  const intro = el(
    "div",
    { cls: "explain" },
    el("p", {}, "Twofold read the ", jargon("host key fingerprint", "the machine's SSH identity"), " of each machine. Before it sends a password, make sure each one is really yours."),
    prose("On each machine's own screen (its console, not over the network), log in and run the command shown next to it, for example `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`. The SHA256:… text it prints must be exactly the one shown here."),
  );

  const items: HTMLElement[] = [];
  if (scan) {
    state.machines.forEach((m) => {
      const name = m.name.trim();
      const seen = seenFor(scan, m);
      const li = el("li", { cls: "trust-item", testid: `trust-item-${name}` });
      li.append(el("div", { cls: "trust-head" }, el("strong", { text: name }), el("span", { cls: "muted", text: ` ${m.role === "host" ? "host" : "storage node"} at ${m.address.trim()}` })));
      if (!seen) {
        li.append(callout("bad", "No identity read", "Twofold got no host key from this machine. Read the identities again, or check its address on the machines step."));
        items.push(li);
        return;
      }
      if (seen.changed_from) {
        const warn = callout(
          "bad",
          titleFor("host_key_changed"),
          el("p", { text: `${name} now shows a different identity than the one Twofold saved for it before. If you reinstalled it, that is expected: check the new fingerprint below on its console. If you did not, do not go on: another machine may be answering in its place.` }),
        );
        warn.dataset.testid = `host-key-changed-${name}`;
        warn.dataset.code = "host_key_changed";
        li.append(warn);
      }
      li.append(
        el("p", { cls: "fingerprint" }, el("code", { text: fingerprintGroups(seen.fingerprint), testid: `fingerprint-${name}` })),
        prose(`Check on its console with \`${consoleCommand(seen.key)}\``, "muted small"),
      );
      const box = el("input", { id: `trust-${name}`, testid: `trust-${name}` });
      box.type = "checkbox";
      box.checked = m.host_key !== "" && m.host_key === seen.key;
      box.addEventListener("change", () => {
        ctx.dispatch({ type: "trust", name, trusted: box.checked }, "patch");
      });
      const label = el("label", { cls: "check" }, box, ` This is ${name}'s fingerprint: I checked it`);
      label.htmlFor = box.id;
      li.append(label);
      items.push(li);
    });
  }

  const status = el("p", { cls: "muted", testid: "trust-status" });
  status.setAttribute("aria-live", "polite");
  const content: (HTMLElement | null)[] = [stepHeading("Check the machines' identities"), intro];
  if (state.lab && scan) {
    content.push(callout("info", null, "These are the lab's machines, on this computer: nobody can be in between, so checking on a console is optional here."));
  }
  if (!scan) content.push(callout("info", null, busy ? "Reading the machines' identities…" : "The identities have not been read yet."));
  else content.push(el("ul", { cls: "trust-list" }, ...items));
  content.push(status);

  const allLab = state.lab && scan
    ? [{ label: "Confirm all", testid: "trust-all", disabled: busy, run: () => {
        for (const m of ctx.state.machines) ctx.dispatch({ type: "trust", name: m.name.trim(), trusted: true }, "none");
        ctx.renderAndFocus("wizard-next");
      } }]
    : [];

  const reason = () => blockedReason(ctx.state);
  const form = stepForm("trust", content, {
    back: { label: "Back", testid: "wizard-back", run: () => ctx.back(), disabled: busy },
    secondary: [{ label: "Read again", testid: "trust-rescan", disabled: busy, run: () => ctx.scan() }, ...allLab],
    primary: { label: "Continue", testid: "wizard-next", disabled: busy, run: () => {
      const why = reason();
      if (why) {
        status.textContent = why;
        return;
      }
      ctx.next();
    } },
  });

  const patch = () => {
    const why = reason();
    const next = form.querySelector<HTMLButtonElement>('[data-testid="wizard-next"]');
    if (next) next.title = why ?? "";
    const open = scan ? ctx.state.machines.filter((m) => m.host_key === "" || m.host_key !== seenFor(scan, m)?.key).length : 0;
    status.textContent = !scan ? "" : open === 0 ? "All identities confirmed." : `${open} of ${ctx.state.machines.length} still to confirm.`;
    for (const li of form.querySelectorAll<HTMLElement>(".trust-item")) {
      const cb = li.querySelector<HTMLInputElement>('input[type="checkbox"]');
      li.classList.toggle("confirmed", !!cb?.checked);
    }
  };
  patch();
  return { root: form, patch };
}

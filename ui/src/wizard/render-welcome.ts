// Step 1: what Twofold will do, and the two ways to start.

import { el, jargon, prose, stepForm, stepHeading, taskBox, type StepCtx, type StepView } from "./render-common";

export function renderWelcome(ctx: StepCtx): StepView {
  const busy = ctx.ui.busy !== null;
  const task = taskBox("lab-progress");
  task.patch(ctx.ui.task);

  const content = [
    stepHeading("Set up Twofold"),
    el("p", { cls: "lead", text: "Twofold turns four machines into a small platform that keeps your important VMs running when a machine fails." }),
    el(
      "ul",
      { cls: "promises" },
      el("li", {}, el("strong", { text: "Two hosts" }), " that run your VMs, sized ", jargon("N+1", "each host alone can carry the critical VMs"), ", so either can fail or be serviced while the other runs them."),
      el("li", {}, el("strong", { text: "Replicated storage" }), " on two storage nodes: every VM disk is kept on both, so a disk or node can fail without losing data."),
      el("li", {}, el("strong", { text: "Backups" }), " of the VMs, kept on the storage nodes."),
      el("li", {}, el("strong", { text: "Offsite copies" }), " of the backups, for when the whole room is lost."),
    ),
    el("p", { text: "Twofold logs in to each machine over SSH, checks it, shows you the plan, and changes nothing until you say so. You need each machine's address and a password or key that lets you log in." }),
    el(
      "div",
      { cls: "choice" },
      el("h3", { text: "Just want to see it first?" }),
      prose("“Try it on this computer” brings up Twofold's built-in lab: four small machines on this computer, filled in for you. It needs Linux and administrator (root) rights, and takes a few minutes."),
    ),
    task.root,
  ];

  const form = stepForm("welcome", content, {
    secondary: [{ label: "Try it on this computer", testid: "try-lab", run: () => ctx.tryLab(), disabled: busy }],
    primary: { label: "Set up my machines", testid: "wizard-next", run: () => ctx.next(), disabled: busy },
  });
  return {
    root: form,
    patch: () => {
      task.patch(ctx.ui.task);
    },
  };
}

// Step 4: the checks, machine by machine, and the N+1 sizing as a picture. Nothing on the machines
// changes here; the user can fix a machine and check again as often as needed.

import { formatGib, sizingPicture, type HostPicture, type StorePicture } from "./sizing";
import { countsSentence, groupResults, missingNodes, STATUS_LABELS, type NodeGroup } from "./preflight";
import { blockedReason } from "./state";
import type { CheckStatus, SizingReport } from "./types";
import {
  badge,
  barLegend,
  barSvg,
  callout,
  el,
  jargon,
  prose,
  stepForm,
  stepHeading,
  taskBox,
  type StepCtx,
  type StepView,
  type Tone,
} from "./render-common";

const TONE: Record<CheckStatus, Tone> = { pass: "ok", warn: "warn", fail: "bad" };

function nodeSection(g: NodeGroup): HTMLElement {
  const role = g.role === "host" ? "Virtualization host" : g.role === "storage" ? "Storage node" : "";
  const sec = el("section", { cls: `node-checks ${g.worst}`, testid: `preflight-node-${g.node}` });
  const head = el("h3", {}, g.node, role ? el("span", { cls: "muted", text: ` · ${role}` }) : null, " ", badge(STATUS_LABELS[g.worst], TONE[g.worst]));
  sec.append(head);
  const list = el("ul", { cls: "checks" });
  for (const c of g.checks) {
    const li = el("li", { cls: `check-item ${c.status}`, testid: `check-${g.node}-${c.label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}` });
    li.dataset.status = c.status;
    li.append(
      el("div", { cls: "check-head" }, badge(STATUS_LABELS[c.status], TONE[c.status]), el("strong", { text: c.label }), c.found ? el("span", { cls: "found", text: c.found }) : null),
    );
    if (c.reason) li.append(prose(c.reason, "reason"));
    if (c.fix && c.status !== "pass") li.append(el("p", { cls: "fix" }, el("strong", { text: "What to do: " }), ...prose(c.fix, undefined, "span").childNodes));
    list.append(li);
  }
  sec.append(list);
  return sec;
}

function hostFigure(h: HostPicture): HTMLElement {
  const fig = el("figure", { cls: `sizing-host${h.fits ? "" : " short"}`, testid: `sizing-host-${h.host}` });
  fig.append(el("figcaption", {}, el("strong", { text: h.host }), " ", badge(h.fits ? "Can carry them alone" : "Too small", h.fits ? "ok" : "bad")));
  for (const bar of h.bars) {
    const key = bar.title === "Memory" ? "ram" : "vcpus";
    fig.append(
      el(
        "div",
        { cls: "bar-row" },
        el("span", { cls: "bar-title", text: bar.title }),
        barSvg(bar, `sizing-${h.host}-${key}`),
        el("p", { cls: "bar-caption", text: bar.caption }),
      ),
    );
  }
  if (h.notFitting.length) {
    fig.append(el("p", { cls: "bad-text", text: "Critical VMs that would not fit on this host alone:" }), el("ul", { cls: "not-fitting" }, ...h.notFitting.map((s) => el("li", { text: s }))));
  }
  return fig;
}

function storeFigure(s: StorePicture): HTMLElement {
  const fig = el("figure", { cls: `sizing-store${s.fits === false ? " short" : ""}`, testid: "sizing-store" });
  fig.append(
    el("figcaption", {}, el("strong", { text: "Storage nodes" }), ` · each keeps a full copy of every VM disk: ${formatGib(s.needGib)}`),
  );
  for (const n of s.nodes) {
    const row = el("div", { cls: "bar-row" }, el("span", { cls: "bar-title", text: n.node }));
    if (n.bar) row.append(barSvg(n.bar, `sizing-store-${n.node}`));
    row.append(el("p", { cls: "bar-caption", text: n.caption }));
    fig.append(row);
  }
  return fig;
}

export function sizingSection(report: SizingReport | null): HTMLElement {
  const sec = el("section", { cls: "group sizing", testid: "sizing" });
  sec.append(
    el("h3", { text: "Can each host carry the critical VMs alone?" }),
    el("p", { cls: "muted" }, "Twofold sizes for ", jargon("N+1", "each host alone can carry the critical VMs"), ", so either host can fail or be serviced while the VMs keep running on the other."),
  );
  if (!report) {
    sec.append(el("p", { text: "No VMs to protect were listed, so there is nothing to size yet. Add them on the machines step to have the hosts checked." }));
    return sec;
  }
  const pic = sizingPicture(report);
  sec.append(
    pic.ok
      ? callout("ok", "Both hosts are big enough.", "Each can run every critical VM on its own, with room kept for itself.")
      : callout("bad", "Not enough room.", el("ul", {}, ...pic.problems.map((p) => el("li", { text: p })))),
    barLegend(["reserve", "need", "spare", "short"]),
    ...pic.hosts.map(hostFigure),
  );
  if (pic.store.nodes.length) sec.append(storeFigure(pic.store));
  if (pic.notes.length) sec.append(el("ul", { cls: "notes muted" }, ...pic.notes.map((n) => el("li", { text: n }))));
  return sec;
}

export function renderPreflight(ctx: StepCtx): StepView {
  const { state, ui } = ctx;
  const busy = ui.busy !== null;
  const view = state.preflight;
  const task = taskBox("preflight-progress");
  task.patch(ui.busy ? ui.task : null);

  const content: (HTMLElement | null)[] = [
    stepHeading("Check the machines"),
    el("p", { cls: "muted", text: "Twofold logs in to each machine and checks it can do its job: system, hardware, free space, software, clock and the network between them. It changes nothing." }),
    task.root,
  ];

  if (view) {
    const machines = state.machines.map((m) => ({ name: m.name.trim(), role: m.role }));
    const groups = groupResults(view.results ?? [], machines);
    const missing = missingNodes(groups, machines);
    const passed = view.passed && (!view.sizing || view.sizing.ok);
    const summary = callout(
      passed ? "ok" : "bad",
      passed ? "The machines are ready." : "Not ready yet.",
      el("p", { text: view.summary }),
      el("p", { cls: "muted", text: countsSentence(groups) }),
    );
    summary.dataset.testid = "preflight-summary";
    summary.dataset.passed = String(passed);
    content.push(summary);
    if (missing.length) content.push(callout("warn", null, `No results came back for ${missing.join(", ")}.`));
    content.push(el("div", { cls: "node-groups" }, ...groups.map(nodeSection)), sizingSection(view.sizing));
  } else if (!busy) {
    content.push(callout("info", null, "The checks have not run yet."));
  }

  const why = blockedReason(state);
  const canGo = view !== null && why === null;
  const again = { label: view ? "Check again" : "Run the checks", testid: "preflight-again", disabled: busy, run: () => ctx.preflight() };
  const next = { label: "Continue", testid: "wizard-next", disabled: busy || !canGo, disabledReason: why, run: () => ctx.next() };
  const form = stepForm("preflight", content, {
    back: { label: "Back", testid: "wizard-back", run: () => ctx.back(), disabled: busy },
    // Enter runs what makes sense now: go on when it can, check again when it cannot.
    secondary: canGo ? [again] : [],
    primary: canGo ? next : again,
  });
  if (!canGo) {
    // Still there, refused, so the user sees that going on is what is blocked, and why (next to
    // it, in the bar that stays on screen).
    const bar = form.querySelector(".actions")!;
    const reason = el("span", { cls: "blocked-reason", id: "preflight-blocked", testid: "preflight-blocked", text: why ?? "" });
    bar.querySelector(".spacer")?.replaceWith(reason);
    const b = el("button", { text: "Continue", cls: "secondary", testid: "wizard-next" });
    b.type = "button";
    b.setAttribute("aria-disabled", "true");
    b.setAttribute("aria-describedby", reason.id);
    bar.insertBefore(b, bar.lastElementChild);
  }
  return { root: form, patch: () => task.patch(ctx.ui.busy ? ctx.ui.task : null) };
}

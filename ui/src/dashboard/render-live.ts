// Drawing the live part of the dashboard (live.ts decides what it says): the health header, a
// card per node with meters and CPU/memory charts, the four rules, and each VM's migrate action
// with its progress. Text goes in through textContent only.

import { Channel } from "@tauri-apps/api/core";

import { command } from "../command";

import { toUiError } from "../errors";
import type { UiError } from "../types";
import type { ProgressEvent } from "../wizard/types";
import { CHART_H, CHART_W, liveView, migrationDone, migrationTargets, transferLine, whyNoMigration } from "./live";
import type { History, PlatformStatus } from "./types";

const SVG = "http://www.w3.org/2000/svg";

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function chart(points: string, label: string, cls: string): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${CHART_W} ${CHART_H}`);
  svg.setAttribute("class", `chart ${cls}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", points);
  svg.append(line);
  return svg;
}

export async function fetchLive(): Promise<{ status: PlatformStatus | null; history: History }> {
  const [status, history] = await Promise.all([
    command("platform_status"),
    command("status_history"),
  ]);
  return { status, history };
}

/** One migration at a time from this window; its line of progress survives redraws. */
const moving: { vm: string | null; line: string; done: string | null; error: UiError | null } = {
  vm: null,
  line: "",
  done: null,
  error: null,
};

export function renderLive(root: HTMLElement, s: PlatformStatus | null, history: History, redraw: () => void): void {
  if (!s) {
    root.replaceChildren(el("p", "Looking at the platform…", "placeholder"));
    return;
  }
  const v = liveView(s, history);
  const head = el("section", undefined, `card health ${v.tone}`);
  head.dataset.testid = "health";
  head.dataset.health = v.health;
  head.append(el("h2", `Platform: ${v.healthLabel}`), el("p", v.summary));

  const nodes = el("section", undefined, "node-cards");
  nodes.setAttribute("aria-label", "Nodes, live");
  for (const c of v.nodes) {
    const card = el("article", undefined, `card node-card ${c.tone}`);
    card.dataset.testid = `node-${c.name}`;
    card.dataset.state = c.state;
    const title = el("h3");
    title.append(el("span", c.name), el("span", c.state, `state ${c.tone}`));
    card.append(title, el("p", `${c.role} · ${c.address}`, "muted"), el("p", c.detail, "detail"));
    const meters = el("dl", undefined, "meters");
    for (const m of c.meters) {
      const bar = el("meter");
      bar.min = 0;
      bar.max = 100;
      bar.value = m.percent ?? 0;
      bar.setAttribute("aria-label", `${m.label} ${m.text}`);
      const dd = el("dd");
      dd.append(bar, el("span", m.text));
      meters.append(el("dt", m.label), dd);
    }
    card.append(meters);
    if (c.cpuChart || c.memChart) {
      const charts = el("div", undefined, "charts");
      charts.append(chart(c.cpuChart, `CPU use of ${c.name} over the last minutes`, "cpu"));
      charts.append(chart(c.memChart, `Memory use of ${c.name} over the last minutes`, "mem"));
      charts.append(el("span", "CPU (blue) and memory (green), last minutes", "muted small"));
      card.append(charts);
    }
    nodes.append(card);
  }

  const rules = el("ul", undefined, "rules");
  rules.dataset.testid = "live-rules";
  for (const r of v.rules) {
    const li = el("li", undefined, `rule ${r.tone}`);
    li.dataset.rule = r.id;
    li.append(el("strong", r.title), el("span", r.detail));
    rules.append(li);
  }
  const rulesCard = el("section", undefined, "card");
  rulesCard.append(el("h2", "The four rules"), rules);

  const vmCard = el("section", undefined, "card");
  vmCard.append(el("h2", "Live VMs"));
  const list = el("ul", undefined, "live-vms");
  for (const vm of s.vms) {
    const li = el("li");
    li.dataset.testid = `live-vm-${vm.name}`;
    li.append(el("strong", vm.name), el("span", ` on ${vm.host}, ${vm.state}`));
    const targets = migrationTargets(vm, s);
    if (moving.vm === vm.name) {
      li.append(el("span", moving.line, "progress-line"));
    } else if (targets.length > 0 && moving.vm === null) {
      const pick = el("select");
      pick.setAttribute("aria-label", `Host to move ${vm.name} to`);
      for (const t of targets) pick.append(new Option(t, t));
      const go = el("button", "Move live");
      go.type = "button";
      go.dataset.testid = `migrate-${vm.name}`;
      go.addEventListener("click", () => void migrate(vm.name, pick.value, redraw));
      li.append(pick, go);
    } else {
      const why = whyNoMigration(vm, s);
      if (why) li.append(el("span", why, "muted"));
    }
    list.append(li);
  }
  if (s.vms.length === 0) list.append(el("li", "No VM runs on the hosts.", "placeholder"));
  vmCard.append(list);
  if (moving.done) {
    const done = el("p", moving.done, "callout ok");
    done.dataset.testid = "migrate-result";
    vmCard.append(done);
  }
  if (moving.error) {
    const err = el("p", moving.error.message, "callout bad");
    err.dataset.code = moving.error.code;
    err.dataset.testid = "migrate-error";
    vmCard.append(err);
  }
  root.replaceChildren(head, nodes, rulesCard, vmCard);
}

async function migrate(vm: string, to: string, redraw: () => void): Promise<void> {
  moving.vm = vm;
  moving.error = null;
  moving.done = null;
  moving.line = `Moving ${vm} to ${to}…`;
  redraw();
  const ch = new Channel<ProgressEvent>();
  ch.onmessage = (e) => {
    if (e.kind === "transferred" && e.total_bytes) {
      moving.line = `Moving ${vm} to ${to}: ${transferLine(e.done_bytes, e.total_bytes)}`;
      redraw();
    } else if (e.kind === "message") {
      moving.line = `Moving ${vm} to ${to}: ${e.line}`;
      redraw();
    }
  };
  try {
    const stats = await command("vm_migrate", { vm, to, onProgress: ch });
    moving.done = migrationDone(stats);
  } catch (err) {
    moving.error = toUiError(err);
  } finally {
    moving.vm = null;
    redraw();
  }
}

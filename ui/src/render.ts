// Putting a View into the page (index.html holds the skeleton). Text goes in through textContent
// only: names and messages come from the inventory and are never parsed as HTML.

import type { Banner } from "./errors";
import { splitCode, UNAVAILABLE, type View } from "./view";

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text?: string,
  className?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`index.html lacks #${id}`);
  return e;
}

function row(cells: (string | HTMLElement)[], dataName?: string, numFrom = Infinity): HTMLTableRowElement {
  const tr = el("tr");
  if (dataName !== undefined) tr.dataset.name = dataName;
  cells.forEach((c, i) => {
    const td = el("td", undefined, i >= numFrom ? "num" : undefined);
    if (typeof c === "string") td.textContent = c;
    else td.append(c);
    tr.append(td);
  });
  return tr;
}

function placeholderRow(text: string, span: number): HTMLTableRowElement {
  const td = el("td", text, "placeholder");
  td.colSpan = span;
  const tr = el("tr");
  tr.append(td);
  return tr;
}

export function renderBanners(banners: Banner[]): void {
  const box = byId("banner");
  box.replaceChildren(
    ...banners.map((b) => {
      const item = el("div", undefined, "banner-item");
      item.dataset.code = b.code;
      item.append(el("strong", b.title), el("span", b.message));
      return item;
    }),
  );
  box.hidden = banners.length === 0;
}

export function render(view: View, updatedAt: Date): void {
  renderBanners(view.banners);

  const empty = byId("empty");
  if (view.empty) {
    const p = el("p");
    for (const part of splitCode(view.empty)) p.append(part.code ? el("code", part.text) : part.text);
    empty.replaceChildren(el("h2", "Welcome to Twofold"), p);
  }
  empty.hidden = view.empty === null;
  byId("nodes-card").hidden = view.empty !== null;

  const nodes = byId("nodes").querySelector("tbody")!;
  nodes.replaceChildren(...view.nodes.map((n) => row([n.name, n.role, n.address], n.name)));
  if (view.failed.nodes) nodes.append(placeholderRow(UNAVAILABLE, 3));

  const vms = byId("vms").querySelector("tbody")!;
  vms.replaceChildren(
    ...view.vms.map((v) => row([v.name, v.host, el("span", v.state, `state ${v.tone}`), v.vcpus, v.memory], v.name, 3)),
  );
  if (view.vms.length === 0) vms.append(placeholderRow(view.failed.vms ? UNAVAILABLE : "No VMs in the inventory", 5));

  const events = byId("events");
  events.replaceChildren(
    ...view.events.map((e) => {
      const li = el("li", undefined, `event ${e.severity}`);
      li.dataset.id = String(e.id);
      li.append(el("span", e.age, "age"), el("span", e.source, "source"), el("span", e.message, "message"));
      return li;
    }),
  );
  if (view.events.length === 0) {
    events.append(el("li", view.failed.events ? UNAVAILABLE : "No events yet", "placeholder"));
  }

  const at = updatedAt.toLocaleTimeString();
  byId("updated").textContent = view.banners.length ? `Refresh failed at ${at}` : `Updated ${at}`;
}

/** What is on screen now, counted from the DOM (the smoke test checks the real page). */
export function rendered(): { nodeRows: number; vmRows: number; eventRows: number; nodeNames: string[] } {
  const visible = (id: string) => !byId(id).hidden;
  const nodeRows = visible("nodes-card")
    ? Array.from(document.querySelectorAll<HTMLTableRowElement>("#nodes tbody tr[data-name]"))
    : [];
  return {
    nodeRows: nodeRows.length,
    vmRows: document.querySelectorAll("#vms tbody tr[data-name]").length,
    eventRows: document.querySelectorAll("#events li[data-id]").length,
    nodeNames: nodeRows.map((r) => r.dataset.name ?? ""),
  };
}

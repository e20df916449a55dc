// Entry point. At start, decide between the setup wizard and the dashboard: the wizard while a
// setup is unfinished (a saved wizard state that is not done) or when the inventory has no nodes;
// the dashboard otherwise. The dashboard refreshes from the inventory every few seconds; in
// smoke-test mode, the first render of either is reported to the shell, which then exits.

import "./style.css";
import "./wizard/wizard.css";

import { fetchNodes, fetchSnapshot, smokeEnabled, smokeReport } from "./api";
import { settle, toBanner, toUiError } from "./errors";
import { render, renderBanners, rendered } from "./render";
import type { UiError } from "./types";
import { buildView } from "./view";
import { tauriApi } from "./wizard/api";
import { chooseView } from "./wizard/state";
import { startWizard } from "./wizard/wizard";
import { fetchLive, renderLive } from "./dashboard/render-live";
import type { History, PlatformStatus } from "./dashboard/types";
import { listen } from "@tauri-apps/api/event";
import { listenForQuit } from "./quit";

const REFRESH_MS = 5000;

const smoke = smokeEnabled();
let reported = false;

async function reportOnce(report: () => Parameters<typeof smokeReport>[0]): Promise<void> {
  if (reported || !(await smoke)) return;
  reported = true;
  await smokeReport(report());
}

let live: { status: PlatformStatus | null; history: History } = { status: null, history: {} };

function drawLive(): void {
  const root = document.getElementById("live");
  if (root) renderLive(root, live.status, live.history, drawLive);
}

async function refreshLive(): Promise<void> {
  try {
    live = await fetchLive();
  } catch {
    // Outside the app (vite in a browser) there is no live status: the inventory lists remain.
    return;
  }
  drawLive();
}

async function refresh(): Promise<void> {
  void refreshLive();
  try {
    const view = buildView(await fetchSnapshot(), Date.now());
    render(view, new Date());
    const first = view.banners[0];
    const error: UiError | undefined = first ? { code: first.code, message: first.message } : undefined;
    await reportOnce(() => ({ ...rendered(), error, view: "dashboard" }));
  } catch (err) {
    const error = toUiError(err);
    renderBanners([toBanner(error)]);
    await reportOnce(() => ({ ...rendered(), error, view: "dashboard" })).catch(() => undefined);
  }
}

function loop(): void {
  void refresh().finally(() => window.setTimeout(loop, REFRESH_MS));
}

function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`index.html lacks #${id}`);
  return e;
}

let dashboardStarted = false;

function showDashboard(): void {
  byId("wizard").hidden = true;
  byId("dashboard").hidden = false;
  document.title = "Twofold";
  if (!dashboardStarted) {
    dashboardStarted = true;
    loop();
    // Each look of the platform arrives as an event too: redraw at once, not at the next refresh.
    void listen<PlatformStatus>("status", () => void refreshLive()).catch(() => undefined);
  }
}

async function boot(): Promise<void> {
  listenForQuit();
  const [saved, nodes] = await Promise.all([settle(() => tauriApi.load()), fetchNodes()]);
  const entry = chooseView(saved, nodes);
  byId("boot").hidden = true;
  if (entry.view === "dashboard") {
    showDashboard();
    return;
  }
  startWizard({
    root: byId("wizard"),
    api: tauriApi,
    state: entry.state,
    notice: entry.notice,
    onDone: showDashboard,
    onRendered: () => {
      void reportOnce(() => ({ nodeRows: 0, vmRows: 0, eventRows: 0, nodeNames: [], view: "wizard" })).catch(() => undefined);
    },
  });
}

void boot().catch((err) => {
  // Deciding failed in a way settle() did not catch (a bug): the dashboard shows the error.
  showDashboard();
  renderBanners([toBanner(toUiError(err))]);
});

// Entry point: refresh the window from the inventory every few seconds; in smoke-test mode, report
// the first render to the shell, which then exits.

import "./style.css";

import { fetchSnapshot, smokeEnabled, smokeReport } from "./api";
import { toBanner, toUiError } from "./errors";
import { render, renderBanners, rendered } from "./render";
import type { UiError } from "./types";
import { buildView } from "./view";

const REFRESH_MS = 5000;

const smoke = smokeEnabled();
let reported = false;

async function reportOnce(error: UiError | undefined): Promise<void> {
  if (reported || !(await smoke)) return;
  reported = true;
  await smokeReport({ ...rendered(), error });
}

async function refresh(): Promise<void> {
  try {
    const view = buildView(await fetchSnapshot(), Date.now());
    render(view, new Date());
    const first = view.banners[0];
    await reportOnce(first ? { code: first.code, message: first.message } : undefined);
  } catch (err) {
    const error = toUiError(err);
    renderBanners([toBanner(error)]);
    await reportOnce(error).catch(() => undefined);
  }
}

function loop(): void {
  void refresh().finally(() => window.setTimeout(loop, REFRESH_MS));
}

loop();

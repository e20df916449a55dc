// End-to-end: the real desktop app (under Xvfb, driven by tauri-driver + WebKitWebDriver) walks
// the setup wizard from the built-in lab's bare machines to a verified platform. Bad input first,
// while the machines are still bare: each must show its error and change nothing on the nodes.
// Run by tests/desktop-e2e.sh, which starts tauri-driver and cleans up.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { after, before, test } from "node:test";

import { Builder, By, until } from "selenium-webdriver";

const APP = process.env.TWOFOLD_E2E_APP;
const TWOFOLD = process.env.TWOFOLD_E2E_CLI;
const SHOTS = process.env.TWOFOLD_E2E_SHOTS ?? "artifacts/screenshots";
assert.ok(APP && TWOFOLD, "TWOFOLD_E2E_APP and TWOFOLD_E2E_CLI must be set (tests/desktop-e2e.sh sets them)");
mkdirSync(SHOTS, { recursive: true });

let driver;
let shot = 0;

async function screenshot(name, file = null) {
  shot += 1;
  const path = `${SHOTS}/${file ?? `wizard-${String(shot).padStart(2, "0")}-${name}`}.png`;
  writeFileSync(path, Buffer.from(await driver.takeScreenshot(), "base64"));
}

const byTestId = (id) => By.css(`[data-testid="${id}"]`);

async function find(id, timeoutMs = 20_000) {
  return driver.wait(until.elementLocated(byTestId(id)), timeoutMs, `no [data-testid=${id}] within ${timeoutMs} ms`);
}

async function visible(id, timeoutMs = 20_000) {
  const e = await find(id, timeoutMs);
  await driver.wait(until.elementIsVisible(e), timeoutMs, `[data-testid=${id}] not visible within ${timeoutMs} ms`);
  return e;
}

async function step(name, timeoutMs = 20_000) {
  await find(`wizard-step-${name}`, timeoutMs);
}

async function click(id, timeoutMs = 20_000) {
  const e = await visible(id, timeoutMs);
  await driver.wait(until.elementIsEnabled(e), timeoutMs, `[data-testid=${id}] stays disabled`);
  await e.click();
}

async function setField(id, value) {
  const e = await visible(id);
  await e.clear();
  if (value !== "") await e.sendKeys(value);
}

/** The dialog an engine error becomes: its code, after which it is closed. */
async function dialogCode(timeoutMs) {
  const d = await visible("error-dialog", timeoutMs);
  const code = await (await find("error-dialog-code")).getText();
  const message = await (await find("error-dialog-message")).getText();
  assert.ok(message.length > 20, `the dialog explains itself: '${message}'`);
  return { dialog: d, code, message };
}

/** What setting the platform up would change on the nodes: Twofold's key, bricks, store, libvirt. */
function nodeState() {
  const probe = "cat /root/.ssh/authorized_keys 2>/dev/null | grep -c twofold; ls /srv/twofold /var/lib/twofold 2>&1; ls /etc/libvirt/storage 2>&1";
  return ["host1", "host2", "stor1", "stor2"]
    .map((n) => `${n}: ${execFileSync(TWOFOLD, ["lab", "exec", n, "--", "sh", "-c", `${probe}; true`], { encoding: "utf8" })}`)
    .join("\n");
}

before(async () => {
  driver = await new Builder()
    .usingServer("http://127.0.0.1:4444/")
    .withCapabilities({ browserName: "wry", "tauri:options": { application: APP } })
    .build();
});

after(async () => {
  if (driver) await driver.quit().catch(() => undefined);
});

test("the welcome step offers the lab and the machines step validates addresses inline", { timeout: 300_000 }, async () => {
  await step("welcome", 60_000);
  await screenshot("welcome");
  await click("try-lab");
  // Bringing the bare lab up takes about a minute on two cores.
  await step("machines", 240_000);
  assert.equal(await (await find("machine-0-address")).getAttribute("value"), "10.251.77.11");
  await screenshot("machines");

  await setField("machine-0-address", "");
  await click("wizard-next");
  const err = await visible("machine-0-address-error");
  assert.match(await err.getText(), /\S/, "an empty address is named");
  await step("machines");
  await setField("machine-0-address", "10.251.77.");
  await click("wizard-next");
  assert.match(await (await visible("machine-0-address-error")).getText(), /\S/);
  await screenshot("machines-bad-address");
  await step("machines");
  await setField("machine-0-address", "10.251.77.11");
});

test("an unreachable machine and a wrong password each show a dialog and change nothing", { timeout: 300_000 }, async () => {
  const before = nodeState();

  // No lab node has .99: the key scan cannot reach it.
  await setField("machine-1-address", "10.251.77.99");
  await click("wizard-next");
  let d = await dialogCode(60_000);
  assert.match(d.code, /unreachable|ssh|timeout/i, `${d.code}: ${d.message}`);
  await screenshot("unreachable-dialog");
  await click("error-dialog-close");
  if (!(await driver.findElements(byTestId("wizard-step-machines"))).length) await click("wizard-back");
  await step("machines");
  await setField("machine-1-address", "10.251.77.12");

  // A wrong password for host1: refused when the checks log in.
  const password = await (await find("machine-0-password")).getAttribute("value");
  await setField("machine-0-password", "not-the-password");
  await click("wizard-next");
  await step("trust", 60_000);
  await click("trust-all", 60_000);
  await screenshot("trust");
  await click("wizard-next");
  await step("preflight");
  if (!(await driver.findElements(byTestId("preflight-summary"))).length) {
    const again = await driver.findElements(byTestId("error-dialog"));
    if (!again.length || !(await again[0].isDisplayed())) await click("preflight-again").catch(() => undefined);
  }
  d = await dialogCode(120_000);
  assert.equal(d.code, "auth_failed", d.message);
  await screenshot("wrong-password-dialog");
  await click("error-dialog-close");

  assert.equal(nodeState(), before, "the bad input changed something on the nodes");

  // Put the right password back.
  await click("wizard-back");
  await click("wizard-back");
  await step("machines");
  await setField("machine-0-password", password);
});

test("the wizard sets the bare lab up and verifies it", { timeout: 900_000 }, async () => {
  await click("wizard-next");
  await step("trust", 60_000);
  await click("trust-all", 60_000);
  await click("wizard-next");
  await step("preflight");
  if (!(await driver.findElements(byTestId("preflight-summary"))).length) await click("preflight-again");
  await visible("preflight-summary", 180_000);
  await visible("sizing");
  await screenshot("preflight");
  await click("wizard-next", 30_000);

  await step("plan", 120_000);
  const steps = await driver.findElements(By.css('[data-testid^="plan-step-"]'));
  assert.ok(steps.length >= 20, `the plan lists its steps (${steps.length})`);
  await screenshot("plan");
  await click("wizard-next", 60_000);

  await step("apply");
  await visible("apply-log", 60_000);
  await screenshot("apply-running");
  await visible("apply-outcome", 600_000);
  await screenshot("apply-done");
  const failed = await driver.findElements(By.css('[data-testid^="step-state-"] .bad, [data-testid^="step-state-"].failed'));
  assert.equal(failed.length, 0, "no step failed");
  await click("wizard-next", 30_000);

  await step("verify", 30_000);
  const summary = await visible("verify-summary", 240_000);
  await screenshot("verify");
  assert.doesNotMatch(await summary.getText(), /fail|not /i, await summary.getText());
  await click("wizard-next", 30_000);

  await step("done", 30_000);
  const card = await visible("scorecard", 60_000);
  for (const rule of ["n_plus_one", "replicated_storage", "backups", "offsite"]) {
    await find(`scorecard-${rule}`);
  }
  assert.match(await card.getText(), /two/i);
  await screenshot("done");

  // The platform exists outside the app: the replicated volume is started on the storage nodes,
  // and both hosts mount it.
  const info = execFileSync(TWOFOLD, ["lab", "exec", "stor1", "--", "gluster", "--mode=script", "volume", "info", "vmstore"], { encoding: "utf8" });
  assert.match(info, /Status: Started/);
  for (const h of ["host1", "host2"]) {
    execFileSync(TWOFOLD, ["lab", "exec", h, "--", "mountpoint", "-q", "/var/lib/twofold/store"]);
  }

  // The dashboard opens onto the platform just set up, with every node's live state.
  await click("open-dashboard");
  await driver.wait(until.elementLocated(By.css('[data-testid="health"]')), 60_000);
  await driver.wait(
    async () => (await driver.findElements(By.css('[data-testid^="node-"][data-state="up"]'))).length === 4,
    60_000,
    "the dashboard shows four nodes up",
  );
  await screenshot("dashboard", "dashboard");
});

// End-to-end: the real desktop app (under Xvfb, driven by tauri-driver + WebKitWebDriver) walks
// the setup wizard from the built-in lab's bare machines to a verified platform. Bad input first,
// while the machines are still bare: each must show its error and change nothing on the nodes.
// Then a machine's identity changes under the wizard; in the middle of the setup the window is
// closed (the app goes on in the tray) and opened again from the tray, the tray's Quit asks first
// and, confirmed, stops the setup; the app is opened again, resumes, and the platform is verified.
// The whole walk uses the keyboard alone: Tab to reach a control, Enter or Space to use it, typing
// into fields. The tray is used as a tray host would (its menu read and clicked over D-Bus).
// Run by tests/desktop-e2e.sh, which starts tauri-driver and a tray host, and cleans up.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { after, before, test } from "node:test";

import { Builder, By, Key, until } from "selenium-webdriver";

const APP = process.env.TWOFOLD_E2E_APP;
const TWOFOLD = process.env.TWOFOLD_E2E_CLI;
const SHOTS = process.env.TWOFOLD_E2E_SHOTS ?? "artifacts/screenshots";
// Where the app writes its log files ($XDG_DATA_HOME/twofold/logs) and where the test's folder
// opener (a desktop entry, tests/desktop-e2e.sh) notes what it was asked to open.
const LOG_DIR = process.env.XDG_DATA_HOME ? `${process.env.XDG_DATA_HOME}/twofold/logs` : null;
const OPENED = process.env.TWOFOLD_E2E_OPENED;
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

/** The data-testid of the focused element, or null. */
async function focused() {
  return driver.executeScript("const a = document.activeElement; return a && a.dataset ? a.dataset.testid ?? null : null;");
}

/**
 * Keyboard only: Tab (forward) until the control has the focus, then Enter (Space for a check
 * box). Fails if Tab never reaches it: that is a control a keyboard user cannot use.
 */
async function press(id, timeoutMs = 20_000) {
  // The wizard redraws a step when its state changes: look the control up again if it was replaced.
  let checkbox = false;
  await driver.wait(async () => {
    try {
      const e = await visible(id, timeoutMs);
      if (!(await e.isEnabled()) || (await e.getAttribute("aria-disabled")) === "true") return false;
      checkbox = (await e.getAttribute("type")) === "checkbox";
      return true;
    } catch (err) {
      if (err.name === "StaleElementReferenceError") return false;
      throw err;
    }
  }, timeoutMs, `[data-testid=${id}] stays unavailable`);
  for (let i = 0; i < 120 && (await focused()) !== id; i++) {
    await driver.switchTo().activeElement().sendKeys(Key.TAB);
  }
  assert.equal(await focused(), id, `Tab never reaches [data-testid=${id}]`);
  await driver.switchTo().activeElement().sendKeys(checkbox ? Key.SPACE : Key.ENTER);
}

/** Type into a field as a person would: select what is there, delete it, type the new value (the
 *  form listens to input events, which WebDriver's clear() does not send). */
async function setField(id, value) {
  const e = await visible(id);
  await e.sendKeys(Key.chord(Key.CONTROL, "a"), Key.BACK_SPACE);
  if (value !== "") await e.sendKeys(value);
  assert.equal(await e.getAttribute("value"), value, `[data-testid=${id}] holds what was typed`);
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

/** Start the app (a new WebDriver session starts a new app process). */
async function openApp() {
  driver = await new Builder()
    .usingServer("http://127.0.0.1:4444/")
    .withCapabilities({ browserName: "wry", "tauri:options": { application: APP } })
    .build();
}

/** A lab node's sshd gets a new host key, as after a reinstall (or with another machine in its place). */
function changeHostKey(node) {
  const script = [
    "set -e",
    // sshd shows its command line (with -f CONFIG) in its process title.
    'conf=$(tr "\\0" " " </proc/$(cat /run/sshd.pid)/cmdline | grep -oE -- "-f [^ ]+" | cut -d" " -f2)',
    'key=$(awk \'/^HostKey/ {print $2}\' "$conf")',
    'rm -f "$key" "$key.pub"',
    'ssh-keygen -q -t ed25519 -N "" -C "replaced" -f "$key"',
    "kill -HUP $(cat /run/sshd.pid)",
  ].join("\n");
  execFileSync(TWOFOLD, ["lab", "exec", node, "--", "sh", "-c", script], { encoding: "utf8" });
}

/** In `gdbus introspect --recurse` output, the path of the object with a StatusNotifierItem. */
function trayItemPath(tree) {
  let path = null;
  for (const line of tree.split("\n")) {
    const node = line.match(/^\s*node (\/\S*)/);
    if (node) path = node[1];
    if (path && /interface org\.kde\.StatusNotifierItem \{/.test(line)) return path;
  }
  return null;
}

/** `gdbus call` on the test's D-Bus session; the printed GVariant text. */
function gdbus(dest, path, method, ...args) {
  return execFileSync("gdbus", ["call", "--session", "--dest", dest, "--object-path", path, "--method", method, ...args], { encoding: "utf8" });
}

/** The app's tray item as the tray host sees it: its bus name, object and menu, or null. */
function trayItem() {
  try {
    return readTrayItem();
  } catch {
    return null; // listed a moment longer than its app lived
  }
}

function readTrayItem() {
  const items = gdbus("org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher", "org.freedesktop.DBus.Properties.Get", "org.kde.StatusNotifierWatcher", "RegisteredStatusNotifierItems");
  const bus = items.match(/'([^'/]+)/)?.[1];
  if (!bus) return null;
  // The watcher lists the item's bus name; the object is wherever the app put it.
  const tree = execFileSync("gdbus", ["introspect", "--session", "--dest", bus, "--object-path", "/", "--recurse"], { encoding: "utf8" });
  const path = trayItemPath(tree);
  if (!path) return null;
  const menu = gdbus(bus, path, "org.freedesktop.DBus.Properties.Get", "org.kde.StatusNotifierItem", "Menu").match(/objectpath '([^']+)'/)?.[1];
  return { bus, path, menu };
}

/** The tray menu's layout (com.canonical.dbusmenu), as the tray host reads it. */
function trayMenu(item) {
  return gdbus(item.bus, item.menu, "com.canonical.dbusmenu.GetLayout", "--", "0", "-1", "[]");
}

/** Click a tray menu item by its label, as the tray host does when the user picks it. */
function clickTray(label) {
  const item = trayItem();
  assert.ok(item?.menu, "the app has a tray item with a menu");
  const layout = trayMenu(item);
  const id = layout.match(new RegExp(`\\((\\d+), \\{[^}]*'label': <'${label}'>`))?.[1];
  assert.ok(id, `no '${label}' in the tray menu: ${layout}`);
  gdbus(item.bus, item.menu, "com.canonical.dbusmenu.Event", "--", id, "clicked", "<0>", "0");
}

/** The pid of the process that owns the tray item (the app). */
function appPid() {
  const item = trayItem();
  assert.ok(item, "the app has a tray item");
  const out = gdbus("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.GetConnectionUnixProcessID", item.bus);
  // "(uint32 1234,)"
  const pid = Number(out.match(/uint32 (\d+)/)?.[1]);
  assert.ok(pid > 1, `no pid in ${out}`);
  assert.match(readFileSync(`/proc/${pid}/cmdline`, "utf8"), /twofold-desktop/, `process ${pid} is the app`);
  return pid;
}

/** Running, not ended (a child not yet reaped is a zombie: ended). */
function running(pid) {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Whether the app's window is on the screen (mapped), read from the X server. */
function windowShown() {
  return spawnSync("xdotool", ["search", "--onlyvisible", "--name", "^Twofold$"]).status === 0;
}

/** Close the window as a window manager does for its close button (WM_DELETE_WINDOW). */
function closeWindow() {
  const ids = execFileSync("xdotool", ["search", "--onlyvisible", "--name", "^Twofold$"], { encoding: "utf8" }).trim().split("\n");
  for (const id of ids) execFileSync("python3", ["tests/close-window.py", id]);
}

/** Every thread's stack of a process that should have ended, for the test's artifacts. */
function dumpThreads(pid, name) {
  const out = spawnSync("gdb", ["-p", String(pid), "-batch", "-ex", "thread apply all bt"], { encoding: "utf8", timeout: 60_000 });
  writeFileSync(`${SHOTS}/../${name}-threads.txt`, `${out.stdout ?? ""}\n${out.stderr ?? ""}`);
}

async function waitFor(what, cond, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`${what} (waited ${timeoutMs} ms)`);
}

/** The window closes to the tray: the app and its tray item stay, "Open dashboard" brings it back. */
async function closeToTrayAndBack() {
  const pid = appPid();
  closeWindow();
  await waitFor("the closed window is hidden", () => !windowShown(), 10_000);
  // Still there a while later: the process, its tray item and its menu.
  await new Promise((r) => setTimeout(r, 3000));
  assert.ok(running(pid), "closing the window ended the app");
  assert.equal(appPid(), pid, "the same app still has its tray item");
  clickTray("Open dashboard");
  await waitFor("'Open dashboard' shows the window again", () => windowShown(), 10_000);
  return pid;
}

before(openApp);

after(async () => {
  if (driver) await driver.quit().catch(() => undefined);
});

test("the welcome step offers the lab and the machines step validates addresses inline", { timeout: 300_000 }, async () => {
  await step("welcome", 60_000);
  await screenshot("welcome");
  await press("try-lab");
  // Bringing the bare lab up takes about a minute on two cores.
  await step("machines", 240_000);
  assert.equal(await (await find("machine-0-address")).getAttribute("value"), "10.251.77.11");
  await screenshot("machines");

  await setField("machine-0-address", "");
  await press("wizard-next");
  const err = await visible("machine-0-address-error");
  assert.match(await err.getText(), /\S/, "an empty address is named");
  await step("machines");
  await setField("machine-0-address", "10.251.77.");
  await press("wizard-next");
  assert.match(await (await visible("machine-0-address-error")).getText(), /\S/);
  await screenshot("machines-bad-address");
  await step("machines");
  await setField("machine-0-address", "10.251.77.11");
});

test("an unreachable machine and a wrong password each show a dialog and change nothing", { timeout: 300_000 }, async () => {
  const before = nodeState();

  // No lab node has .99: the key scan cannot reach it.
  await setField("machine-1-address", "10.251.77.99");
  await press("wizard-next");
  let d = await dialogCode(60_000);
  assert.match(d.code, /unreachable|ssh|timeout/i, `${d.code}: ${d.message}`);
  await screenshot("unreachable-dialog");
  await press("error-dialog-close");
  if (!(await driver.findElements(byTestId("wizard-step-machines"))).length) await press("wizard-back");
  await step("machines");
  await setField("machine-1-address", "10.251.77.12");

  // A wrong password for host1: refused when the checks log in.
  const password = await (await find("machine-0-password")).getAttribute("value");
  await setField("machine-0-password", "not-the-password");
  await press("wizard-next");
  await step("trust", 60_000);
  await press("trust-all", 60_000);
  await screenshot("trust");
  await press("wizard-next");
  await step("preflight");
  if (!(await driver.findElements(byTestId("preflight-summary"))).length) {
    const again = await driver.findElements(byTestId("error-dialog"));
    if (!again.length || !(await again[0].isDisplayed())) await press("preflight-again").catch(() => undefined);
  }
  d = await dialogCode(120_000);
  assert.equal(d.code, "auth_failed", d.message);
  await screenshot("wrong-password-dialog");
  await press("error-dialog-close");

  assert.equal(nodeState(), before, "the bad input changed something on the nodes");

  // Put the right password back.
  await press("wizard-back");
  await press("wizard-back");
  await step("machines");
  await setField("machine-0-password", password);

  // One critical VM to size the hosts for (the N+1 picture on the checks step); its disk small
  // enough for the free space of a build machine, which the lab nodes share.
  await press("add-vm");
  for (const [field, value] of [["name", "accounts"], ["vcpus", "2"], ["ram_mib", "8192"], ["disk_gib", "20"], ["priority", "90"]]) {
    await setField(`vm-0-${field}`, value);
  }
  if (!(await (await find("vm-0-critical")).isSelected())) await press("vm-0-critical");
});

test("a machine whose identity changed is refused, shown, and trusted again only when confirmed", { timeout: 600_000 }, async () => {
  await press("wizard-next");
  await step("trust", 60_000);
  await visible("fingerprint-stor2", 60_000);
  await screenshot("trust");
  // Each machine confirmed on its own check box, with the keyboard.
  for (const n of ["host1", "host2", "stor1", "stor2"]) {
    if (!(await (await find(`trust-${n}`)).isSelected())) await press(`trust-${n}`);
  }
  await press("wizard-next");
  await step("preflight");
  await visible("preflight-summary", 240_000);

  // stor2 is reinstalled (or another machine answers at its address) after it was trusted.
  const before = nodeState();
  changeHostKey("stor2");
  await press("preflight-again");
  const d = await dialogCode(120_000);
  assert.equal(d.code, "host_key_changed", d.message);
  await screenshot("host-key-changed-dialog");
  assert.equal(nodeState(), before, "a changed host key let the checks change something");

  // The dialog's way on: back to the trust step, where the identities are read again, the new one
  // is flagged, and it must be confirmed again.
  assert.match(await (await visible("error-dialog-action")).getText(), /identit/i);
  await press("error-dialog-action");
  await step("trust");
  const warn = await visible("host-key-changed-stor2", 60_000);
  assert.equal(await warn.getAttribute("data-code"), "host_key_changed");
  assert.equal(await (await find("trust-stor2")).isSelected(), false, "a changed identity is not trusted by itself");
  assert.equal(await (await find("trust-host1")).isSelected(), true, "unchanged identities stay trusted");
  await screenshot("trust-host-key-changed");
  await press("trust-stor2");
  await press("wizard-next");
  await step("preflight");
});

test("the wizard sets the bare lab up, goes on in the tray, asks before quitting, resumes, and verifies it", { timeout: 1_200_000 }, async () => {
  // The checks run by themselves on entering the step.
  await visible("preflight-summary", 240_000);
  const sizing = await visible("sizing");
  await screenshot("preflight");
  // The N+1 picture: each host's capacity against the critical VMs.
  await driver.executeScript("arguments[0].scrollIntoView({ block: 'start' })", sizing);
  await screenshot("preflight-sizing");
  await press("wizard-next", 30_000);

  await step("plan", 120_000);
  // The plan is read from the machines after the step opens.
  const planSteps = async () => (await driver.findElements(By.css('[data-testid^="plan-step-"]'))).length;
  await driver.wait(async () => (await planSteps()) >= 20, 120_000, "the plan lists its steps");
  await screenshot("plan");
  await press("wizard-next", 60_000);

  await step("apply");
  await visible("apply-log", 60_000);
  // Close the app once a few steps have finished (Twofold's key is on the machines by then).
  const finished = async () => (await driver.findElements(By.css('[data-testid^="step-state-"][data-state="done"], [data-testid^="step-state-"][data-state="already_done"]'))).length;
  await driver.wait(async () => (await finished()) >= 6, 300_000, "six setup steps finish");
  await screenshot("apply-running");
  // Closing the window leaves the setup running, in the tray; the tray brings the window back.
  const pid = await closeToTrayAndBack();
  await visible("apply-log", 10_000);
  assert.equal((await driver.findElements(byTestId("apply-outcome"))).length, 0, "the setup went on while the window was closed");

  // The tray's Quit asks first while the setup runs; keeping on changes nothing.
  clickTray("Quit Twofold");
  const ask = await visible("quit-dialog", 10_000);
  assert.match(await (await find("quit-dialog-message")).getText(), /stops.*resume/is);
  await screenshot("apply-quit-asked");
  assert.ok(running(pid), "Quit ended the app without asking");
  await press("quit-dialog-stay");
  await driver.wait(async () => !(await ask.isDisplayed()), 5_000, "the question closes");
  await new Promise((r) => setTimeout(r, 1000));
  assert.ok(running(pid), "keeping on ended the app");

  // Asked again and confirmed: the setup stops after its step in progress, then the app ends.
  clickTray("Quit Twofold");
  await visible("quit-dialog", 10_000);
  const doneBefore = await finished();
  await press("quit-dialog-quit");
  await waitFor("the app ends once its setup has stopped", () => !running(pid), 600_000).catch((e) => {
    dumpThreads(pid, "quit-during-setup");
    throw e;
  });
  // The session's app is gone: end the session without waiting on it.
  await Promise.race([driver.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 15_000))]);
  driver = null;

  // Opened again: straight back to the setup, which resumes and skips what is done.
  await openApp();
  await step("apply", 60_000);
  const resume = await visible("apply-resume", 30_000);
  assert.match(await resume.getText(), /resume/i);
  await screenshot("apply-resume");
  await press("apply-resume");
  const outcome = await visible("apply-outcome", 900_000);
  assert.equal(await outcome.getAttribute("data-outcome"), "completed", await outcome.getText());
  await screenshot("apply-done");
  const skipped = (await driver.findElements(By.css('[data-testid^="step-state-"][data-state="already_done"]'))).length;
  assert.ok(skipped >= doneBefore - 1, `the resumed run skipped what was done (${skipped} skipped, ${doneBefore} done before)`);
  await press("wizard-next", 30_000);

  await step("verify", 30_000);
  const summary = await visible("verify-summary", 240_000);
  await screenshot("verify");
  assert.doesNotMatch(await summary.getText(), /fail|not /i, await summary.getText());
  await press("wizard-next", 30_000);

  await step("done", 30_000);
  const card = await visible("scorecard", 60_000);
  for (const rule of ["n_plus_one", "replicated_storage", "backups", "offsite"]) {
    await find(`scorecard-${rule}`);
  }
  assert.match(await card.getText(), /two/i);
  // No backups yet: the engine's words say so instead of "Healthy".
  assert.match(await (await find("scorecard-summary")).getText(), /not yet protected: .*no backups/i);
  await screenshot("done");

  // The platform exists outside the app: the replicated volume is started on the storage nodes,
  // and both hosts mount it.
  const info = execFileSync(TWOFOLD, ["lab", "exec", "stor1", "--", "gluster", "--mode=script", "volume", "info", "vmstore"], { encoding: "utf8" });
  assert.match(info, /Status: Started/);
  for (const h of ["host1", "host2"]) {
    execFileSync(TWOFOLD, ["lab", "exec", h, "--", "mountpoint", "-q", "/var/lib/twofold/store"]);
  }

  // The dashboard opens onto the platform just set up, with every node's live state.
  await press("open-dashboard");
  await driver.wait(until.elementLocated(By.css('[data-testid="health"]')), 60_000);
  await driver.wait(
    async () => (await driver.findElements(By.css('[data-testid^="node-"][data-state="up"]'))).length === 4,
    60_000,
    "the dashboard shows four nodes up",
  );
  const health = await driver.findElement(By.css('[data-testid="health"]'));
  await driver.wait(async () => /not yet protected/i.test(await health.getText()), 60_000, "the dashboard says the platform is not yet protected");
  assert.doesNotMatch(await health.getText(), /Platform: Healthy/);
  await screenshot("dashboard", "dashboard");
});

test("the tray shows the platform's state and its menu lists every node and the four rules", { timeout: 120_000 }, async () => {
  // The app registered its icon with the tray's StatusNotifierWatcher; its menu, as the tray
  // reads it (com.canonical.dbusmenu), once a look at the platform has filled it: every node up
  // and the rules.
  const item = trayItem();
  assert.ok(item, "no tray item registered");
  assert.ok(item.menu, "the tray item has a menu");
  let layout = "";
  await driver.wait(async () => {
    layout = trayMenu(item);
    return ["host1", "host2", "stor1", "stor2"].every((n) => new RegExp(`${n}[^']*up`).test(layout));
  }, 30_000, "the tray menu shows the four nodes up");
  for (const words of [/Two hosts/, /Shared storage/, /backups/, /offsite/, /Open dashboard/, /Open logs/, /Quit/]) assert.match(layout, words);

  // Open it as a person would (right click on the icon, at the tray's end) and photograph it.
  const bar = execFileSync("xdotool", ["search", "--class", "gtk-sni-tray-standalone"], { encoding: "utf8" }).trim().split("\n").pop();
  const geo = Object.fromEntries(
    execFileSync("xdotool", ["getwindowgeometry", "--shell", bar], { encoding: "utf8" }).trim().split("\n").map((l) => l.split("=")),
  );
  const x = Number(geo.X) + Number(geo.WIDTH) - 16;
  const y = Number(geo.Y) + Number(geo.HEIGHT) / 2;
  execFileSync("xdotool", ["mousemove", String(x), String(y), "click", "3"]);
  await new Promise((r) => setTimeout(r, 1500));
  execFileSync("import", ["-window", "root", `${SHOTS}/tray-menu.png`]);
  execFileSync("xdotool", ["key", "Escape"]);
});

test("the dashboard closes to the tray, the app's logs are in their folder, and Quit ends it", { timeout: 120_000 }, async () => {
  const pid = await closeToTrayAndBack();
  await visible("health", 10_000);

  // The log file, where the README says, with what the app did.
  assert.ok(LOG_DIR, "XDG_DATA_HOME is set (tests/desktop-e2e.sh sets it)");
  // One file a day: two when the run crossed midnight (UTC).
  const files = readdirSync(LOG_DIR).filter((f) => /^twofold-desktop\.\d{4}-\d\d-\d\d\.log$/.test(f)).sort();
  assert.ok(files.length >= 1 && files.length <= 2, `the app's log files in ${LOG_DIR}: ${files}`);
  const log = files.map((f) => readFileSync(`${LOG_DIR}/${f}`, "utf8")).join("");
  for (const line of [/INFO .*Twofold desktop starting/, /window closed: Twofold goes on in the tray/, /quit asked during a setup/, /quit confirmed during a setup/]) {
    assert.match(log, line, `the log has ${line}`);
  }

  // "Open logs": the desktop's folder opener is asked to open the log folder.
  assert.ok(OPENED, "TWOFOLD_E2E_OPENED is set (tests/desktop-e2e.sh sets it)");
  clickTray("Open logs");
  await waitFor("the folder opener gets the log folder", () => existsSync(OPENED) && readFileSync(OPENED, "utf8").trim() === LOG_DIR, 10_000);

  // Quit with no setup running: at once, tray item and all.
  clickTray("Quit Twofold");
  await waitFor("Quit ends the app", () => !running(pid), 20_000).catch((e) => {
    dumpThreads(pid, "quit");
    throw e;
  });
  await waitFor("the tray item is gone with the app", () => trayItem() === null, 10_000);
  await Promise.race([driver.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 15_000))]);
  driver = null;
});

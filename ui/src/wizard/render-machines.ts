// Step 2: the four machines (and, optionally, the VMs to protect). The form is drawn once per
// visit; typing updates the state and the messages in place, so focus and the caret stay put.
// Messages show once the user has left a field, or for every field after a refused "Continue".

import { secretsMissing } from "./state";
import {
  problemList,
  validateAll,
  type MachineDraft,
  type MachineField,
  type Validation,
  type VmDraft,
  type VmField,
} from "./validate";
import { button, callout, el, jargon, stepForm, stepHeading, type StepCtx, type StepView } from "./render-common";

interface FieldRef {
  input: HTMLInputElement | HTMLSelectElement;
  error: HTMLElement;
  message: (v: Validation) => string | undefined;
}

const MACHINE_FIELDS: { field: MachineField; label: string; hint?: string; type?: string; cls?: string }[] = [
  { field: "name", label: "Name", hint: "Lowercase letters, digits, hyphens" },
  { field: "role", label: "Role" },
  { field: "address", label: "Address", hint: "IP address or DNS name", cls: "wide" },
  { field: "port", label: "SSH port", cls: "narrow" },
  { field: "user", label: "SSH user", cls: "narrow" },
  { field: "password", label: "Password", type: "password" },
  { field: "key", label: "or private key file", hint: "Full path on this computer", cls: "wide" },
];

const VM_FIELDS: { field: VmField; label: string; hint?: string; cls?: string }[] = [
  { field: "name", label: "VM name", cls: "wide" },
  { field: "vcpus", label: "vCPUs", cls: "narrow" },
  { field: "ram_mib", label: "RAM (MiB)", hint: "4096 = 4 GiB", cls: "narrow" },
  { field: "disk_gib", label: "Disk (GiB)", cls: "narrow" },
  { field: "priority", label: "Priority", hint: "0–100, higher starts first", cls: "narrow" },
];

export function machineFieldId(i: number, f: MachineField): string {
  return `machine-${i}-${f}`;
}

export function vmFieldId(i: number, f: VmField): string {
  return `vm-${i}-${f}`;
}

export function renderMachines(ctx: StepCtx): StepView {
  const { state, ui } = ctx;
  const busy = ui.busy !== null;
  const refs = new Map<string, FieldRef>();

  const field = (
    id: string,
    label: string,
    input: HTMLInputElement | HTMLSelectElement,
    message: FieldRef["message"],
    hint?: string,
    cls?: string,
  ): HTMLElement => {
    input.id = id;
    input.dataset.testid = id;
    const error = el("p", { cls: "field-error", id: `${id}-error`, testid: `${id}-error` });
    error.hidden = true;
    const described = [error.id];
    const wrap = el("div", { cls: `field${cls ? ` ${cls}` : ""}` });
    const lab = el("label", { text: label });
    lab.htmlFor = id;
    wrap.append(lab, input);
    if (hint) {
      const h = el("span", { cls: "hint", id: `${id}-hint`, text: hint });
      described.unshift(h.id);
      wrap.append(h);
    }
    wrap.append(error);
    input.setAttribute("aria-describedby", described.join(" "));
    input.addEventListener("blur", () => {
      ctx.touch(id);
      update();
    });
    refs.set(id, { input, error, message });
    return wrap;
  };

  const machineRow = (m: MachineDraft, i: number): HTMLElement => {
    const fs = el("fieldset", { cls: "row machine", testid: `machine-row-${i}` });
    fs.append(el("legend", { text: `Machine ${i + 1}` }));
    const grid = el("div", { cls: "fields" });
    for (const f of MACHINE_FIELDS) {
      const id = machineFieldId(i, f.field);
      let input: HTMLInputElement | HTMLSelectElement;
      if (f.field === "role") {
        const sel = el("select");
        for (const [value, text] of [["host", "Virtualization host"], ["storage", "Storage node"]] as const) {
          const o = el("option", { text });
          o.value = value;
          sel.append(o);
        }
        sel.value = m.role;
        sel.addEventListener("change", () => {
          ctx.dispatch({ type: "edit-machine", index: i, field: "role", value: sel.value }, "none");
          ctx.touch("roles");
          update();
        });
        input = sel;
      } else {
        const inp = el("input");
        inp.type = f.type ?? "text";
        inp.value = f.field === "password" ? m.password : f.field === "port" ? m.port : m[f.field];
        inp.autocomplete = "off";
        inp.spellcheck = false;
        if (f.field === "port") inp.inputMode = "numeric";
        if (f.field === "key") inp.placeholder = "/home/you/.ssh/id_ed25519";
        if (f.field === "password" && m.passwordNeeded && !m.password) inp.placeholder = "Password needed again";
        inp.addEventListener("input", () => {
          ctx.dispatch({ type: "edit-machine", index: i, field: f.field, value: inp.value }, "none");
          update();
        });
        input = inp;
      }
      grid.append(field(id, f.label, input, (v) => v.machines[i]?.[f.field], f.hint, f.cls));
    }
    fs.append(grid);
    const remove = button({
      label: `Remove machine ${i + 1}`,
      testid: `machine-${i}-remove`,
      disabled: busy,
      run: () => {
        ctx.dispatch({ type: "remove-machine", index: i }, "none");
        const n = ctx.state.machines.length;
        ctx.renderAndFocus(n === 0 ? "add-machine" : machineFieldId(Math.min(i, n - 1), "name"));
      },
    });
    remove.classList.add("link");
    fs.append(el("div", { cls: "row-actions" }, remove));
    // A password that was not kept: say so before the user runs into it.
    if (m.passwordNeeded && !m.password) ctx.ui.touched.add(machineFieldId(i, "password"));
    return fs;
  };

  const vmRow = (v: VmDraft, i: number): HTMLElement => {
    const fs = el("fieldset", { cls: "row vm", testid: `vm-row-${i}` });
    fs.append(el("legend", { text: `VM ${i + 1}` }));
    const grid = el("div", { cls: "fields" });
    for (const f of VM_FIELDS) {
      const id = vmFieldId(i, f.field);
      const inp = el("input");
      inp.type = "text";
      inp.value = v[f.field];
      inp.autocomplete = "off";
      inp.spellcheck = false;
      if (f.field !== "name") inp.inputMode = "numeric";
      inp.addEventListener("input", () => {
        ctx.dispatch({ type: "edit-vm", index: i, field: f.field, value: inp.value }, "none");
        update();
      });
      grid.append(field(id, f.label, inp, (val) => val.vms[i]?.[f.field], f.hint, f.cls));
    }
    const crit = el("input", { id: `vm-${i}-critical`, testid: `vm-${i}-critical` });
    crit.type = "checkbox";
    crit.checked = v.critical;
    crit.addEventListener("change", () => {
      ctx.dispatch({ type: "set-vm-critical", index: i, critical: crit.checked }, "none");
    });
    const critLabel = el("label", { cls: "check" }, crit, " Critical: must keep running when a host is down");
    grid.append(el("div", { cls: "field wide" }, critLabel));
    fs.append(grid);
    const remove = button({
      label: `Remove VM ${i + 1}`,
      testid: `vm-${i}-remove`,
      disabled: busy,
      run: () => {
        ctx.dispatch({ type: "remove-vm", index: i }, "none");
        const n = ctx.state.vms.length;
        ctx.renderAndFocus(n === 0 ? "add-vm" : vmFieldId(Math.min(i, n - 1), "name"));
      },
    });
    remove.classList.add("link");
    fs.append(el("div", { cls: "row-actions" }, remove));
    return fs;
  };

  const summary = el("div", { cls: "callout bad form-errors", testid: "machines-errors" });
  summary.tabIndex = -1;
  summary.setAttribute("role", "alert");
  summary.hidden = true;
  const roles = el("p", { cls: "field-error list-error", testid: "machines-roles", id: "machines-roles" });
  roles.hidden = true;

  const machinesBox = el(
    "section",
    { cls: "group" },
    el("h3", { text: "Machines" }),
    el("p", { cls: "muted", text: "Two virtualization hosts run the VMs; two storage nodes keep a copy each of every VM disk. Twofold logs in to each with SSH, the way you would from a terminal." }),
    ...state.machines.map(machineRow),
    roles,
    el("div", { cls: "row-actions" }, button({ label: "Add a machine", testid: "add-machine", disabled: busy, run: () => {
      ctx.dispatch({ type: "add-machine" }, "none");
      ctx.renderAndFocus(machineFieldId(ctx.state.machines.length - 1, "name"));
    } })),
  );

  const emulation = el("input", { id: "allow-emulation", testid: "allow-emulation" });
  emulation.type = "checkbox";
  emulation.checked = state.allow_emulation;
  emulation.addEventListener("change", () => ctx.dispatch({ type: "set-emulation", allow: emulation.checked }, "none"));

  const vmsBox = el(
    "section",
    { cls: "group" },
    el("h3", { text: "VMs to protect (optional)" }),
    el(
      "p",
      { cls: "muted" },
      "List the VMs you will run, so Twofold can check the hosts are big enough for ",
      jargon("N+1", "each host alone can carry the critical VMs"),
      ". Critical VMs are the ones the business cannot be without.",
    ),
    ...state.vms.map(vmRow),
    el("div", { cls: "row-actions" }, button({ label: "Add a VM", testid: "add-vm", disabled: busy, run: () => {
      ctx.dispatch({ type: "add-vm" }, "none");
      ctx.renderAndFocus(vmFieldId(ctx.state.vms.length - 1, "name"));
    } })),
  );

  const advanced = el(
    "section",
    { cls: "group" },
    el("h3", { text: "Testing only" }),
    el("label", { cls: "check" }, emulation, " Allow hosts without hardware virtualization (VMs run much slower; for trying Twofold out, never for real work)"),
  );

  const notices: HTMLElement[] = [];
  if (state.notice) notices.push(callout(secretsMissing(state).length ? "warn" : "info", null, state.notice));

  const secondary = state.lab
    ? [{ label: "Reconnect to the lab", testid: "try-lab", disabled: busy, run: () => ctx.tryLab() }]
    : [];

  const form = stepForm("machines", [stepHeading("Your machines"), ...notices, summary, machinesBox, vmsBox, advanced], {
    back: { label: "Back", testid: "wizard-back", run: () => ctx.back(), disabled: busy },
    secondary,
    primary: {
      label: "Continue",
      testid: "wizard-next",
      disabled: busy,
      run: () => {
        const v = validateAll(ctx.state.machines, ctx.state.vms);
        if (v.ok) {
          ctx.next();
          return;
        }
        // Refused: show every message, list them at the top, and go to the first bad field.
        ctx.ui.showAll = true;
        update();
        const first = [...refs.entries()].find(([, r]) => r.message(v));
        if (first) first[1].input.focus();
        else summary.focus();
      },
    },
  });

  function update(): void {
    const v = validateAll(ctx.state.machines, ctx.state.vms);
    for (const [id, r] of refs) {
      const msg = r.message(v);
      const show = !!msg && (ctx.ui.showAll || ctx.ui.touched.has(id));
      r.error.textContent = show ? msg! : "";
      r.error.hidden = !show;
      if (show) r.input.setAttribute("aria-invalid", "true");
      else r.input.removeAttribute("aria-invalid");
    }
    const showRoles = v.list.length > 0 && (ctx.ui.showAll || ctx.ui.touched.has("roles"));
    roles.textContent = showRoles ? v.list.join(" ") : "";
    roles.hidden = !showRoles;
    const problems = ctx.ui.showAll ? problemList(v, ctx.state.machines, ctx.state.vms) : [];
    summary.hidden = problems.length === 0;
    summary.replaceChildren(
      el("strong", { text: problems.length === 1 ? "One thing to fix before going on:" : `${problems.length} things to fix before going on:` }),
      el("ul", {}, ...problems.map((p) => el("li", { text: p }))),
    );
  }

  update();
  return { root: form, patch: update };
}

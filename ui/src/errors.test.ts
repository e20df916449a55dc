import { describe, expect, it } from "vitest";

import { adviceFor, bannersFor, settle, titleFor, toBanner, toUiError } from "./errors";

describe("titleFor", () => {
  it("maps engine codes to headlines", () => {
    expect(titleFor("inventory")).toBe("Twofold could not read its inventory");
    expect(titleFor("needs_root")).toBe("This needs administrator rights");
    expect(titleFor("internal")).toBe("The desktop app hit an internal error");
  });

  it("falls back for codes it does not know", () => {
    expect(titleFor("brand_new_code")).toBe("Something went wrong");
  });

  it("has a headline and advice for every code the setup wizard can meet", () => {
    const codes = [
      "auth_failed",
      "host_key_changed",
      "host_unreachable",
      "ssh",
      "step_failed",
      "step_not_effective",
      "cancelled",
      "invalid_input",
      "not_ready",
      "too_small",
      "needs_root",
      "lab",
      "busy",
    ];
    for (const code of codes) {
      expect(titleFor(code), code).not.toBe("Something went wrong");
      expect(adviceFor(code), code).toBeTruthy();
    }
    expect(titleFor("busy")).toBe("Another setup is already running");
    expect(adviceFor("brand_new_code")).toBeNull();
  });
});

describe("toUiError", () => {
  it("keeps a command's {code, message}", () => {
    expect(toUiError({ code: "inventory", message: "db: locked", extra: 1 })).toEqual({
      code: "inventory",
      message: "db: locked",
    });
  });

  it("wraps Tauri's plain-string rejections and thrown Errors as internal", () => {
    expect(toUiError("command list_nodes not found")).toEqual({
      code: "internal",
      message: "command list_nodes not found",
    });
    expect(toUiError(new TypeError("no IPC"))).toEqual({ code: "internal", message: "no IPC" });
    expect(toUiError(undefined)).toEqual({ code: "internal", message: "undefined" });
    expect(toUiError({ code: 7 })).toEqual({ code: "internal", message: "[object Object]" });
  });
});

describe("banners", () => {
  it("puts the headline above the engine's message", () => {
    expect(toBanner({ code: "inventory", message: "inventory database /x: not a database" })).toEqual({
      code: "inventory",
      title: "Twofold could not read its inventory",
      message: "inventory database /x: not a database",
    });
  });

  it("shows one banner for the same error from several commands", () => {
    const e = { code: "inventory", message: "m" };
    const banners = bannersFor([e, { ...e }, { code: "io", message: "m" }]);
    expect(banners.map((b) => b.code)).toEqual(["inventory", "io"]);
  });
});

describe("settle", () => {
  it("captures success and failure", async () => {
    expect(await settle(async () => 3)).toEqual({ ok: true, value: 3 });
    expect(
      await settle(async () => {
        throw { code: "inventory", message: "m" };
      }),
    ).toEqual({ ok: false, error: { code: "inventory", message: "m" } });
  });

  it("captures a call that throws before returning a promise", async () => {
    const r = await settle((): Promise<number> => {
      throw new Error("sync");
    });
    expect(r).toEqual({ ok: false, error: { code: "internal", message: "sync" } });
  });
});

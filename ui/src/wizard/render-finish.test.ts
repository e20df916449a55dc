import { describe, expect, it } from "vitest";

import { RULE_ORDER, sortRules } from "./render-finish";
import type { Rule } from "./types";

describe("sortRules", () => {
  it("puts the four rules in their explained order, unknown ones last", () => {
    const rules = [
      { id: "offsite", title: "o", state: "missing", detail: "" },
      { id: "future", title: "f", state: "ok", detail: "" },
      { id: "n_plus_one", title: "n", state: "ok", detail: "" },
      { id: "backups", title: "b", state: "warn", detail: "" },
      { id: "replicated_storage", title: "r", state: "ok", detail: "" },
    ] as Rule[];
    expect(sortRules(rules).map((r) => r.id)).toEqual([...RULE_ORDER, "future"]);
    expect(rules[0]!.id).toBe("offsite"); // not sorted in place
  });
});

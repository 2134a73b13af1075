import { describe, expect, it } from "vitest";

import { incomingAction, type SavedRecord } from "../src/room/record";

const saved = (conclusion: string, treatment_plan: string, updated_at: string): SavedRecord => ({
  conclusion,
  treatment_plan,
  author: { id: 1, name: "GS. Nguyễn Văn An" },
  updated_at,
});

describe("incomingAction", () => {
  const first = saved("u phổi", "sinh thiết", "2026-11-29T10:00:00Z");
  const second = saved("u phổi phải", "sinh thiết, PET-CT", "2026-11-29T10:05:00Z");

  it("shows a record to a member without a draft (not host)", () => {
    expect(incomingAction(null, null, first)).toBe("apply");
    expect(incomingAction(first, null, second)).toBe("apply");
  });

  it("ignores an older record, or the one shown arriving again", () => {
    expect(incomingAction(second, null, first)).toBe("stale");
    expect(incomingAction(second, { conclusion: "x", treatment_plan: "" }, { ...second })).toBe("stale");
  });

  it("updates the host's fields when the host has not typed", () => {
    expect(incomingAction(null, { conclusion: "", treatment_plan: "" }, first)).toBe("apply");
    expect(incomingAction(first, { conclusion: "u phổi", treatment_plan: "sinh thiết" }, second)).toBe("apply");
  });

  it("keeps the host's unsaved typing that differs", () => {
    expect(incomingAction(first, { conclusion: "u phổi trái", treatment_plan: "sinh thiết" }, second)).toBe("keep-draft");
    expect(incomingAction(null, { conclusion: "nháp", treatment_plan: "" }, first)).toBe("keep-draft");
  });

  it("a draft that already says the same is no conflict (the host's own save)", () => {
    expect(incomingAction(first, { conclusion: second.conclusion, treatment_plan: second.treatment_plan }, second)).toBe("apply");
  });
});

import { describe, expect, it } from "vitest";
import { auditQuery } from "../src/pages/audit";

describe("auditQuery", () => {
  it("passes the filters on, the local times as instants, and drops the empty ones", () => {
    const url = new URL("http://x/admin/audit?actor_email=+a@b.vn+&outcome=denied&study=&since=2026-12-04T08:30&page=2");
    const q = auditQuery(url, 50);
    expect(q.get("actor_email")).toBe("a@b.vn");
    expect(q.get("outcome")).toBe("denied");
    expect(q.has("study")).toBe(false);
    expect(q.has("page")).toBe(false);
    expect(q.get("since")).toBe(new Date("2026-12-04T08:30").toISOString());
    expect(q.get("offset")).toBe("50");
    expect(auditQuery(url).has("offset")).toBe(false);
  });
});

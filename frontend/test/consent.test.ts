import { beforeEach, describe, expect, it } from "vitest";

import { ConsentPanel, describe as describeState, type CaseConsents, type ConsentRecord } from "../src/room/consent";
import type { Session } from "../src/session";
import { FakeElement, installFakeDom } from "./fakeDom";
import { FakeSession, find } from "./fakeSession";

const record = (over: Partial<ConsentRecord> = {}): ConsentRecord => ({
  id: 1, scope: "recording", decision: "granted", given_by: "representative", giver_name: "Nguyễn Văn Y",
  relation: "son", method: "verbal", given_at: "2026-12-04T03:00:00Z", note: "",
  recorded_by: { id: 5, name: "BS. Lan" }, recorded_at: "2026-12-04T03:01:00Z", ...over,
});

const consents = (over: Partial<CaseConsents> = {}): CaseConsents => ({
  consultation_id: 7, case_id: 3,
  teleconsultation: { status: "granted", latest: record({ scope: "teleconsultation", given_by: "patient", relation: "", method: "signed_form", giver_name: "Nguyễn Văn X" }) },
  recording: { status: "none", latest: null }, history: [], can_record: true, ...over,
});

describe("consent words", () => {
  it("say the state, and who, how and when when the record is shown", () => {
    expect(describeState({ status: "none", latest: null })).toBe("Not recorded");
    expect(describeState({ status: "refused", latest: null })).toBe("Refused");
    expect(describeState({ status: "granted", latest: record() })).toMatch(
      /^Granted: Nguyễn Văn Y \(representative, son\), verbally, recorded by BS\. Lan, \d\d\/12\/2026 \d\d:\d\d$/);
  });
});

describe("the consent panel", () => {
  let session: FakeSession;
  let panel: ConsentPanel;
  const downloads: string[] = [];

  beforeEach(() => {
    installFakeDom();
    session = new FakeSession();
    downloads.length = 0;
    panel = new ConsentPanel({ session: session as unknown as Session, consultationId: 7, caseId: 3, download: (_b, name) => downloads.push(name) });
  });
  const el = () => panel.el as unknown as FakeElement;

  it("a doctor records a consent and reads the records again on consent:updated", async () => {
    session.answers.push(consents());
    await panel.load();
    expect(find(el(), "consent-teleconsultation")!.dataset.status).toBe("granted");
    expect(find(el(), "consent-save")).toBeDefined();
    session.answers.push(consents({ recording: { status: "granted", latest: record() } }));
    panel.receive({ ...consents(), recording: { status: "granted", latest: null }, can_record: undefined });
    await Promise.resolve();
    expect(session.calls.map((c) => c.path)).toEqual(["/api/consultations/7/cases/3/consents", "/api/consultations/7/cases/3/consents"]);
  });

  it("an observer sees the states alone, follows consent:updated without asking, has no form", async () => {
    session.answers.push(consents({ teleconsultation: { status: "granted", latest: null }, can_record: false }));
    await panel.load();
    expect(find(el(), "consent-save")).toBeUndefined();
    panel.receive(consents({ recording: { status: "withdrawn", latest: null }, can_record: undefined }));
    expect(find(el(), "consent-recording")!.dataset.status).toBe("withdrawn");
    panel.receive(consents({ case_id: 4, recording: { status: "granted", latest: null } }));
    expect(find(el(), "consent-recording")!.dataset.status).toBe("withdrawn");
    expect(session.calls).toHaveLength(1);
  });

  it("prints the form in the UI's language", async () => {
    find(el(), "consent-form-pdf")!.fire("click");
    await Promise.resolve();
    await Promise.resolve();
    expect(session.calls[0].path).toBe("/api/consultations/7/cases/3/consent-form?language=en");
    expect(downloads).toEqual(["giay-dong-y-7-3.pdf"]);
  });
});

import { beforeEach, describe, expect, it } from "vitest";

import {
  canEdit, isNewer, minutesErrorText, missingLabel, MinutesPanel, emptyContent, pdfPath, signState,
  type Minutes,
} from "../src/room/minutes";
import { ApiError, type Session } from "../src/session";
import { keyImageMark, lengthMm, type KeyImageMark } from "../src/viewer/keyImage";
import type { Measurement, Point3 } from "../src/viewer/state";
import { FakeElement, installFakeDom } from "./fakeDom";
import { FakeSession, find } from "./fakeSession";

const CHAIR = { userId: 1, isChair: true };
const SECRETARY = { userId: 2, isChair: false };
const OTHER = { userId: 3, isChair: false };

function minutes(over: Partial<Minutes> = {}): Minutes {
  return {
    consultation_id: 7, version: 1, status: "draft", revision: 1,
    content: { ...emptyContent(), reason: "Khối u phổi phải" },
    secretary: { id: 2, name: "BS. Trần Thị Bình" }, attendees: [], signoffs: [],
    missing: ["diagnosis_before", "questions"], amendment_reason: "",
    created_at: "2026-12-03T08:00:00Z", updated_at: "2026-12-03T08:05:00Z", signed_at: null,
    versions: [1], ...over,
  };
}

const signoff = (role: "chair" | "secretary") => ({
  role, user: { id: role === "chair" ? 1 : 2, name: role }, signed_at: "2026-12-03T09:00:00Z", content_sha256: "ab",
});

describe("who may do what", () => {
  it("the chair starts the minutes; the chair and the secretary edit a draft nobody signed", () => {
    expect(canEdit(null, CHAIR)).toBe(true);
    expect(canEdit(null, SECRETARY)).toBe(false);
    expect(canEdit(minutes(), CHAIR)).toBe(true);
    expect(canEdit(minutes(), SECRETARY)).toBe(true);
    expect(canEdit(minutes(), OTHER)).toBe(false);
    expect(canEdit(minutes({ signoffs: [signoff("chair")] }), SECRETARY)).toBe(false);
    expect(canEdit(minutes({ status: "signed" }), CHAIR)).toBe(false);
  });

  it("signing waits for the missing fields, once per role", () => {
    expect(signState(minutes(), CHAIR)).toEqual({ can: false, signed: false, missing: ["diagnosis_before", "questions"] });
    expect(signState(minutes({ missing: [] }), SECRETARY)).toEqual({ can: true, signed: false, missing: [] });
    expect(signState(minutes({ missing: [], signoffs: [signoff("chair")] }), CHAIR)?.signed).toBe(true);
    expect(signState(minutes({ missing: [] }), OTHER)).toBeNull();
    expect(signState(minutes({ status: "signed" }), CHAIR)).toBeNull();
  });
});

describe("live updates", () => {
  it("take later versions and revisions, ignore older ones", () => {
    const m = minutes({ revision: 3 });
    expect(isNewer(null, m)).toBe(true);
    expect(isNewer(m, minutes({ revision: 4 }))).toBe(true);
    expect(isNewer(m, minutes({ revision: 2 }))).toBe(false);
    expect(isNewer(m, minutes({ version: 2, revision: 1 }))).toBe(true);
    expect(isNewer(minutes({ version: 2 }), m)).toBe(false);
    expect(isNewer(m, minutes({ revision: 3, signoffs: [signoff("chair")] }))).toBe(true);
  });
});

describe("words", () => {
  it("name the missing fields and each refusal", () => {
    expect(missingLabel("diagnosis_after")).toBe("Diagnosis after the consultation");
    expect(missingLabel("questions[1].conclusion")).toBe("The conclusion of question 2");
    expect(minutesErrorText(new ApiError(409, "stale_revision", "x"))).toMatch(/Someone else changed/);
    expect(minutesErrorText(new ApiError(422, "incomplete", "x", undefined, { missing: ["reason", "secretary"] })))
      .toBe("Cannot be signed yet; missing: Reason for the consultation, Secretary");
    expect(minutesErrorText(new ApiError(422, "observer_as_secretary", "x"))).toBe("An observer cannot be the secretary.");
    expect(minutesErrorText(new ApiError(409, "already_signed", "x"))).toBe("You signed this version.");
  });

  it("the PDF is asked in the UI's language", () => {
    expect(pdfPath(7, 2, "vi")).toBe("/api/consultations/7/minutes/pdf?version=2&language=vi");
  });
});

describe("the panel", () => {
  let session: FakeSession;
  let panel: MinutesPanel;
  const downloads: string[] = [];

  beforeEach(() => {
    installFakeDom();
    session = new FakeSession();
    downloads.length = 0;
    panel = new MinutesPanel({
      session: session as unknown as Session, consultationId: 7,
      candidates: () => [{ user_id: 1, name: "chair" }, { user_id: 2, name: "BS. Trần Thị Bình" }],
      download: (_blob, name) => downloads.push(name),
    });
  });

  const el = () => panel.el as unknown as FakeElement;

  it("lets the chair start the minutes (no revision), then saves with the revision loaded", async () => {
    panel.setViewer(CHAIR);
    session.answers.push(new ApiError(404, "not_found", "minutes"));
    await panel.load();
    const reason = find(el(), "minutes-reason")!;
    reason.value = "Khối u phổi phải";
    reason.fire("input");
    session.answers.push(minutes({ revision: 1 }));
    await panel.save();
    expect(session.calls[1]).toMatchObject({ method: "PUT", path: "/api/consultations/7/minutes" });
    expect(session.calls[1].json).toEqual({ content: { ...emptyContent(), reason: "Khối u phổi phải" } });
    session.answers.push(minutes({ revision: 2 }));
    await panel.save();
    expect((session.calls[2].json as { revision: number }).revision).toBe(1);
    // The secretary is chosen among the others.
    const select = find(el(), "minutes-secretary-select")!;
    expect(select.children.map((o) => (o as FakeElement).text())).toEqual(["— Choose the secretary —", "BS. Trần Thị Bình"]);
  });

  it("the chair sends a signed version's key images to PACS and sees each study's outcome", async () => {
    const mark = { study_instance_uid: "1.2.3", series_instance_uid: "1.2.3.4", sop_instance_uid: "1.2.3.4.5", frame: 1, caption: "", measurements: [] };
    const signed = minutes({ status: "signed", content: { ...emptyContent(), key_images: [mark] } });
    panel.setViewer(OTHER);
    session.answers.push(signed);
    await panel.load();
    expect(find(el(), "minutes-send-key-objects")).toBeUndefined();
    panel.setViewer(CHAIR);
    session.answers.push({ version: 1, studies: [{ study_instance_uid: "1.2.3", kos_sop_instance_uid: "9", sr_sop_instance_uid: null, node: "ORTHANC", status: "failed", error: "association rejected" }] });
    find(el(), "minutes-send-key-objects")!.fire("click");
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(session.calls[1]).toMatchObject({ method: "POST", path: "/api/consultations/7/minutes/key-objects" });
    const result = find(el(), "minutes-key-objects-result")!;
    expect(result.text()).toBe("Stored here; sending to ORTHANC failed: association rejected. Try again later.");
  });

  it("an admin refused without a grant breaks the glass with a reason, then reads", async () => {
    panel.setViewer(OTHER);
    session.answers.push(new ApiError(403, "break_glass_required", "grant needed"));
    await panel.load();
    const form = find(el(), "break-glass")!;
    find(el(), "break-glass-reason")!.value = "  Khiếu nại số 12/2026 của người bệnh ";
    find(el(), "break-glass-minutes")!.value = "30";
    session.answers.push({ id: 1 }, minutes());
    form.fire("submit");
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(session.calls[1]).toEqual({ path: "/api/consultations/7/break-glass", method: "POST",
      json: { reason: "Khiếu nại số 12/2026 của người bệnh", minutes: 30 } });
    expect(session.calls[2].path).toBe("/api/consultations/7/minutes");
    expect(find(el(), "break-glass")).toBeUndefined();
  });

  it("shows others the text read-only, following minutes:updated", async () => {
    panel.setViewer(OTHER);
    session.answers.push(minutes());
    await panel.load();
    expect(find(el(), "minutes-form")).toBeUndefined();
    expect(find(el(), "minutes-view-reason")!.text()).toBe("Khối u phổi phải");
    panel.receive(minutes({ revision: 2, content: { ...emptyContent(), reason: "U phổi phải, nghi ác tính" } }));
    expect(find(el(), "minutes-view-reason")!.text()).toBe("U phổi phải, nghi ác tính");
    panel.receive(minutes({ revision: 1 }));
    expect(find(el(), "minutes-view-reason")!.text()).toBe("U phổi phải, nghi ác tính");
    expect(find(el(), "minutes-sign")).toBeUndefined();
  });

  it("keeps the editor's unsaved typing when someone else saves, and says so", async () => {
    panel.setViewer(SECRETARY);
    session.answers.push(minutes());
    await panel.load();
    const reason = find(el(), "minutes-reason")!;
    reason.value = "đang viết";
    reason.fire("input");
    panel.receive(minutes({ revision: 2 }));
    expect(find(el(), "minutes-changed")).toBeDefined();
    expect(find(el(), "minutes-reason")!.value).toBe("đang viết");
  });

  it("on stale_revision, says someone else changed it and reloads theirs", async () => {
    panel.setViewer(SECRETARY);
    session.answers.push(minutes());
    await panel.load();
    session.answers.push(new ApiError(409, "stale_revision", "changed", undefined, { revision: 2 }));
    session.answers.push(minutes({ revision: 2, content: { ...emptyContent(), reason: "của người khác" } }));
    await panel.save();
    expect(session.calls.map((c) => c.method)).toEqual(["GET", "PUT", "GET"]);
    expect(find(el(), "minutes-error")!.text()).toMatch(/Someone else changed the minutes/);
    expect(find(el(), "minutes-reason")!.value).toBe("của người khác");
  });

  it("disables signing while fields are missing, lists them, then signs with the revision", async () => {
    panel.setViewer(CHAIR);
    session.answers.push(minutes());
    await panel.load();
    expect((find(el(), "minutes-sign") as unknown as { disabled: boolean }).disabled).toBe(true);
    expect(find(el(), "minutes-missing")!.text()).toContain("Diagnosis before the consultation");
    panel.receive(minutes({ revision: 5, missing: [] }));
    expect((find(el(), "minutes-sign") as unknown as { disabled: boolean }).disabled).toBe(false);
    session.answers.push(minutes({ revision: 5, missing: [], signoffs: [signoff("chair")] }));
    await panel.sign();
    expect(session.calls.at(-1)).toEqual({ path: "/api/consultations/7/minutes/sign", method: "POST", json: { revision: 5 } });
    expect(find(el(), "minutes-signoff-chair")!.dataset.signed).toBe("yes");
    expect(find(el(), "minutes-form")).toBeUndefined();
  });

  it("lets the chair amend a signed version with a reason; everyone downloads the PDF", async () => {
    panel.setViewer(CHAIR);
    session.answers.push(minutes({ status: "signed", missing: [], signoffs: [signoff("chair"), signoff("secretary")] }));
    await panel.load();
    expect(find(el(), "minutes-state")!.dataset.status).toBe("signed");
    session.answers.push(minutes({ version: 2, versions: [1, 2], amendment_reason: "bổ sung" }));
    await panel.amend("bổ sung");
    expect(session.calls.at(-1)).toEqual({ path: "/api/consultations/7/minutes/amend", method: "POST", json: { reason: "bổ sung" } });
    expect(find(el(), "minutes-version")!.dataset.version).toBe("2");
    await panel.downloadPdf();
    expect(session.calls.at(-1)!.path).toBe("/api/consultations/7/minutes/pdf?version=2&language=en");
    expect(downloads).toEqual(["bien-ban-hoi-chan-7-v2.pdf"]);
  });

  it("folded asks nothing; opening loads, and minutes:updated opens it", async () => {
    expect(session.calls).toEqual([]);
    const content = find(el(), "minutes-content")!;
    expect(content.hidden).toBe(true);
    panel.receive(minutes());
    expect(content.hidden).toBe(false);
    expect(session.calls).toEqual([]);
    expect(find(el(), "minutes-view-reason")!.text()).toBe("Khối u phổi phải");
  });

  it("opens an older version read-only", async () => {
    panel.setViewer(CHAIR);
    session.answers.push(minutes({ version: 2, versions: [1, 2] }));
    await panel.load();
    session.answers.push(minutes({ version: 1, status: "signed", versions: [1, 2] }));
    await panel.open(1);
    expect(session.calls.at(-1)!.path).toBe("/api/consultations/7/minutes/versions/1");
    expect(find(el(), "minutes-form")).toBeUndefined();
    expect(find(el(), "minutes-latest")).toBeDefined();
    await panel.open(2);
    expect(find(el(), "minutes-form")).toBeDefined();
  });
});

describe("key images", () => {
  const shown: KeyImageMark = {
    study_instance_uid: "1.2.3", series_instance_uid: "1.2.3.4", sop_instance_uid: "1.2.3.4.5", frame: 1,
    caption: "", measurements: [{ kind: "length", points: [[10, 20], [30, 40]], length_mm: 19.8, label: "" }],
  };

  it("marks the image the viewer shows, with its caption, and saves it with the draft", async () => {
    installFakeDom();
    const session = new FakeSession();
    let current: KeyImageMark | null = null;
    const panel = new MinutesPanel({
      session: session as unknown as Session, consultationId: 7, candidates: () => [],
      keyImage: () => current,
    });
    const el = panel.el as unknown as FakeElement;
    panel.setViewer(CHAIR);
    session.answers.push(minutes());
    await panel.load();
    // Nothing shown yet: nothing is marked, and the panel says why.
    find(el, "minutes-mark-key-image")!.fire("click");
    expect(find(el, "minutes-key-image-caption-0")).toBeUndefined();
    current = shown;
    find(el, "minutes-mark-key-image")!.fire("click");
    const caption = find(el, "minutes-key-image-caption-0")!;
    caption.value = "Khối mờ thùy trên phải";
    caption.fire("input");
    session.answers.push(minutes({ revision: 2 }));
    await panel.save();
    const sent = session.calls.at(-1)!.json as { content: { key_images: KeyImageMark[] } };
    expect(sent.content.key_images).toEqual([{ ...shown, caption: "Khối mờ thùy trên phải" }]);
  });

  it("keeps the lengths drawn on the image shown, in its pixel coordinates", () => {
    const length = (id: string, z: number, label = "19.8 mm"): Measurement => ({
      id, tool: "length", viewport: 0, frameOfReferenceUID: null, points: [[10, 20, z], [30, 40, z]], label,
    });
    const onImage = (p: Point3): [number, number] | null => (p[2] === 5 ? [p[0] * 2, p[1] * 2] : null);
    const mark = keyImageMark({ studyUID: "1", seriesUID: "2", sopUID: "3", frame: 2 }, [
      length("here", 5), length("another slice", 6), length("no mm", 5, "—"),
      { ...length("compare", 5), viewport: 1 }, { ...length("angle", 5), tool: "angle" },
    ], onImage);
    expect(mark).toMatchObject({ sop_instance_uid: "3", frame: 2 });
    expect(mark.measurements).toEqual([{ kind: "length", points: [[20, 40], [60, 80]], length_mm: 19.8, label: "" }]);
    expect(lengthMm("42,5 mm")).toBe(42.5);
  });
});

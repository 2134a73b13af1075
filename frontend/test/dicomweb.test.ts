import { describe, expect, it } from "vitest";
import { imageIdsFor, keyObjectImages, sortInstances, str, type DicomJson } from "../src/viewer/dicomweb";
import { jwtExpiry } from "../src/room/connection";
import { safeNext } from "../src/router";

function instance(sop: string, z: number, number: number, frames?: number): DicomJson {
  const json: DicomJson = {
    "00080018": { vr: "UI", Value: [sop] },
    "00200013": { vr: "IS", Value: [number] },
    "00200032": { vr: "DS", Value: [-179.2, -179.2, z] },
    "00200037": { vr: "DS", Value: [1, 0, 0, 0, 1, 0] },
  };
  if (frames) json["00280008"] = { vr: "IS", Value: [frames] };
  return json;
}

describe("DICOMweb series → image ids", () => {
  it("orders axial slices head first along the slice normal, whatever the instance numbers", () => {
    const shuffled = [instance("b", -120, 1), instance("c", -125, 9), instance("a", -115, 5)];
    expect(sortInstances(shuffled).map((i) => str(i, "00080018"))).toEqual(["a", "b", "c"]);
  });

  it("falls back to InstanceNumber without positions", () => {
    const noPos = [instance("x", 0, 3), instance("y", 0, 1), instance("z", 0, 2)].map((i) => {
      const { ["00200032"]: _drop, ...rest } = i;
      return rest;
    });
    expect(sortInstances(noPos).map((i) => str(i, "00080018"))).toEqual(["y", "z", "x"]);
  });

  it("makes one wadors image id per frame, under /dicomweb on this origin", () => {
    const { imageIds, perImage, refs } = imageIdsFor("1.2", "1.2.3", [instance("9.1", 0, 1), instance("9.2", 1, 2, 3)], "https://h.example");
    expect(imageIds).toEqual([
      "wadors:https://h.example/dicomweb/studies/1.2/series/1.2.3/instances/9.1/frames/1",
      "wadors:https://h.example/dicomweb/studies/1.2/series/1.2.3/instances/9.2/frames/1",
      "wadors:https://h.example/dicomweb/studies/1.2/series/1.2.3/instances/9.2/frames/2",
      "wadors:https://h.example/dicomweb/studies/1.2/series/1.2.3/instances/9.2/frames/3",
    ]);
    expect(perImage.map((i) => str(i, "00080018"))).toEqual(["9.1", "9.2", "9.2", "9.2"]);
    // What the room names each image by (viewer:state's sop_uid and frame).
    expect(refs).toEqual([
      { sopUID: "9.1", frame: 1 }, { sopUID: "9.2", frame: 1 }, { sopUID: "9.2", frame: 2 }, { sopUID: "9.2", frame: 3 },
    ]);
  });

  it("reads person names from DICOM JSON", () => {
    expect(str({ "00100010": { vr: "PN", Value: [{ Alphabetic: "NGUYEN^VAN^X" }] } }, "00100010")).toBe("NGUYEN^VAN^X");
    expect(str({}, "00100010")).toBe("");
  });
});

describe("small guards", () => {
  it("follows only same-site paths after login", () => {
    expect(safeNext("/consultations/1/room")).toBe("/consultations/1/room");
    expect(safeNext(null)).toBe("/");
    expect(safeNext("https://evil.example/")).toBe("/");
    expect(safeNext("//evil.example/")).toBe("/");
    expect(safeNext("/\\evil.example")).toBe("/");
    expect(safeNext("/login?next=/x")).toBe("/");
  });

  it("reads a JWT's expiry for timing, and 0 when unreadable", () => {
    const payload = Buffer.from(JSON.stringify({ exp: 1_900_000_000 })).toString("base64url");
    expect(jwtExpiry(`h.${payload}.s`)).toBe(1_900_000_000_000);
    expect(jwtExpiry("garbage")).toBe(0);
  });
});

describe("key object documents", () => {
  const sq = (items: DicomJson[]) => ({ vr: "SQ", Value: items });
  const ui = (v: string) => ({ vr: "UI", Value: [v] });
  const kos = (series: string, sops: string[]): DicomJson => ({
    "0040A375": sq([{ "00081115": sq([{
      "0020000E": ui(series), "00081199": sq(sops.map((s) => ({ "00081155": ui(s) }))),
    }]) }]),
  });

  it("name the images of their evidence, in order, each once", () => {
    expect(keyObjectImages([kos("1.2.3", ["1.2.3.1", "1.2.3.7"]), kos("1.2.3", ["1.2.3.7"]), {}])).toEqual([
      { seriesUID: "1.2.3", sopUID: "1.2.3.1" }, { seriesUID: "1.2.3", sopUID: "1.2.3.7" },
    ]);
  });
});

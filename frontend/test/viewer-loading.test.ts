import { describe, expect, it } from "vitest";

import type { SeriesInfo } from "../src/viewer/dicomweb";
import { Latest, SeriesCatalog } from "../src/viewer/loading";

const series = (studyUID: string, seriesUID: string, instanceCount = 10): SeriesInfo => ({
  studyUID, seriesUID, number: 1, modality: "CT", description: seriesUID, instanceCount,
});

describe("latest wins", () => {
  it("a later attempt supersedes the earlier ones; stop supersedes them all", () => {
    const latest = new Latest();
    const first = latest.begin();
    expect(first()).toBe(false);
    const second = latest.begin();
    expect([first(), second()]).toEqual([true, false]);
    latest.stop();
    expect(second()).toBe(true);
  });
});

describe("the series catalog", () => {
  it("lists a study once and asks again after a failure", async () => {
    const asked: string[] = [];
    let fail = true;
    const catalog = new SeriesCatalog(async (study) => {
      asked.push(study);
      if (fail) throw new Error("offline");
      return [series(study, `${study}.1`)];
    });
    await expect(catalog.of("1")).rejects.toThrow("offline");
    await Promise.resolve();
    fail = false;
    expect(await catalog.of("1")).toEqual([series("1", "1.1")]);
    await catalog.of("1");
    expect(asked).toEqual(["1", "1"]);
  });

  it("knows the case's studies without asking, and offers their series once each", async () => {
    const asked: string[] = [];
    const catalog = new SeriesCatalog(async (study) => {
      asked.push(study);
      return [];
    });
    const a = series("1", "1.1");
    const b = series("2", "2.1");
    catalog.set([a, b, a]);
    expect(await catalog.of("2")).toEqual([b]);
    expect(asked).toEqual([]);
    expect(catalog.choices([])).toEqual([a, b]);
  });

  it("without a case, offers the series on screen, then the study's", async () => {
    const main = series("1", "1.1");
    const catalog = new SeriesCatalog(async () => [main, series("1", "1.2")]);
    expect(catalog.choices([main, null, main])).toEqual([main]);
    expect(await catalog.offerStudy("1")).toBe(true);
    expect(catalog.choices([main]).map((s) => s.seriesUID)).toEqual(["1.1", "1.2"]);
    expect(await catalog.offerStudy("1")).toBe(false); // offered already
  });

  it("a series its study does not list is still opened, with what is known of it", async () => {
    const catalog = new SeriesCatalog(async () => {
      throw new Error("no study");
    });
    expect(await catalog.find("9", "9.1")).toEqual({ studyUID: "9", seriesUID: "9.1", number: null, modality: "", description: "", instanceCount: 0 });
    catalog.set([series("1", "1.1", 40)]);
    expect((await catalog.find("1", "1.1")).instanceCount).toBe(40);
  });
});

import { describe, expect, it } from "vitest";
import {
  EMPTY_STATE,
  MAX_MEASUREMENTS,
  parseState,
  reduce,
  type Measurement,
  type ViewerState,
} from "../src/viewer/state";
import { ViewerStore } from "../src/viewer/store";
import { fromWire, toWire } from "../src/viewer/wire";

const STUDY = "1.2.840.1";
const SERIES = "1.2.840.1.1";
const PRIOR_STUDY = "1.2.840.9";
const PRIOR_SERIES = "1.2.840.9.1";
const FOR = "1.2.840.1.99";

function loaded(index = 100, count = 200): ViewerState {
  return reduce(EMPTY_STATE, { type: "series", studyUID: STUDY, seriesUID: SERIES, imageCount: count, imageIndex: index });
}

function length(id: string, label = "42.3 mm"): Measurement {
  return {
    id,
    tool: "length",
    viewport: 0,
    frameOfReferenceUID: FOR,
    points: [
      [-10.5, 20, -120.25],
      [30, 22.5, -120.25],
    ],
    label,
  };
}

describe("rotation, flips and invert", () => {
  it("rotates by quarter turns from the fitted camera, wrapping into 0-359", () => {
    let s = reduce(loaded(), { type: "rotate", degrees: 90 });
    expect(s.camera).toEqual({ zoom: 1, pan: [0, 0], rotation: 90, flipHorizontal: false, flipVertical: false });
    s = reduce(s, { type: "rotate", degrees: -180 });
    expect(s.camera?.rotation).toBe(270);
    s = reduce(s, { type: "rotate", degrees: 90 });
    expect(s.camera?.rotation).toBe(0);
    expect(reduce(s, { type: "rotate", degrees: 360 })).toBe(s);
    expect(reduce(s, { type: "rotate", degrees: Number.NaN })).toBe(s);
  });

  it("flips toggle and keep zoom, pan and rotation", () => {
    let s = reduce(loaded(), { type: "camera", camera: { zoom: 2, pan: [0.1, 0.2], rotation: 90, flipHorizontal: false, flipVertical: false } });
    s = reduce(s, { type: "flip", axis: "h" });
    expect(s.camera).toEqual({ zoom: 2, pan: [0.1, 0.2], rotation: 90, flipHorizontal: true, flipVertical: false });
    s = reduce(s, { type: "flip", axis: "v" });
    s = reduce(s, { type: "flip", axis: "h" });
    expect(s.camera).toMatchObject({ flipHorizontal: false, flipVertical: true });
  });

  it("invert toggles or is set; reset clears it with window and camera", () => {
    let s = reduce(loaded(), { type: "invert" });
    expect(s.invert).toBe(true);
    expect(reduce(s, { type: "invert", invert: true })).toBe(s);
    s = reduce(reduce(s, { type: "rotate", degrees: 90 }), { type: "preset", preset: "lung" });
    s = reduce(s, { type: "reset" });
    expect(s).toMatchObject({ invert: false, camera: null, voi: null, imageIndex: 100 });
  });
});

describe("cine", () => {
  it("plays and pauses; the rate is clamped to 1-60 fps", () => {
    let s = reduce(loaded(), { type: "cine", playing: true });
    expect(s).toMatchObject({ cinePlaying: true, cineFps: 15 });
    s = reduce(s, { type: "cine", fps: 200 });
    expect(s.cineFps).toBe(60);
    s = reduce(s, { type: "cine", fps: 0 });
    expect(s.cineFps).toBe(1);
    s = reduce(s, { type: "cine", fps: 24.4 });
    expect(s.cineFps).toBe(24);
    expect(reduce(s, { type: "cine", fps: Number.NaN })).toBe(s);
    s = reduce(s, { type: "cine", playing: false });
    expect(s).toMatchObject({ cinePlaying: false, cineFps: 24 });
  });

  it("a new series stops cine but keeps the rate", () => {
    const s = reduce(reduce(loaded(), { type: "cine", playing: true, fps: 30 }), {
      type: "series", studyUID: STUDY, seriesUID: "9.9", imageCount: 10,
    });
    expect(s).toMatchObject({ cinePlaying: false, cineFps: 30 });
  });
});

describe("measurements", () => {
  it("adds, replaces by id (moved, relabelled) and removes", () => {
    let s = reduce(loaded(), { type: "measurement", measurement: length("a") });
    s = reduce(s, { type: "measurement", measurement: length("b", "10.0 mm") });
    expect(s.measurements.map((m) => m.id)).toEqual(["a", "b"]);
    expect(reduce(s, { type: "measurement", measurement: length("a") })).toBe(s); // same: no change
    const moved = { ...length("a", "50.1 mm"), points: [[0, 0, -120.25], [50.1, 0, -120.25]] as Measurement["points"] };
    s = reduce(s, { type: "measurement", measurement: moved });
    expect(s.measurements[0]).toEqual(moved);
    expect(s.measurements.map((m) => m.id)).toEqual(["a", "b"]); // kept in place
    s = reduce(s, { type: "removeMeasurement", id: "a" });
    expect(s.measurements.map((m) => m.id)).toEqual(["b"]);
    expect(reduce(s, { type: "removeMeasurement", id: "zz" })).toBe(s);
    expect(reduce(s, { type: "clearMeasurements" }).measurements).toEqual([]);
  });

  it("refuses unusable ones and keeps at most 200", () => {
    const s = loaded();
    const bad = [
      { ...length("a"), id: "" },
      { ...length("a"), id: "x".repeat(65) },
      { ...length("a"), tool: "circle" },
      { ...length("a"), points: [] },
      { ...length("a"), points: [[1, 2]] },
      { ...length("a"), points: [[1, 2, Number.NaN]] },
      { ...length("a"), points: Array.from({ length: 17 }, () => [0, 0, 0]) },
    ];
    for (const m of bad) expect(reduce(s, { type: "measurement", measurement: m as Measurement })).toBe(s);
    const long = reduce(s, { type: "measurement", measurement: { ...length("a"), label: "y".repeat(300) } });
    expect(long.measurements[0].label).toHaveLength(200);
    let many = s;
    for (let i = 0; i < MAX_MEASUREMENTS + 5; i++) many = reduce(many, { type: "measurement", measurement: length(`m${i}`) });
    expect(many.measurements).toHaveLength(MAX_MEASUREMENTS);
    expect(many.measurements[0].id).toBe("m5"); // the oldest go first
  });

  it("outlive a change of series and a reset", () => {
    let s = reduce(loaded(), { type: "measurement", measurement: length("a") });
    s = reduce(s, { type: "reset" });
    s = reduce(s, { type: "series", studyUID: STUDY, seriesUID: "other", imageCount: 5 });
    expect(s.measurements.map((m) => m.id)).toEqual(["a"]);
  });
});

describe("second viewport (compare)", () => {
  it("opens at the middle, scrolls within its own stack, closes", () => {
    let s = reduce(loaded(), { type: "compare", compare: { studyUID: PRIOR_STUDY, seriesUID: PRIOR_SERIES, imageCount: 40 } });
    expect(s.compare).toEqual({ studyUID: PRIOR_STUDY, seriesUID: PRIOR_SERIES, imageCount: 40, imageIndex: 20 });
    s = reduce(s, { type: "compareIndex", index: 99 });
    expect(s.compare?.imageIndex).toBe(39);
    expect(s.imageIndex).toBe(100); // the first viewport does not move
    // The same series again (its length now known) keeps the index.
    s = reduce(s, { type: "compare", compare: { studyUID: PRIOR_STUDY, seriesUID: PRIOR_SERIES, imageCount: 60 } });
    expect(s.compare).toMatchObject({ imageIndex: 39, imageCount: 60 });
    s = reduce(s, { type: "active", viewport: 1 });
    expect(s.active).toBe(1);
    s = reduce(s, { type: "compare", compare: null });
    expect(s).toMatchObject({ compare: null, active: 0 });
    expect(reduce(s, { type: "active", viewport: 1 }).active).toBe(0); // nothing to activate
    expect(reduce(s, { type: "compareIndex", index: 3 })).toBe(s);
  });

  it("a follower loading the room's compare series is still following", () => {
    const store = new ViewerStore();
    const shared = reduce(loaded(), { type: "compare", compare: { studyUID: PRIOR_STUDY, seriesUID: PRIOR_SERIES, imageCount: 11, imageIndex: 10 } });
    store.applyShared({ seq: 1, state: shared });
    store.dispatch({ type: "compare", compare: { studyUID: PRIOR_STUDY, seriesUID: PRIOR_SERIES, imageCount: 40 } });
    expect(store.following).toBe(true);
    expect(store.state.compare).toMatchObject({ imageIndex: 10, imageCount: 40 });
    store.dispatch({ type: "compareIndex", index: 2 });
    expect(store.following).toBe(false); // scrolling it alone is looking around
  });
});

describe("wire format of the new fields", () => {
  function full(): ViewerState {
    let s = reduce(loaded(57), { type: "rotate", degrees: 270 });
    s = reduce(s, { type: "flip", axis: "v" });
    s = reduce(s, { type: "invert" });
    s = reduce(s, { type: "cine", playing: true, fps: 24 });
    s = reduce(s, { type: "measurement", measurement: length("a") });
    s = reduce(s, {
      type: "measurement",
      measurement: { id: "r", tool: "roi", viewport: 0, frameOfReferenceUID: null, points: [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 1, 1]], label: "120.4 mm² · mean 41.2 HU" },
    });
    s = reduce(s, { type: "compare", compare: { studyUID: PRIOR_STUDY, seriesUID: PRIOR_SERIES, imageCount: 40, imageIndex: 12 } });
    return reduce(s, { type: "active", viewport: 1 });
  }

  it("sends rotation, flips, invert, cine, measurements and viewports[1] in signaling.md's shape", () => {
    const wire = toWire(full());
    expect(wire.viewports).toHaveLength(2);
    expect(wire.viewports[0]).toMatchObject({
      image_index: 57, zoom: 1, rotation: 270, flip_h: false, flip_v: true, invert: true, cine_playing: true, cine_fps: 24,
    });
    expect(wire.viewports[1]).toMatchObject({ study_uid: PRIOR_STUDY, series_uid: PRIOR_SERIES, image_index: 12, zoom: 1, cine_playing: false });
    expect(wire.active).toBe(1);
    expect(wire.measurements?.[0]).toEqual({
      id: "a", tool: "length", viewport: 0, frame_of_reference_uid: FOR,
      points: [[-10.5, 20, -120.25], [30, 22.5, -120.25]], label: "42.3 mm",
    });
    expect(wire.measurements?.[1]).toMatchObject({ id: "r", tool: "roi", frame_of_reference_uid: null });
  });

  it("round-trips them (lengths known on the receiving screen)", () => {
    const s = full();
    const back = fromWire(JSON.parse(JSON.stringify(toWire(s))), (uid) => (uid === SERIES ? 200 : uid === PRIOR_SERIES ? 40 : null));
    expect(back).toEqual(s);
  });

  it("a single viewport means no compare view; a deletion is an absent measurement", () => {
    const s = reduce(full(), { type: "compare", compare: null });
    const wire = toWire(reduce(s, { type: "removeMeasurement", id: "a" }));
    expect(wire.viewports).toHaveLength(1);
    expect(wire.active).toBe(0);
    const back = fromWire(wire, () => 200);
    expect(back?.compare).toBeNull();
    expect(back?.measurements.map((m) => m.id)).toEqual(["r"]);
  });

  it("drops malformed received measurements, keeps the rest", () => {
    const wire = toWire(full());
    const bad = [
      { id: "", tool: "length", viewport: 0, points: [[0, 0, 0]], label: "" },
      { id: "q", tool: "length", viewport: 0, points: [], label: "" },
    ];
    wire.measurements = [...(wire.measurements ?? []), ...(bad as never[])];
    expect(fromWire(wire, () => 200)?.measurements.map((m) => m.id)).toEqual(["a", "r"]);
  });

  it("the stored state (reload) keeps them too", () => {
    const s = full();
    expect(parseState(JSON.parse(JSON.stringify(s)))).toEqual(s);
  });
});

describe("measurements, camera and cine from driver to follower over ViewerSync", () => {
  it("a drawn and then deleted measurement, a rotation and cine reach the follower's store", async () => {
    const { ViewerSync } = await import("../src/room/sync");
    const driver = new ViewerStore(loaded(90));
    const follower = new ViewerStore();
    let seq = 0;
    const sync = new ViewerSync(driver, {
      send: async (wire) => {
        seq += 1;
        followerSync.receive(seq, JSON.parse(JSON.stringify(wire)));
        return { seq };
      },
    }, { intervalMs: 0 });
    const followerSync = new ViewerSync(follower, { send: () => Promise.reject(new Error("follower")) }, {
      imageCount: () => 200,
    });
    sync.setDriving(true);
    driver.dispatch({ type: "measurement", measurement: length("a") });
    driver.dispatch({ type: "rotate", degrees: 90 });
    driver.dispatch({ type: "flip", axis: "h" });
    driver.dispatch({ type: "cine", playing: true, fps: 20 });
    await Promise.resolve();
    expect(follower.state.measurements).toEqual([length("a")]);
    expect(follower.state.camera).toMatchObject({ rotation: 90, flipHorizontal: true });
    expect(follower.state).toMatchObject({ cinePlaying: true, cineFps: 20, imageIndex: 90 });
    expect(follower.following).toBe(true);
    driver.dispatch({ type: "removeMeasurement", id: "a" });
    await Promise.resolve();
    expect(follower.state.measurements).toEqual([]);
    sync.dispose();
    followerSync.dispose();
  });
});

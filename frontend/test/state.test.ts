import { describe, expect, it } from "vitest";
import { CT_PRESETS, EMPTY_STATE, parseState, reduce, type ViewerState } from "../src/viewer/state";
import { ViewerStore } from "../src/viewer/store";

const STUDY = "1.2.3";
const SERIES = "1.2.3.4";

function loaded(count = 200, index?: number): ViewerState {
  return reduce(EMPTY_STATE, { type: "series", studyUID: STUDY, seriesUID: SERIES, imageCount: count, imageIndex: index });
}

describe("viewer state reducer", () => {
  it("opens a series in its middle image, or at the asked index clamped into range", () => {
    expect(loaded(200).imageIndex).toBe(100);
    expect(loaded(200, 7).imageIndex).toBe(7);
    expect(loaded(200, 999).imageIndex).toBe(199);
    expect(loaded(200, -3).imageIndex).toBe(0);
    expect(loaded(0).imageIndex).toBe(0);
  });

  it("a new series starts from a clean view; the same series keeps it", () => {
    let s = loaded(200, 10);
    s = reduce(s, { type: "preset", preset: "lung" });
    const same = reduce(s, { type: "series", studyUID: STUDY, seriesUID: SERIES, imageCount: 200 });
    expect(same).toBe(s);
    const other = reduce(s, { type: "series", studyUID: STUDY, seriesUID: "9.9", imageCount: 50 });
    expect(other).toMatchObject({ seriesUID: "9.9", imageIndex: 25, voi: null, preset: null, camera: null });
  });

  it("scrolls within the stack and stops at both ends", () => {
    let s = loaded(5, 0);
    s = reduce(s, { type: "scroll", delta: 1 });
    expect(s.imageIndex).toBe(1);
    s = reduce(s, { type: "scroll", delta: 10 });
    expect(s.imageIndex).toBe(4);
    const end = reduce(s, { type: "scroll", delta: 1 });
    expect(end).toBe(s); // unchanged: same object, nothing to render or send
    expect(reduce(s, { type: "index", index: -5 }).imageIndex).toBe(0);
    expect(reduce(EMPTY_STATE, { type: "scroll", delta: 1 })).toBe(EMPTY_STATE);
  });

  it("applies CT presets and recognizes a window that is one", () => {
    let s = reduce(loaded(), { type: "preset", preset: "bone" });
    expect(s.voi).toEqual(CT_PRESETS.bone);
    expect(s.preset).toBe("bone");
    s = reduce(s, { type: "voi", voi: { center: 60, width: 300 } });
    expect(s.preset).toBeNull();
    s = reduce(s, { type: "voi", voi: { center: -600, width: 1500 } });
    expect(s.preset).toBe("lung");
    s = reduce(s, { type: "voi", voi: { center: 0, width: -20 } });
    expect(s.voi).toEqual({ center: 0, width: 1 });
    expect(reduce(s, { type: "voi", voi: { center: Number.NaN, width: 4 } }).voi).toBeNull();
  });

  it("normalizes the camera and resets view but not position", () => {
    let s = reduce(loaded(200, 40), {
      type: "camera",
      camera: { zoom: 1000, pan: [0.1, Number.NaN], rotation: -90, flipHorizontal: true, flipVertical: false },
    });
    expect(s.camera).toEqual({ zoom: 50, pan: [0.1, 0], rotation: 270, flipHorizontal: true, flipVertical: false });
    s = reduce(s, { type: "preset", preset: "brain" });
    s = reduce(s, { type: "reset" });
    expect(s).toMatchObject({ imageIndex: 40, voi: null, preset: null, camera: null });
    expect(reduce(s, { type: "reset" })).toBe(s);
  });

  it("parses a stored or received state, refusing junk", () => {
    const s = reduce(reduce(loaded(200, 12), { type: "preset", preset: "lung" }), {
      type: "camera",
      camera: { zoom: 2, pan: [0.1, -0.2], rotation: 90, flipHorizontal: false, flipVertical: true },
    });
    expect(parseState(JSON.parse(JSON.stringify(s)))).toEqual(s);
    expect(parseState({ ...s, imageIndex: 5000 })?.imageIndex).toBe(199);
    expect(parseState(null)).toBeNull();
    expect(parseState({ studyUID: STUDY })).toBeNull();
    expect(parseState({ ...s, seriesUID: "x".repeat(65) })).toBeNull();
  });
});

describe("viewer store (follow, look around, drive)", () => {
  it("follows the room's state in sequence order, dropping stale updates", () => {
    const store = new ViewerStore();
    const a = loaded(200, 10);
    const b = reduce(a, { type: "index", index: 20 });
    expect(store.applyShared({ seq: 2, state: b })).toBe(true);
    expect(store.applyShared({ seq: 1, state: a })).toBe(false);
    expect(store.applyShared({ seq: 2, state: a })).toBe(false);
    expect(store.state.imageIndex).toBe(20);
  });

  it("a local change without driving stops following; follow() goes back", () => {
    const store = new ViewerStore();
    const seen: boolean[] = [];
    store.onFollowChange((f) => seen.push(f));
    store.applyShared({ seq: 1, state: loaded(200, 10) });
    // Loading the shared series (the viewer reporting its length) is still following.
    store.dispatch({ type: "series", studyUID: STUDY, seriesUID: SERIES, imageCount: 200 });
    expect(store.following).toBe(true);
    store.dispatch({ type: "scroll", delta: 5 });
    expect(store.following).toBe(false);
    expect(store.state.imageIndex).toBe(15);
    store.applyShared({ seq: 2, state: loaded(200, 30) });
    expect(store.state.imageIndex).toBe(15); // still looking around
    store.follow();
    expect(store.state.imageIndex).toBe(30);
    expect(store.following).toBe(true);
    expect(seen).toEqual([false, true]);
  });

  it("opening another series is looking around too", () => {
    const store = new ViewerStore();
    store.applyShared({ seq: 1, state: loaded(200, 10) });
    store.dispatch({ type: "series", studyUID: STUDY, seriesUID: "other", imageCount: 20 });
    expect(store.following).toBe(false);
  });

  it("while driving, local changes go to the listeners and never stop following", () => {
    const store = new ViewerStore();
    store.applyShared({ seq: 4, state: loaded(200, 10) });
    const sent: number[] = [];
    store.onLocalChange((s) => sent.push(s.imageIndex));
    store.setDriving(true);
    store.dispatch({ type: "scroll", delta: 1 });
    store.dispatch({ type: "preset", preset: "lung" });
    store.dispatch({ type: "scroll", delta: -100 });
    store.dispatch({ type: "scroll", delta: -1 }); // at 0 already: nothing sent
    expect(sent).toEqual([11, 11, 0]);
    expect(store.following).toBe(true);
  });

  it("recordShared keeps the room's state without showing it", () => {
    const store = new ViewerStore(loaded(200, 3));
    expect(store.recordShared({ seq: 7, state: loaded(200, 90) })).toBe(true);
    expect(store.state.imageIndex).toBe(3);
    expect(store.shared?.seq).toBe(7);
    expect(store.applyShared({ seq: 6, state: loaded(200, 1) })).toBe(false);
  });

  it("notifies subscribers with the previous state", () => {
    const store = new ViewerStore(loaded(10, 0));
    const seen: number[][] = [];
    store.subscribe((s, p) => seen.push([p.imageIndex, s.imageIndex]));
    store.dispatch({ type: "index", index: 3 });
    store.dispatch({ type: "index", index: 3 });
    expect(seen).toEqual([[0, 3]]);
  });
});

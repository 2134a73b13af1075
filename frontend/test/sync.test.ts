import { describe, expect, it } from "vitest";
import { ViewerSync } from "../src/room/sync";
import { EMPTY_STATE, reduce, type ViewerState } from "../src/viewer/state";
import { ViewerStore } from "../src/viewer/store";
import type { ImageRef } from "../src/viewer/dicomweb";
import { fromWire, toWire } from "../src/viewer/wire";
import type { ViewerStateIn } from "../src/wire/protocol";

const STUDY = "1.2.840.1";
const SERIES = "1.2.840.1.1";

function loaded(index: number, count = 200): ViewerState {
  return reduce(EMPTY_STATE, { type: "series", studyUID: STUDY, seriesUID: SERIES, imageCount: count, imageIndex: index });
}

/** A clock and timers under the test's control. */
class FakeTime {
  now = 0;
  timers: { at: number; fn: () => void }[] = [];
  set = (fn: () => void, ms: number) => {
    const t = { at: this.now + ms, fn };
    this.timers.push(t);
    return t;
  };
  clear = (t: unknown) => {
    this.timers = this.timers.filter((x) => x !== t);
  };
  advance(ms: number) {
    this.now += ms;
    for (const t of this.timers.filter((x) => x.at <= this.now)) {
      this.clear(t);
      t.fn();
    }
  }
}

/** The server's side of `viewer:state`: numbers each state, answers after `ack()`. */
class FakeRoom {
  seq = 0;
  sent: ViewerStateIn[] = [];
  pending: (() => void)[] = [];
  send = (state: ViewerStateIn) => {
    this.sent.push(state);
    const seq = ++this.seq;
    return new Promise<{ seq: number }>((resolve) => this.pending.push(() => resolve({ seq })));
  };
  async ackAll() {
    for (const answer of this.pending.splice(0)) answer();
    await Promise.resolve();
    await Promise.resolve();
  }
}

function setup() {
  const time = new FakeTime();
  const room = new FakeRoom();
  const store = new ViewerStore(loaded(100));
  const sync = new ViewerSync(store, { send: room.send }, {
    intervalMs: 100,
    now: () => time.now,
    setTimer: time.set,
    clearTimer: time.clear,
    imageCount: (uid) => (uid === SERIES ? 200 : null),
  });
  return { time, room, store, sync };
}

describe("wire format", () => {
  it("round-trips the state through viewer:state's shape", () => {
    let s = reduce(loaded(57), { type: "preset", preset: "lung" });
    s = reduce(s, { type: "camera", camera: { zoom: 1.5, pan: [0.1, -0.05], rotation: 90, flipHorizontal: true, flipVertical: false } });
    const wire = toWire(s);
    expect(wire.viewports[0]).toMatchObject({
      study_uid: STUDY, series_uid: SERIES, image_index: 57, window_center: -600, window_width: 1500,
      zoom: 1.5, pan: [0.1, -0.05], rotation: 90, flip_h: true, flip_v: false,
    });
    expect(fromWire(JSON.parse(JSON.stringify(wire)), () => 200)).toEqual(s);
  });

  it("the file's window and a fitted camera travel as absent values", () => {
    const wire = toWire(loaded(3));
    expect(wire.viewports[0]).toMatchObject({ window_center: null, window_width: null, zoom: 1, pan: [0, 0] });
    expect(fromWire(wire, () => 200)).toEqual(loaded(3));
  });

  it("a received index is kept until the series' length is known, and nothing without a series", () => {
    const wire = toWire(loaded(150));
    expect(fromWire(wire, () => null)?.imageIndex).toBe(150);
    expect(fromWire(wire, () => 100)?.imageIndex).toBe(99);
    expect(fromWire({ viewports: [{ ...wire.viewports[0], series_uid: null }], active: 0, measurements: [] }, () => 1)).toBeNull();
  });

  // Two multi-frame instances and a single-frame one, as loadSeries orders them here.
  const stack: ImageRef[] = [
    { sopUID: "1.2.9.1", frame: 1 }, { sopUID: "1.2.9.1", frame: 2 },
    { sopUID: "1.2.9.2", frame: 1 }, { sopUID: "1.2.9.2", frame: 2 }, { sopUID: "1.2.9.3", frame: 1 },
  ];
  const images = (uid: string) => (uid === SERIES ? stack : null);

  it("names the image by its instance and frame, the index beside it as a hint", () => {
    expect(toWire(loaded(3, 5), images).viewports[0]).toMatchObject({ sop_uid: "1.2.9.2", frame: 2, image_index: 3 });
    // A series not loaded here yet: no instance to name, the index alone.
    expect(toWire(loaded(3, 5)).viewports[0]).toMatchObject({ sop_uid: null, frame: 1, image_index: 3 });
  });

  it("a follower finds the image by instance and frame first, whatever index came with it", () => {
    const wire = toWire(loaded(3, 5), images);
    // This screen sorted the series otherwise: the same image is at index 1 here.
    const mine = [stack[0], stack[3], stack[1], stack[2], stack[4]];
    expect(fromWire(wire, () => 5, () => mine)?.imageIndex).toBe(1);
    // An instance this screen does not have, or no series loaded: the hint.
    const other = { ...wire, viewports: [{ ...wire.viewports[0], sop_uid: "1.2.9.77" }] } as ViewerStateIn;
    expect(fromWire(other, () => 5, () => mine)?.imageIndex).toBe(3);
    expect(fromWire(wire, () => null)?.imageIndex).toBe(3);
  });
});

describe("ViewerSync", () => {
  it("sends while driving, at most once per interval, the latest state winning", async () => {
    const { time, room, store, sync } = setup();
    sync.setDriving(true); // the driver's view goes out at once
    expect(room.sent.map((s) => s.viewports[0].image_index)).toEqual([100]);
    for (let i = 0; i < 5; i++) store.dispatch({ type: "scroll", delta: 1 });
    expect(room.sent).toHaveLength(1);
    time.advance(100);
    expect(room.sent.map((s) => s.viewports[0].image_index)).toEqual([100, 105]);
    await room.ackAll();
    expect(store.shared?.seq).toBe(2);
    expect(store.shared?.state.imageIndex).toBe(105);
  });

  it("does not send while following", () => {
    const { room, store } = setup();
    store.dispatch({ type: "scroll", delta: 1 });
    expect(room.sent).toHaveLength(0);
  });

  it("a follower shows received states in order", () => {
    const { store, sync } = setup();
    sync.receive(3, toWire(loaded(40)));
    sync.receive(2, toWire(loaded(20)));
    expect(store.state.imageIndex).toBe(40);
  });

  it("sends the instance and frame, and a state received before its series loaded is resolved once it is", async () => {
    const time = new FakeTime();
    const room = new FakeRoom();
    const store = new ViewerStore();
    let mine: ImageRef[] | null = null; // not loaded yet
    const refs: ImageRef[] = [{ sopUID: "1.2.9.1", frame: 1 }, { sopUID: "1.2.9.2", frame: 1 }, { sopUID: "1.2.9.3", frame: 1 }];
    const sync = new ViewerSync(store, { send: room.send }, {
      intervalMs: 100, now: () => time.now, setTimer: time.set, clearTimer: time.clear,
      imageCount: (uid) => (uid === SERIES && mine ? mine.length : null),
      images: (uid) => (uid === SERIES ? mine : null),
    });
    // The driver shows index 0 of its sort, which is 1.2.9.3; ours puts that one last.
    const wire = toWire(loaded(0, 3), () => [refs[2], refs[0], refs[1]]);
    expect(wire.viewports[0]).toMatchObject({ sop_uid: "1.2.9.3", image_index: 0 });
    sync.receive(1, wire);
    expect(store.state.imageIndex).toBe(0); // the hint, for now
    mine = refs;
    store.dispatch({ type: "series", studyUID: STUDY, seriesUID: SERIES, imageCount: 3 }); // as the viewer does on load
    await Promise.resolve();
    expect(store.state.imageIndex).toBe(2);
    expect(store.following).toBe(true);
    expect(store.shared).toMatchObject({ seq: 1, state: { imageIndex: 2 } });

    sync.setDriving(true);
    expect(room.sent.map((s) => [s.viewports[0].sop_uid, s.viewports[0].frame])).toEqual([["1.2.9.3", 1]]);
  });

  it("a driver with a change on the way keeps it over a co-driver's state", async () => {
    const { time, room, store, sync } = setup();
    sync.setDriving(true);
    await room.ackAll();
    time.advance(100);
    store.dispatch({ type: "index", index: 7 }); // sent, not yet acknowledged
    sync.receive(room.seq + 1, toWire(loaded(150))); // the co-driver's, meanwhile
    expect(store.state.imageIndex).toBe(7);
    await room.ackAll();
    sync.receive(room.seq + 5, toWire(loaded(160))); // later, with nothing on the way: shown
    expect(store.state.imageIndex).toBe(160);
  });
});

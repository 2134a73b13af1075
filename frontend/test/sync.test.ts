import { describe, expect, it } from "vitest";
import { ViewerSync } from "../src/room/sync";
import { EMPTY_STATE, reduce, type ViewerState } from "../src/viewer/state";
import { ViewerStore } from "../src/viewer/store";
import { fromWire, toWire, type WireViewerState } from "../src/viewer/wire";

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
  sent: WireViewerState[] = [];
  pending: (() => void)[] = [];
  send = (state: WireViewerState) => {
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

import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";

import { Cine, cineStep } from "../src/viewer/cine";
import { Laser, LASER_FADE_MS, trackPointer } from "../src/viewer/pointer";
import { EMPTY_STATE, reduce } from "../src/viewer/state";
import { ViewerStore } from "../src/viewer/store";
import { FakeElement, installFakeDom } from "./fakeDom";

beforeAll(installFakeDom);
afterEach(() => {
  vi.useRealTimers();
});

const at = (index: number) => reduce(EMPTY_STATE, { type: "series", studyUID: "1", seriesUID: "1.1", imageCount: 10, imageIndex: index });

describe("cine", () => {
  it("a screen on its own (or the driver) steps the state, wrapping at the end", () => {
    expect(cineStep(new ViewerStore(at(9)), 3, 10)).toEqual({ shared: true, index: 0 });
    const driver = new ViewerStore(at(4));
    driver.setDriving(true);
    expect(cineStep(driver, 7, 10)).toEqual({ shared: true, index: 5 });
  });

  it("a follower of the room steps its viewport only, from where it is", () => {
    const follower = new ViewerStore();
    follower.applyShared({ seq: 1, state: at(4) });
    expect(cineStep(follower, 7, 10)).toEqual({ shared: false, index: 8 });
  });

  it("plays at the rate, restarts only for a new one, stops", () => {
    vi.useFakeTimers();
    let steps = 0;
    const cine = new Cine(() => steps++);
    cine.update(true, 10);
    vi.advanceTimersByTime(1000);
    expect([cine.playing, steps]).toEqual([true, 10]);
    cine.update(true, 10); // the same rate: the timer goes on
    vi.advanceTimersByTime(50);
    expect(steps).toBe(10);
    vi.advanceTimersByTime(50);
    expect(steps).toBe(11);
    cine.update(true, 20);
    vi.advanceTimersByTime(1000);
    expect(steps).toBe(31);
    cine.update(false, 20);
    vi.advanceTimersByTime(1000);
    expect([cine.playing, steps]).toEqual([false, 31]);
  });
});

describe("the laser pointer", () => {
  const move = (element: FakeElement, x: number, buttons = 0) => {
    for (const fn of element.listeners.get("pointermove") ?? []) (fn as (e: unknown) => void)({ clientX: x, clientY: 0, buttons });
  };

  it("sends points over the image, one null on leaving it, nothing for drags", () => {
    const element = new FakeElement("div");
    const sent: ([number, number] | null)[] = [];
    const stop = trackPointer(element as unknown as HTMLElement, (x) => (x < 100 ? [x / 100, 0.5] : null), (p) => sent.push(p));
    move(element, 10);
    move(element, 20, 1); // a drag is a tool
    move(element, 150); // off the image
    move(element, 160);
    move(element, 50);
    element.fire("pointerleave");
    element.fire("pointerleave");
    expect(sent).toEqual([[0.1, 0.5], null, [0.5, 0.5], null]);
    stop();
    expect(element.listenerCount("pointermove") + element.listenerCount("pointerleave")).toBe(0);
  });

  it("is shown where the point is, and fades when it stops moving", () => {
    vi.useFakeTimers();
    const laser = new Laser();
    const el = laser.el as unknown as FakeElement;
    const d: Record<string, string> = {};
    laser.show([0.25, 0.5], [120, 80], d);
    expect([el.hidden, el.style.transform, d.laser]).toEqual([false, "translate(120px, 80px)", "0.250,0.500"]);
    vi.advanceTimersByTime(LASER_FADE_MS);
    expect(el.hidden).toBe(true);
    laser.show([0.25, 0.5], [120, 80], d);
    laser.show(null, null, d);
    expect(el.hidden).toBe(true);
  });
});

import { beforeAll, describe, expect, it, vi } from "vitest";

import { CompareView } from "../src/viewer/compare";
import type { LoadedSeries, SeriesInfo } from "../src/viewer/dicomweb";
import type { Session } from "../src/session";
import { EMPTY_STATE, reduce } from "../src/viewer/state";
import { ViewerStore } from "../src/viewer/store";
import type { ViewportEngine } from "../src/viewer/viewport";
import { FakeElement, installFakeDom } from "./fakeDom";

const PRIOR: SeriesInfo = { studyUID: "9", seriesUID: "9.1", number: 2, modality: "CT", description: "prior", instanceCount: 30 };

vi.mock("../src/viewer/dicomweb", () => ({
  listSeries: async () => [PRIOR],
  loadSeries: async (_: Session, series: SeriesInfo): Promise<LoadedSeries> =>
    ({ series, imageIds: Array.from({ length: 30 }, (_, i) => `wadors:/${i}`), instances: [] }) as unknown as LoadedSeries,
}));
vi.mock("../src/viewer/engine", () => ({
  annotations: { get: () => undefined, remove: () => undefined, render: () => undefined, hydrate: () => true, selected: () => [] },
  registerMetadata: () => undefined,
}));

beforeAll(() => {
  installFakeDom();
  vi.stubGlobal("location", { origin: "http://test" });
});

/** An engine whose one stack records where it was sent. */
function engine() {
  const shown: string[] = [];
  const tools: string[] = [];
  let target = 0;
  const stack = {
    setStack: async (ids: string[], index: number) => {
      target = index;
      shown.push(`${ids.length}@${index}`);
    },
    getTargetImageIdIndex: () => target,
    setImageIdIndex: async (index: number) => {
      target = index;
      shown.push(`go ${index}`);
    },
    render: () => undefined,
    getFrameOfReferenceUID: () => "9.99",
  };
  const e: ViewportEngine = {
    id: "e",
    annotations: { get: () => undefined, remove: () => undefined, render: () => undefined, hydrate: () => true, selected: () => [] },
    enable: () => undefined,
    stack: () => stack as never,
    createToolGroup: () => ({
      addTool: (n) => tools.push(n),
      addViewport: () => undefined,
      setToolActive: (n, { bindings }) => bindings[0].mouseButton === 1 && tools.push(`left ${n}`),
      setToolPassive: () => undefined,
    }),
    toolGroup: () => null,
    destroyToolGroup: () => undefined,
    listen: () => () => undefined,
    listenAnnotations: () => () => undefined,
    voiRange: () => ({ lower: 0, upper: 1 }),
  };
  return { e, shown, tools };
}

describe("the compare view", () => {
  it("opens the chosen series on the second viewport, with the viewer's left tool, and follows its index", async () => {
    const store = new ViewerStore(reduce(EMPTY_STATE, { type: "series", studyUID: "1", seriesUID: "1.1", imageCount: 10 }));
    const { e, shown, tools } = engine();
    const toggled: boolean[] = [];
    const observed: unknown[] = [];
    const compare = new CompareView({} as Session, store, { viewportId: "vp-c", toolGroupId: "tg-c" }, {
      engine: () => e,
      leftTool: () => "length",
      mainSeries: () => null,
      toggled: (s) => toggled.push(s),
      enabled: (el) => observed.push(el),
      pressed: () => undefined,
      changed: () => undefined,
    });
    store.subscribe((state) => compare.apply(state));
    compare.setCatalog([PRIOR]);
    const select = compare.select as unknown as FakeElement & { value: string };
    expect(select.children).toHaveLength(2); // "no comparison" and the prior
    select.value = "9|9.1";
    select.fire("change");
    expect(store.state.compare).toMatchObject({ seriesUID: "9.1", imageCount: 30, imageIndex: 15 });
    expect(toggled).toEqual([true]);
    await vi.waitFor(() => expect(shown).toEqual(["30@15"]));
    expect(tools).toContain("left Length");
    expect(observed).toEqual([compare.viewport.element]);
    await vi.waitFor(() => expect((compare.stage as unknown as FakeElement).hidden).toBe(false));

    store.dispatch({ type: "compareIndex", index: 3 });
    expect(shown.at(-1)).toBe("go 3");
    const d: Record<string, string> = {};
    compare.render(store.state, d);
    expect(d).toMatchObject({ compareSeriesUid: "9.1", compareIndex: "3" });

    select.value = "";
    select.fire("change");
    expect(store.state.compare).toBeNull();
    expect(toggled).toEqual([true, false]);
    expect((compare.stage as unknown as FakeElement).hidden).toBe(true);
    compare.dispose();
  });
});

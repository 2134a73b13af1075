import type { StackViewport, Types } from "@cornerstonejs/core";
import { LengthTool, WindowLevelTool } from "@cornerstonejs/tools";
import { beforeAll, describe, expect, it } from "vitest";

import type { LoadedSeries } from "../src/viewer/dicomweb";
import type { Annotations } from "../src/viewer/measurements";
import { EMPTY_STATE, reduce, type Camera, type ViewerState } from "../src/viewer/state";
import { ViewerStore } from "../src/viewer/store";
import { TOOLS, type ToolGroupLike } from "../src/viewer/tools";
import { Viewport, type AnnotationEvents, type ViewportEngine, type ViewportEvents } from "../src/viewer/viewport";
import { FakeElement, fakeWindow, installFakeDom } from "./fakeDom";

beforeAll(installFakeDom);

/** A Cornerstone stack viewport's state, as plain fields. */
class FakeStack {
  imageIds: string[] = [];
  target = 0;
  voiRange: Types.VOIRange | undefined;
  invert = false;
  presentation: Partial<Camera> = { zoom: 1, pan: [0, 0], rotation: 0 };
  calls: string[] = [];
  async setStack(ids: string[], index: number) {
    this.imageIds = ids;
    this.target = index;
    this.calls.push(`setStack ${index}`);
  }
  getTargetImageIdIndex() {
    return this.target;
  }
  async setImageIdIndex(index: number) {
    this.target = index;
    this.calls.push(`go ${index}`);
  }
  getProperties() {
    return { voiRange: this.voiRange, invert: this.invert };
  }
  setProperties(p: { voiRange?: Types.VOIRange; invert?: boolean }) {
    if (p.voiRange) this.voiRange = p.voiRange;
    if (p.invert !== undefined) this.invert = p.invert;
    this.calls.push(`properties ${JSON.stringify(p)}`);
  }
  resetProperties() {
    this.voiRange = undefined;
    this.invert = false;
    this.calls.push("resetProperties");
  }
  getViewPresentation() {
    return this.presentation;
  }
  setViewPresentation(p: Partial<Camera>) {
    this.presentation = p;
    this.calls.push(`camera ${p.rotation}`);
  }
  resetCamera() {
    this.presentation = { zoom: 1, pan: [0, 0], rotation: 0 };
    this.calls.push("resetCamera");
  }
  getFrameOfReferenceUID() {
    return "1.2.840.99";
  }
}

/** The engine port: viewports and tool groups by id, listeners kept to be called. */
function fakeEngine() {
  const stacks = new Map<string, FakeStack>();
  const groups = new Map<string, string[]>();
  const listeners: { element: HTMLElement; events: ViewportEvents }[] = [];
  const annotationListeners: AnnotationEvents[] = [];
  const annotations: Annotations = {
    get: () => undefined,
    remove: () => undefined,
    render: () => undefined,
    hydrate: () => true,
    selected: () => [],
  };
  const recording = (calls: string[]): ToolGroupLike => ({
    addTool: (name) => calls.push(`add ${name}`),
    addViewport: (id) => calls.push(`viewport ${id}`),
    setToolActive: (name, { bindings }) => calls.push(`active ${name} ${bindings[0].mouseButton}`),
    setToolPassive: (name) => calls.push(`passive ${name}`),
  });
  const engine: ViewportEngine = {
    id: "engine-1",
    annotations,
    enable: (viewportId) => void stacks.set(viewportId, new FakeStack()),
    stack: (viewportId) => (stacks.get(viewportId) as unknown as StackViewport | undefined) ?? null,
    createToolGroup: (id) => {
      if (groups.has(id)) return null;
      groups.set(id, []);
      return recording(groups.get(id)!);
    },
    toolGroup: (id) => (groups.has(id) ? recording(groups.get(id)!) : null),
    destroyToolGroup: (id) => void groups.delete(id),
    listen: (element, events) => {
      const entry = { element, events };
      listeners.push(entry);
      return () => listeners.splice(listeners.indexOf(entry), 1);
    },
    listenAnnotations: (events) => {
      annotationListeners.push(events);
      return () => annotationListeners.splice(annotationListeners.indexOf(events), 1);
    },
    voiRange: (voi) => ({ lower: voi.center - voi.width / 2, upper: voi.center + voi.width / 2 }),
  };
  return { engine, stacks, groups, listeners, annotationListeners };
}

const noEvents: ViewportEvents = {
  scrolled: () => undefined,
  newImage: () => undefined,
  voiModified: () => undefined,
  cameraModified: () => undefined,
  rendered: () => undefined,
};

function loadedSeries(count: number): LoadedSeries {
  const imageIds = Array.from({ length: count }, (_, i) => `wadors:/i/${i}`);
  return { series: { studyUID: "1", seriesUID: "1.1", number: 1, modality: "CT", description: "", instanceCount: count }, imageIds, instances: [] } as unknown as LoadedSeries;
}

function state(): ViewerState {
  return reduce(EMPTY_STATE, { type: "series", studyUID: "1", seriesUID: "1.1", imageCount: 10 });
}

function makeViewport(index: 0 | 1, store = new ViewerStore(), events = noEvents) {
  const pressed: number[] = [];
  const spec = { index, viewportId: `vp-${index}`, toolGroupId: `tools-${index}`, testid: index ? "viewport-compare" : "viewport" };
  const viewport = new Viewport(spec, store, events, fakeEngine().engine.annotations, () => pressed.push(index));
  return { viewport, pressed, store };
}

describe("one viewport component, twice", () => {
  it("main and compare get the same tools from the table, the measurement tools included", () => {
    const f = fakeEngine();
    const main = makeViewport(0).viewport;
    const compare = makeViewport(1).viewport;
    main.enable(f.engine, "windowLevel");
    compare.enable(f.engine, "windowLevel");
    expect([...f.groups.keys()]).toEqual(["tools-0", "tools-1"]);
    const strip = (calls: string[]) => calls.map((c) => c.replace(/vp-\d/, "vp"));
    expect(strip(f.groups.get("tools-1")!)).toEqual(strip(f.groups.get("tools-0")!));
    for (const t of TOOLS) expect(f.groups.get("tools-1")).toContain(`add ${t.toolName}`);
    expect(f.groups.get("tools-1")).toContain(`passive ${LengthTool.toolName}`);
    expect((compare.element as unknown as FakeElement).dataset.testid).toBe("viewport-compare");
  });

  it("the left tool changes on its tool group; enabling twice changes nothing", () => {
    const f = fakeEngine();
    const { viewport } = makeViewport(1);
    viewport.setLeftTool("windowLevel", "length"); // not enabled yet: nothing to change
    viewport.enable(f.engine, "windowLevel");
    viewport.enable(f.engine, "windowLevel");
    expect(f.listeners).toHaveLength(1);
    viewport.setLeftTool("windowLevel", "length");
    expect(f.groups.get("tools-1")!.slice(-2)).toEqual([`passive ${WindowLevelTool.toolName}`, `active ${LengthTool.toolName} 1`]);
  });

  it("a pointer down makes it the active one and its changes the user's until the pointer is up", () => {
    const { viewport, pressed } = makeViewport(1);
    const element = viewport.element as unknown as FakeElement;
    element.fire("pointerdown");
    expect([pressed, viewport.pointerDown, element.focused]).toEqual([[1], true, 1]);
    fakeWindow.fire("pointerup");
    expect(viewport.pointerDown).toBe(false);
  });

  it("takes annotation events of its own element and viewport only, as measurements of its index", () => {
    const f = fakeEngine();
    const store = new ViewerStore(state());
    const { viewport } = makeViewport(1, store);
    viewport.enable(f.engine, "length");
    const annotation = {
      annotationUID: "m1",
      metadata: { toolName: LengthTool.toolName, FrameOfReferenceUID: "1.2.840.99" },
      data: { handles: { points: [[0, 0, 0], [1, 1, 1]] } },
    };
    const [events] = f.annotationListeners;
    events.completed({ annotation, element: new FakeElement("div") as unknown as Element, statsUpdated: false });
    events.completed({ annotation, viewportId: "vp-0", statsUpdated: false });
    expect(store.state.measurements).toEqual([]);
    events.completed({ annotation, element: viewport.element, viewportId: "vp-1", statsUpdated: false });
    expect(store.state.measurements).toMatchObject([{ id: "m1", viewport: 1 }]);
    events.removed({ annotation, element: viewport.element, statsUpdated: false });
    expect(store.state.measurements).toEqual([]);
  });

  it("shows a series at a slice within its stack and tells when it was superseded", async () => {
    const f = fakeEngine();
    const { viewport } = makeViewport(0);
    expect(await viewport.show(3, () => false)).toBe(false); // not enabled
    viewport.enable(f.engine, "windowLevel");
    viewport.loaded = loadedSeries(5);
    expect(await viewport.show(9, () => false)).toBe(true);
    expect(await viewport.show(2, () => true)).toBe(false);
    const stack = f.stacks.get("vp-0")!;
    expect(stack.calls).toEqual(["setStack 4", "setStack 2"]);
    viewport.go(2); // on its way there already
    viewport.go(7);
    expect(stack.calls.at(-1)).toBe("go 4");
  });

  it("applies the state's window, camera and invert where they differ from the screen", () => {
    const f = fakeEngine();
    const { viewport } = makeViewport(0);
    viewport.enable(f.engine, "windowLevel");
    const stack = f.stacks.get("vp-0")!;
    let s = reduce(state(), { type: "voi", voi: { center: 40, width: 400 } });
    s = reduce(s, { type: "rotate", degrees: 90 });
    viewport.applyView(s, null);
    expect(stack.calls).toEqual([`properties {"voiRange":{"lower":-160,"upper":240}}`, "camera 90"]);
    viewport.applyView(s, s);
    expect(stack.calls).toHaveLength(2); // already there
    const reset = reduce(reduce(s, { type: "invert" }), { type: "reset" });
    viewport.applyView(reduce(s, { type: "invert" }), s);
    viewport.applyView(reset, reduce(s, { type: "invert" }));
    expect(stack.calls.slice(2)).toEqual([`properties {"invert":true}`, "resetProperties", "resetCamera"]);
  });

  it("dispose lets go of its tool group and listeners", () => {
    const f = fakeEngine();
    const before = fakeWindow.listenerCount("pointerup");
    const { viewport } = makeViewport(0);
    viewport.enable(f.engine, "windowLevel");
    viewport.dispose();
    expect([f.groups.size, f.listeners.length, f.annotationListeners.length, fakeWindow.listenerCount("pointerup")]).toEqual([0, 0, 0, before]);
    expect(viewport.enabled).toBe(false);
  });
});

import { LengthTool, PanTool } from "@cornerstonejs/tools";
import { describe, expect, it } from "vitest";

import { MeasurementSync, measurementLabel, measurementOf, type AnnotationLike, type Annotations } from "../src/viewer/measurements";
import { EMPTY_STATE, reduce, type Measurement, type Point3, type ViewerState } from "../src/viewer/state";
import { ViewerStore } from "../src/viewer/store";

const FOR = "1.2.840.99";

/** Cornerstone's page-wide annotations, as a map; `hydrate` adds one the way the tools do. */
function fakeAnnotations() {
  const byId = new Map<string, AnnotationLike>();
  const rendered: string[] = [];
  const hydrated: string[] = [];
  let sync: MeasurementSync | null = null;
  const echoes: boolean[] = [];
  const port: Annotations = {
    get: (id) => byId.get(id),
    remove: (id) => {
      echoes.push(sync?.accepts(byId.get(id)!) ?? false);
      byId.delete(id);
    },
    render: (viewportId) => rendered.push(viewportId),
    hydrate: (kind, viewportId, points, id) => {
      if (kind === "arrow") return false;
      hydrated.push(`${viewportId} ${id}`);
      const annotation = { annotationUID: id, metadata: { toolName: LengthTool.toolName, FrameOfReferenceUID: FOR }, data: { handles: { points } } };
      byId.set(id, annotation);
      echoes.push(sync?.accepts(annotation) ?? false);
      return true;
    },
    selected: () => [],
  };
  return { port, byId, rendered, hydrated, echoes, attach: (s: MeasurementSync) => (sync = s) };
}

function length(id: string, viewport: 0 | 1 = 0, points: Point3[] = [[0, 0, 0], [10, 0, 0]]): Measurement {
  return { id, tool: "length", viewport, frameOfReferenceUID: FOR, points, label: "10.0 mm" };
}

function withMeasurements(...ms: Measurement[]): ViewerState {
  let s = reduce(EMPTY_STATE, { type: "series", studyUID: "1", seriesUID: "1.1", imageCount: 10 });
  for (const m of ms) s = reduce(s, { type: "measurement", measurement: m });
  return s;
}

function drawn(id: string, stats?: Record<string, unknown>): AnnotationLike {
  return {
    annotationUID: id,
    metadata: { toolName: LengthTool.toolName, FrameOfReferenceUID: FOR },
    data: { handles: { points: [[1, 2, 3], [4, 5, 6]] }, cachedStats: stats ? { "imageId:1": stats } : undefined },
  };
}

describe("measurement labels", () => {
  it("reads the stats its tool computed", () => {
    expect(measurementLabel("length", drawn("a", { length: 42.345, unit: "mm" }))).toBe("42.3 mm");
    expect(measurementLabel("angle", { data: { cachedStats: { x: { angle: 35 } } } })).toBe("35.0°");
    expect(measurementLabel("roi", { data: { cachedStats: { x: { area: 120.4, areaUnit: "mm²", mean: 41.2, modalityUnit: "HU" } } } })).toContain("120.4");
    expect(measurementLabel("length", drawn("a"))).toBe("");
    expect(measurementLabel("length", drawn("a", { length: Number.NaN }))).toBe("");
  });

  it("a measurement from an annotation of ours, on the viewport it was drawn on", () => {
    expect(measurementOf(drawn("a", { length: 5 }), 1)).toEqual({
      id: "a", tool: "length", viewport: 1, frameOfReferenceUID: FOR, points: [[1, 2, 3], [4, 5, 6]], label: "5.0 mm",
    });
    expect(measurementOf({ ...drawn("a"), metadata: { toolName: PanTool.toolName } }, 0)).toBeNull();
    expect(measurementOf({ ...drawn("a"), data: { handles: { points: [] } } }, 0)).toBeNull();
  });
});

describe("measurement sync: state → annotations", () => {
  it("draws this viewport's measurements only, in their frame of reference, without echo", () => {
    const a = fakeAnnotations();
    const store = new ViewerStore();
    const sync = a.attach(new MeasurementSync(1, "vp-compare", store, a.port));
    const other = { ...length("c", 1), frameOfReferenceUID: "9.9" };
    sync.apply(withMeasurements(length("a", 0), length("b", 1), other), FOR);
    expect(a.hydrated).toEqual(["vp-compare b"]);
    expect(a.echoes).toEqual([false]);
    expect(a.rendered).toEqual(["vp-compare"]);
    // Nothing new: nothing drawn again, no render.
    sync.apply(withMeasurements(length("b", 1)), FOR);
    expect(a.rendered).toHaveLength(1);
  });

  it("moves a measurement whose points changed and removes the ones gone from the state", () => {
    const a = fakeAnnotations();
    const sync = a.attach(new MeasurementSync(0, "vp", new ViewerStore(), a.port));
    sync.apply(withMeasurements(length("a"), length("b")), FOR);
    sync.apply(withMeasurements(length("a", 0, [[0, 0, 0], [20, 0, 0]]), length("b")), FOR);
    expect((a.byId.get("a")!.data as { handles: { points: Point3[] } }).handles.points).toEqual([[0, 0, 0], [20, 0, 0]]);
    expect(a.byId.get("a")!.invalidated).toBe(true);
    sync.apply(withMeasurements(length("b")), FOR);
    expect([...a.byId.keys()]).toEqual(["b"]);
    expect(a.echoes.every((e) => !e)).toBe(true);
    expect(a.rendered).toEqual(["vp", "vp", "vp"]);
  });

  it("an arrow from another client is not drawn", () => {
    const a = fakeAnnotations();
    const sync = new MeasurementSync(0, "vp", new ViewerStore(), a.port);
    sync.apply(withMeasurements({ ...length("r"), tool: "arrow" }), FOR);
    expect(a.byId.size).toBe(0);
    expect(a.rendered).toEqual([]);
  });

  it("dispose removes what it drew (Cornerstone keeps annotations page-wide)", () => {
    const a = fakeAnnotations();
    const sync = new MeasurementSync(0, "vp", new ViewerStore(), a.port);
    sync.apply(withMeasurements(length("a"), length("b")), FOR);
    sync.dispose();
    expect(a.byId.size).toBe(0);
  });
});

describe("measurement sync: annotations → state", () => {
  it("a drawing becomes a measurement of this viewport; a deletion removes it", () => {
    const store = new ViewerStore(withMeasurements());
    const sync = new MeasurementSync(1, "vp-compare", store, fakeAnnotations().port);
    expect(sync.accepts(drawn("a"))).toBe(true);
    expect(sync.accepts({ ...drawn("a"), metadata: { toolName: PanTool.toolName } })).toBe(false);
    sync.completed(drawn("a", { length: 5 }));
    expect(store.state.measurements).toMatchObject([{ id: "a", viewport: 1, label: "5.0 mm" }]);
    sync.removed(drawn("a"));
    expect(store.state.measurements).toEqual([]);
  });

  it("a move by this user is taken; one still being drawn waits for its completion", () => {
    const store = new ViewerStore(withMeasurements(length("a")));
    const sync = new MeasurementSync(0, "vp", store, fakeAnnotations().port);
    sync.modified(drawn("new"), true, false);
    expect(store.state.measurements.map((m) => m.id)).toEqual(["a"]);
    sync.modified(drawn("a"), true, false);
    expect(store.state.measurements[0].points).toEqual([[1, 2, 3], [4, 5, 6]]);
  });

  it("stats computed later relabel it on the screen that drew it, not on a follower's", () => {
    const annotation = { ...drawn("a", { length: 12 }), data: { handles: { points: [[0, 0, 0], [10, 0, 0]] }, cachedStats: { x: { length: 12 } } } };
    const own = new ViewerStore(withMeasurements(length("a")));
    new MeasurementSync(0, "vp", own, fakeAnnotations().port).modified(annotation, false, true);
    expect(own.state.measurements[0].label).toBe("12.0 mm");

    const follower = new ViewerStore();
    follower.applyShared({ seq: 1, state: withMeasurements(length("a")) });
    new MeasurementSync(0, "vp", follower, fakeAnnotations().port).modified(annotation, false, true);
    expect(follower.state.measurements[0].label).toBe("10.0 mm");
    expect(follower.following).toBe(true);
  });
});

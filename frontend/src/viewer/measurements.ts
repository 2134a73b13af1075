/**
 * Shared measurements ↔ one viewport's Cornerstone annotations, both ways without echo:
 * the state's measurements of this viewport are drawn (added, moved, removed), and what the
 * user draws, moves or deletes here becomes state. Cornerstone keeps annotations page-wide,
 * behind the `Annotations` port, so that the sync can be tested without a GPU.
 */

import { strings } from "../strings";
import type { ViewerStore } from "./store";
import type { Measurement, MeasurementTool, Point3, ViewerState } from "./state";
import { measurementKind } from "./tools";

/** The part of a Cornerstone annotation the sync reads and writes. */
export interface AnnotationLike {
  annotationUID?: string;
  metadata?: { toolName?: string; FrameOfReferenceUID?: string };
  data: unknown;
  invalidated?: boolean;
}

export interface Annotations {
  get(id: string): AnnotationLike | undefined;
  remove(id: string): void;
  /** Draws a measurement as its tool's annotation; false when no tool here draws its kind. */
  hydrate(kind: MeasurementTool, viewportId: string, points: Point3[], id: string): boolean;
  /** Redraws the annotations of a viewport. */
  render(viewportId: string): void;
  /** The UIDs of the annotations the user selected. */
  selected(): string[];
}

function finite(x: unknown): number | null {
  return typeof x === "number" && Number.isFinite(x) ? x : null;
}

/** The label of a measurement from the stats its tool computed (units from pixel spacing). */
export function measurementLabel(kind: MeasurementTool, annotation: AnnotationLike): string {
  const cached = (annotation.data as { cachedStats?: Record<string, Record<string, unknown>> }).cachedStats;
  const stats = cached ? Object.values(cached).find((v) => v && typeof v === "object") : undefined;
  if (!stats) return "";
  if (kind === "length") {
    const length = finite(stats.length);
    return length === null ? "" : strings.measurementLength(length, typeof stats.unit === "string" ? stats.unit : "mm");
  }
  if (kind === "angle") {
    const angle = finite(stats.angle);
    return angle === null ? "" : strings.measurementAngle(angle);
  }
  const area = finite(stats.area);
  if (area === null) return "";
  return strings.measurementRoi(
    area,
    typeof stats.areaUnit === "string" ? stats.areaUnit : "mm²",
    finite(stats.mean),
    typeof stats.modalityUnit === "string" ? stats.modalityUnit : "",
  );
}

export function measurementOf(annotation: AnnotationLike, viewport: 0 | 1): Measurement | null {
  const kind = measurementKind(annotation.metadata?.toolName);
  const points = (annotation.data as { handles?: { points?: Point3[] } }).handles?.points;
  if (!kind || !annotation.annotationUID || !points?.length) return null;
  return {
    id: annotation.annotationUID,
    tool: kind,
    viewport,
    frameOfReferenceUID: annotation.metadata?.FrameOfReferenceUID ?? null,
    points: points.map((p) => [p[0], p[1], p[2]]),
    label: measurementLabel(kind, annotation),
  };
}

function samePoints(a: Point3[], b: Point3[]): boolean {
  return a.length === b.length && a.every((p, i) => p.every((x, j) => Math.abs(x - b[i][j]) < 1e-6));
}

export class MeasurementSync {
  /** Annotation UIDs that are (or were) shared measurements on this viewport. */
  private readonly synced = new Set<string>();
  /** Set while the sync adds or removes annotations itself (no echo into the store). */
  private applying = false;

  constructor(
    private readonly viewport: 0 | 1,
    private readonly viewportId: string,
    private readonly store: ViewerStore,
    private readonly annotations: Annotations,
  ) {}

  /** Whether an annotation event is the user's, on one of our measurement tools. */
  accepts(annotation: AnnotationLike): boolean {
    return !this.applying && measurementKind(annotation.metadata?.toolName) !== null;
  }

  /** The state's measurements of this viewport onto it: add, move, remove. `frame` is the
   * frame of reference of the series on screen: a measurement is drawn only in its own. */
  apply(state: ViewerState, frame: string | null): void {
    const wanted = new Map(state.measurements.filter((m) => m.viewport === this.viewport).map((m) => [m.id, m]));
    const { annotations } = this;
    let changed = false;
    this.applying = true;
    try {
      for (const id of [...this.synced]) {
        if (wanted.has(id)) continue;
        this.synced.delete(id);
        if (annotations.get(id)) {
          annotations.remove(id);
          changed = true;
        }
      }
      for (const m of wanted.values()) {
        this.synced.add(m.id);
        const existing = annotations.get(m.id);
        if (existing) {
          const handles = (existing.data as { handles: { points: Point3[] } }).handles;
          if (!samePoints(handles.points, m.points)) {
            handles.points = m.points.map((p) => [...p] as Point3);
            existing.invalidated = true;
            changed = true;
          }
          continue;
        }
        // Drawn only on a series in its frame of reference (it comes back with one).
        if (m.frameOfReferenceUID && frame && m.frameOfReferenceUID !== frame) continue;
        // An arrow from another client is not drawn here.
        if (!annotations.hydrate(m.tool, this.viewportId, m.points.map((p) => [...p] as Point3), m.id)) continue;
        const added = annotations.get(m.id);
        if (added) {
          // What the tools' own drawing sets up, and hydrate leaves out.
          const data = added.data as Record<string, unknown> & { handles: Record<string, unknown> };
          data.cachedStats ??= {};
          data.label ??= "";
          data.handles.activeHandleIndex ??= null;
          data.handles.textBox ??= {
            hasMoved: false,
            worldPosition: [0, 0, 0],
            worldBoundingBox: { topLeft: [0, 0, 0], topRight: [0, 0, 0], bottomLeft: [0, 0, 0], bottomRight: [0, 0, 0] },
          };
          added.invalidated = true;
        }
        changed = true;
      }
    } catch (err) {
      console.warn("measurements", err);
    } finally {
      this.applying = false;
    }
    if (changed) annotations.render(this.viewportId);
  }

  /** Drawn here: a new measurement. */
  completed(annotation: AnnotationLike): void {
    this.take(annotation);
  }

  /** Moved by this user (`byUser`: the pointer is down here), or its stats came in. */
  modified(annotation: AnnotationLike, byUser: boolean, statsUpdated: boolean): void {
    const id = annotation.annotationUID ?? "";
    const known = this.store.state.measurements.find((m) => m.id === id);
    if (!known) return; // still being drawn: taken when completed
    if (byUser) return this.take(annotation);
    // Stats computed after the drawing: the label, from the screen that drew it.
    const mine = this.store.isDriving || !this.store.following || !this.store.shared;
    if (mine && statsUpdated) {
      const label = measurementOf(annotation, this.viewport)?.label;
      if (label && label !== known.label) this.store.dispatch({ type: "measurement", measurement: { ...known, label } });
    }
  }

  removed(annotation: AnnotationLike): void {
    const id = annotation.annotationUID ?? "";
    this.synced.delete(id);
    this.store.dispatch({ type: "removeMeasurement", id });
  }

  /** Cornerstone keeps annotations page-wide: the room's go with its viewer. */
  dispose(): void {
    this.applying = true;
    for (const id of this.synced) {
      try {
        if (this.annotations.get(id)) this.annotations.remove(id);
      } catch {
        // already gone
      }
    }
    this.synced.clear();
  }

  private take(annotation: AnnotationLike): void {
    const m = measurementOf(annotation, this.viewport);
    if (!m) return;
    this.synced.add(m.id);
    this.store.dispatch({ type: "measurement", measurement: m });
  }
}

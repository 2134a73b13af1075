/**
 * One stack viewport: its element, its Cornerstone viewport and tool group (built from the
 * tool table), its series, and its measurements. The viewer has two, the main one and the
 * compare view, both this component; what differs (the main one's window, camera and frame
 * loading) is the viewer's, through the events it is given. Cornerstone is reached through
 * the `ViewportEngine` port (engine.ts), so that this can be tested without a GPU.
 */

import type { StackViewport, Types } from "@cornerstonejs/core";

import { h } from "../dom";
import type { LoadedSeries } from "./dicomweb";
import { MeasurementSync, type AnnotationLike, type Annotations } from "./measurements";
import type { Camera, ViewerState, Voi } from "./state";
import type { ViewerStore } from "./store";
import { configureToolGroup, switchLeftTool, type LeftTool, type ToolGroupLike } from "./tools";

/** What a viewport reports of its Cornerstone viewport. */
export interface ViewportEvents {
  /** The scroll tool (wheel) moved to a slice; it is on screen later (`newImage`). */
  scrolled(index: number): void;
  /** A slice is on screen (possibly an older target than the last scroll). */
  newImage(index: number, image: Types.IImage | undefined): void;
  /** The window changed (a tool, or the viewport's own adjustment). */
  voiModified(range: Types.VOIRange | undefined): void;
  cameraModified(): void;
  rendered(): void;
}

export interface AnnotationEvent {
  annotation: AnnotationLike;
  element?: Element;
  viewportId?: string;
  /** Only its stats changed (computed after the drawing). */
  statsUpdated: boolean;
}

export interface AnnotationEvents {
  completed(e: AnnotationEvent): void;
  modified(e: AnnotationEvent): void;
  removed(e: AnnotationEvent): void;
}

/** A rendering engine, as the viewports use it. */
export interface ViewportEngine {
  readonly id: string;
  readonly annotations: Annotations;
  enable(viewportId: string, element: HTMLDivElement): void;
  stack(viewportId: string): StackViewport | null;
  createToolGroup(id: string): ToolGroupLike | null;
  toolGroup(id: string): ToolGroupLike | null;
  destroyToolGroup(id: string): void;
  /** The viewport's events on its element, until the returned function is called. */
  listen(element: HTMLElement, events: ViewportEvents): () => void;
  /** Annotation events, page-wide. */
  listenAnnotations(events: AnnotationEvents): () => void;
  /** Window centre/width → Cornerstone's VOI range. */
  voiRange(voi: Voi): Types.VOIRange;
}

export interface ViewportSpec {
  index: 0 | 1;
  viewportId: string;
  toolGroupId: string;
  testid: string;
}

export class Viewport {
  readonly element: HTMLDivElement;
  /** The series on this viewport (its stack set), null before. */
  loaded: LoadedSeries | null = null;
  /** The slice on screen (STACK_NEW_IMAGE), which may lag the state's. */
  shown: number | null = null;
  /** The user's pointer is down on this viewport: what the tools change is the user's. */
  pointerDown = false;
  private engine: ViewportEngine | null = null;
  private readonly measurements: MeasurementSync;
  private cleanups: (() => void)[] = [];

  constructor(
    readonly spec: ViewportSpec,
    store: ViewerStore,
    private readonly events: ViewportEvents,
    annotations: Annotations,
    /** A pointer went down on it (it becomes the active viewport). */
    pressed: () => void,
  ) {
    this.element = h("div", { class: "viewport-host", tabindex: "0", "data-testid": spec.testid });
    this.element.addEventListener("contextmenu", (e) => e.preventDefault());
    this.element.addEventListener("pointerdown", () => {
      pressed();
      this.pointerDown = true;
      this.element.focus({ preventScroll: true });
    });
    const up = () => {
      this.pointerDown = false;
    };
    window.addEventListener("pointerup", up);
    window.addEventListener("pointercancel", up);
    this.cleanups.push(() => {
      window.removeEventListener("pointerup", up);
      window.removeEventListener("pointercancel", up);
    });
    this.measurements = new MeasurementSync(spec.index, spec.viewportId, store, annotations);
  }

  get enabled(): boolean {
    return this.engine !== null;
  }

  /** On the engine, with every tool of the table (`left` on the left button). */
  enable(engine: ViewportEngine, left: LeftTool): void {
    if (this.engine) return;
    const { viewportId, toolGroupId } = this.spec;
    engine.enable(viewportId, this.element);
    this.engine = engine;
    const group = engine.createToolGroup(toolGroupId);
    if (!group) throw new Error("tool group exists");
    configureToolGroup(group, viewportId, engine.id, left);
    this.cleanups.push(engine.listen(this.element, this.events));
    // Measurements drawn, moved or deleted here become state (and go to the room when
    // driving); the ones added from the state are not echoed back.
    const mine = (e: AnnotationEvent) =>
      this.measurements.accepts(e.annotation) &&
      (!e.element || e.element === this.element) &&
      (!e.viewportId || e.viewportId === viewportId);
    this.cleanups.push(
      engine.listenAnnotations({
        completed: (e) => mine(e) && this.measurements.completed(e.annotation),
        modified: (e) => mine(e) && this.measurements.modified(e.annotation, this.pointerDown, e.statsUpdated),
        removed: (e) => mine(e) && this.measurements.removed(e.annotation),
      }),
    );
  }

  get stack(): StackViewport | null {
    return this.engine?.stack(this.spec.viewportId) ?? null;
  }

  setLeftTool(from: LeftTool, to: LeftTool): void {
    const group = this.engine?.toolGroup(this.spec.toolGroupId);
    if (group) switchLeftTool(group, from, to);
  }

  /**
   * The series `loaded` names onto the viewport at `index`. False when `superseded` says
   * another was chosen meanwhile (the stack is then left to that one).
   */
  async show(index: number, superseded: () => boolean): Promise<boolean> {
    const stack = this.stack;
    const loaded = this.loaded;
    if (!stack || !loaded) return false;
    await stack.setStack(loaded.imageIds, Math.max(0, Math.min(index, loaded.imageIds.length - 1)));
    return !superseded();
  }

  /** Moves to a slice of its stack unless it is on its way there already. */
  go(index: number): void {
    const stack = this.stack;
    if (!stack || !this.loaded) return;
    const i = Math.min(index, this.loaded.imageIds.length - 1);
    if (stack.getTargetImageIdIndex() !== i) void stack.setImageIdIndex(i).catch(() => undefined);
  }

  /** The camera as the viewport has it (what is on screen, not merely asked for). */
  camera(): Camera | null {
    const stack = this.stack;
    if (!stack) return null;
    const p = stack.getViewPresentation();
    return {
      zoom: p.zoom ?? 1,
      pan: [p.pan?.[0] ?? 0, p.pan?.[1] ?? 0],
      rotation: p.rotation ?? 0,
      flipHorizontal: Boolean(p.flipHorizontal),
      flipVertical: Boolean(p.flipVertical),
    };
  }

  /** The state's camera, or the fitted one (zoom 1 is "fit" on every size). */
  setCamera(camera: Camera | null): void {
    const stack = this.stack;
    if (!stack) return;
    if (camera) {
      stack.setViewPresentation({
        zoom: camera.zoom,
        pan: camera.pan as Types.Point2,
        rotation: camera.rotation,
        flipHorizontal: camera.flipHorizontal,
        flipVertical: camera.flipVertical,
      });
    } else {
      stack.resetCamera();
    }
  }

  /** Window, camera and invert from the state, where they differ from the screen's. */
  applyView(state: ViewerState, previous: ViewerState | null): void {
    const stack = this.stack;
    const engine = this.engine;
    if (!stack || !engine) return;
    if (state.voi) {
      const current = stack.getProperties().voiRange;
      const wanted = engine.voiRange(state.voi);
      if (!current || Math.abs(current.lower - wanted.lower) > 0.01 || Math.abs(current.upper - wanted.upper) > 0.01) {
        stack.setProperties({ voiRange: wanted });
      }
    } else if (previous?.voi) {
      stack.resetProperties();
    }
    if (state.camera) {
      if (JSON.stringify(this.camera()) !== JSON.stringify(state.camera)) this.setCamera(state.camera);
    } else if (previous?.camera) {
      stack.resetCamera();
    }
    // After the window: resetProperties (back to the file's window) clears invert too.
    if (Boolean(stack.getProperties().invert) !== state.invert) stack.setProperties({ invert: state.invert });
  }

  /** The state's measurements of this viewport, drawn on it. */
  applyMeasurements(state: ViewerState): void {
    const stack = this.stack;
    if (!stack || !this.loaded) return;
    this.measurements.apply(state, stack.getFrameOfReferenceUID() ?? null);
  }

  dispose(): void {
    this.measurements.dispose();
    for (const cleanup of this.cleanups) cleanup();
    this.cleanups = [];
    if (this.engine) this.engine.destroyToolGroup(this.spec.toolGroupId);
    this.engine = null;
  }
}

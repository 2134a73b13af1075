/**
 * The stack viewer: a Cornerstone3D stack viewport driven by the ViewerStore.
 *
 * Two directions, without echo:
 * - store → viewport: every state change is applied when it differs from what the viewport
 *   shows (buttons, keys, slider, a restored or shared state);
 * - viewport → store: the tools act on the viewport directly (wheel scroll, window/level,
 *   zoom and pan drags); their changes are read back into the store. Window and camera
 *   changes are taken only while the user's pointer is down on the viewport, so that the
 *   viewport's own adjustments (fitting on resize, an image's default window) never become
 *   state.
 */

import {
  Enums as CoreEnums,
  getRenderingEngine,
  RenderingEngine,
  type StackViewport,
  type Types,
  utilities as csUtilities,
} from "@cornerstonejs/core";
import { wadors } from "@cornerstonejs/dicom-image-loader";
import {
  Enums as ToolEnums,
  PanTool,
  StackScrollTool,
  ToolGroupManager,
  utilities as toolUtilities,
  WindowLevelTool,
  ZoomTool,
} from "@cornerstonejs/tools";

import { h } from "../dom";
import type { Session } from "../session";
import { strings } from "../strings";
import { loadSeries, type LoadedSeries, type SeriesInfo } from "./dicomweb";
import { PRESET_ORDER, type Camera, type PresetId, type ViewerState, type Voi } from "./state";
import type { ViewerStore } from "./store";
import { initCornerstone } from "./cornerstone";

export type LeftTool = "windowLevel" | "pan" | "zoom" | "scroll";

const TOOL_NAMES: Record<LeftTool, string> = {
  windowLevel: WindowLevelTool.toolName,
  pan: PanTool.toolName,
  zoom: ZoomTool.toolName,
  scroll: StackScrollTool.toolName,
};

const TOOL_LABELS: Record<LeftTool, string> = {
  windowLevel: strings.toolWindowLevel,
  pan: strings.toolPan,
  zoom: strings.toolZoom,
  scroll: strings.toolScroll,
};

const PRESET_LABELS: Record<PresetId, string> = {
  lung: strings.presetLung,
  mediastinum: strings.presetMediastinum,
  bone: strings.presetBone,
  brain: strings.presetBrain,
};

const { MouseBindings } = ToolEnums;
const Events = CoreEnums.Events;

let viewerCount = 0;

// Window centre/width ↔ Cornerstone's VOI range, with DICOM's linear function (PS3.3
// C.11.2.1.2), as Cornerstone converts the file's own window.
function voiFromRange(range: Types.VOIRange): Voi {
  const { windowCenter, windowWidth } = csUtilities.windowLevel.toWindowLevel(range.lower, range.upper);
  return { center: windowCenter, width: windowWidth };
}

function rangeFromVoi(voi: Voi): Types.VOIRange {
  return csUtilities.windowLevel.toLowHighRange(voi.width, voi.center);
}

export class StackViewer {
  readonly el: HTMLElement;
  private readonly element: HTMLDivElement;
  private readonly overlay = {
    series: h("div", { class: "ov-series" }),
    position: h("div", { class: "ov-position", "data-testid": "image-position" }),
    window: h("div", { class: "ov-window", "data-testid": "window-level" }),
    zoom: h("div", { class: "ov-zoom" }),
  };
  private readonly slider: HTMLInputElement;
  private readonly laser = h("div", { class: "laser", hidden: true, "data-testid": "laser" });
  private laserTimer: number | undefined;
  private readonly status: HTMLElement;
  /** Where the room page shows who drives and the follow / control buttons. */
  readonly syncBar: HTMLElement;
  private readonly toolButtons = new Map<LeftTool, HTMLButtonElement>();
  private readonly presetButtons = new Map<PresetId, HTMLButtonElement>();
  private readonly id = ++viewerCount;
  private readonly engineId = `hoichan-engine-${this.id}`;
  private readonly viewportId = `hoichan-stack-${this.id}`;
  private readonly toolGroupId = `hoichan-tools-${this.id}`;
  private engine: RenderingEngine | null = null;
  private loaded: LoadedSeries | null = null;
  private loading: Promise<void> | null = null;
  private openGeneration = 0;
  private leftTool: LeftTool = "windowLevel";
  private pointerDown = false;
  /** The index of the image on screen (STACK_NEW_IMAGE), which may lag the state's. */
  private displayedIndex: number | null = null;
  private disposed = false;
  private resizeObserver: ResizeObserver | null = null;
  private cleanups: (() => void)[] = [];

  constructor(
    private readonly session: Session,
    private readonly store: ViewerStore,
  ) {
    this.element = h("div", { class: "viewport-host", tabindex: "0", "data-testid": "viewport" });
    this.element.addEventListener("contextmenu", (e) => e.preventDefault());
    this.slider = h("input", {
      type: "range",
      class: "stack-slider",
      min: "0",
      max: "0",
      value: "0",
      "aria-label": strings.imageSlider,
      "data-testid": "stack-slider",
    });
    this.slider.addEventListener("input", () => this.store.dispatch({ type: "index", index: Number(this.slider.value) }));
    this.status = h("div", { class: "viewer-status" }, strings.viewerEmpty);
    this.syncBar = h("div", { class: "sync-bar", "data-testid": "sync-bar" });

    const tools = h("div", { class: "toolgroup", role: "group", "aria-label": strings.leftButtonTool });
    for (const tool of Object.keys(TOOL_NAMES) as LeftTool[]) {
      const button = h(
        "button",
        { type: "button", class: "tool", "data-tool": tool, onclick: () => this.setLeftTool(tool) },
        TOOL_LABELS[tool],
      );
      this.toolButtons.set(tool, button);
      tools.append(button);
    }
    const presets = h("div", { class: "toolgroup", role: "group", "aria-label": strings.presets });
    PRESET_ORDER.forEach((preset, i) => {
      const button = h(
        "button",
        {
          type: "button",
          class: "preset",
          "data-preset": preset,
          title: `${PRESET_LABELS[preset]} (${i + 1})`,
          onclick: () => this.store.dispatch({ type: "preset", preset }),
        },
        PRESET_LABELS[preset],
      );
      this.presetButtons.set(preset, button);
      presets.append(button);
    });
    presets.append(
      h("button", { type: "button", class: "preset", "data-preset": "default", title: `${strings.presetDefault} (0)`,
        onclick: () => this.store.dispatch({ type: "voi", voi: null }) }, strings.presetDefault),
    );
    const reset = h(
      "button",
      { type: "button", class: "reset", title: `${strings.reset} (R)`, onclick: () => this.store.dispatch({ type: "reset" }) },
      strings.reset,
    );

    this.el = h(
      "section",
      { class: "viewer", "data-testid": "viewer", "data-rendered": "0" },
      h("div", { class: "viewer-toolbar" }, tools, presets, reset, this.syncBar),
      h(
        "div",
        { class: "viewer-stage" },
        this.element,
        h("div", { class: "viewer-overlay" }, this.overlay.series, this.overlay.position, this.overlay.window, this.overlay.zoom, this.laser),
        this.status,
      ),
      h(
        "div",
        { class: "viewer-scrollbar" },
        h("button", { type: "button", class: "step", "aria-label": strings.previousImage,
          onclick: () => this.store.dispatch({ type: "scroll", delta: -1 }) }, "‹"),
        this.slider,
        h("button", { type: "button", class: "step", "aria-label": strings.nextImage,
          onclick: () => this.store.dispatch({ type: "scroll", delta: 1 }) }, "›"),
      ),
      h("p", { class: "viewer-help" }, strings.viewerHelp),
    );
    // Viewer keys work wherever the focus is, except where the user types or chooses.
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement | null;
      if (target?.closest?.("input, textarea, select, [contenteditable=true]")) return;
      if (!this.el.isConnected) return;
      this.onKey(e);
    };
    document.addEventListener("keydown", onKey);
    this.cleanups.push(() => document.removeEventListener("keydown", onKey));
    this.element.addEventListener("pointerdown", () => {
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
    this.cleanups.push(this.store.subscribe((state, previous) => this.apply(state, previous)));
    this.markTool();
    this.render(this.store.state);
  }

  /** Call once the element is in the document (the viewport needs its size). */
  async mount(): Promise<void> {
    await initCornerstone(this.session);
    if (this.disposed) return;
    const engine = new RenderingEngine(this.engineId);
    this.engine = engine;
    engine.enableElement({
      viewportId: this.viewportId,
      type: CoreEnums.ViewportType.STACK,
      element: this.element,
      defaultOptions: { background: [0, 0, 0] as Types.Point3 },
    });
    const group = ToolGroupManager.createToolGroup(this.toolGroupId);
    if (!group) throw new Error("tool group exists");
    for (const name of Object.values(TOOL_NAMES)) group.addTool(name);
    group.addViewport(this.viewportId, this.engineId);
    group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
    group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
    group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
    group.setToolActive(TOOL_NAMES[this.leftTool], { bindings: [{ mouseButton: MouseBindings.Primary }] });

    const on = <T extends Event>(type: string, fn: (e: T) => void) => {
      const listener = fn as EventListener;
      this.element.addEventListener(type, listener);
      this.cleanups.push(() => this.element.removeEventListener(type, listener));
    };
    // The scroll tool (wheel) announces its target at once; STACK_NEW_IMAGE comes when an
    // image is on screen, possibly an older target: it only updates what is displayed.
    on<CustomEvent<Types.EventTypes.StackViewportScrollEventDetail>>(Events.STACK_VIEWPORT_SCROLL, (e) => {
      if (!this.loading) this.store.dispatch({ type: "index", index: e.detail.newImageIdIndex });
    });
    on<CustomEvent<Types.EventTypes.StackNewImageEventDetail>>(Events.STACK_NEW_IMAGE, (e) => {
      this.displayedIndex = e.detail.imageIdIndex;
      this.render(this.store.state);
    });
    on<CustomEvent<Types.EventTypes.VoiModifiedEventDetail>>(Events.VOI_MODIFIED, (e) => {
      if (this.pointerDown && e.detail.range) {
        this.store.dispatch({ type: "voi", voi: voiFromRange(e.detail.range) });
      }
      this.render(this.store.state);
    });
    on(Events.CAMERA_MODIFIED, () => {
      if (this.pointerDown) this.store.dispatch({ type: "camera", camera: this.readCamera() });
      this.render(this.store.state);
    });
    on(Events.IMAGE_RENDERED, () => {
      if (this.viewport()?.getCurrentImageId()) this.el.dataset.rendered = "1";
      this.render(this.store.state);
    });

    this.resizeObserver = new ResizeObserver(() => {
      if (!this.disposed) getRenderingEngine(this.engineId)?.resize(true, true);
    });
    this.resizeObserver.observe(this.element);
  }

  get series(): SeriesInfo | null {
    return this.loaded?.series ?? null;
  }

  /** Length of the loaded stack, if `seriesUID` is the one loaded. */
  imageCount(seriesUID: string): number | null {
    return this.loaded && this.loaded.series.seriesUID === seriesUID ? this.loaded.imageIds.length : null;
  }

  /**
   * A pointer position on the element as a fraction of the displayed image (columns, rows),
   * so that it lands on the same anatomy on every screen whatever its size; null off the image.
   */
  imagePoint(clientX: number, clientY: number): [number, number] | null {
    const viewport = this.viewport();
    const image = viewport?.getCornerstoneImage?.();
    const imageId = viewport?.getCurrentImageId();
    if (!viewport || !image || !imageId) return null;
    const rect = this.element.getBoundingClientRect();
    const world = viewport.canvasToWorld([clientX - rect.left, clientY - rect.top] as Types.Point2);
    const coords = csUtilities.worldToImageCoords(imageId, world);
    if (!coords) return null;
    const [col, row] = coords;
    const x = col / image.columns;
    const y = row / image.rows;
    return x >= 0 && x <= 1 && y >= 0 && y <= 1 ? [x, y] : null;
  }

  /** The laser pointer of the one who drives, at a fraction of the image; null hides it. */
  showPointer(point: [number, number] | null): void {
    window.clearTimeout(this.laserTimer);
    const viewport = this.viewport();
    const image = viewport?.getCornerstoneImage?.();
    const imageId = viewport?.getCurrentImageId();
    if (!point || !viewport || !image || !imageId) {
      this.laser.hidden = true;
      return;
    }
    const world = csUtilities.imageToWorldCoords(imageId, [point[0] * image.columns, point[1] * image.rows] as Types.Point2);
    if (!world) {
      this.laser.hidden = true;
      return;
    }
    const [x, y] = viewport.worldToCanvas(world);
    this.laser.style.transform = `translate(${x}px, ${y}px)`;
    this.laser.hidden = false;
    this.el.dataset.laser = `${point[0].toFixed(3)},${point[1].toFixed(3)}`;
    // A pointer that stops moving fades: the driver's page may have gone.
    this.laserTimer = window.setTimeout(() => {
      this.laser.hidden = true;
    }, 4000);
  }

  /** Where pointer moves over the image go (the room sends them while this screen drives). */
  onPointer(listener: (point: [number, number] | null) => void): void {
    let inside = false;
    const move = (e: PointerEvent) => {
      if (e.buttons !== 0) return; // a drag is a tool, not pointing
      const point = this.imagePoint(e.clientX, e.clientY);
      if (point || inside) listener(point);
      inside = point !== null;
    };
    const leave = () => {
      if (inside) listener(null);
      inside = false;
    };
    this.element.addEventListener("pointermove", move);
    this.element.addEventListener("pointerleave", leave);
    this.cleanups.push(() => {
      this.element.removeEventListener("pointermove", move);
      this.element.removeEventListener("pointerleave", leave);
    });
  }

  /**
   * Loads a series (metadata, image ids) and shows it at the store's state when the store
   * already points at this series (restored or shared), else at its middle image.
   */
  async open(series: SeriesInfo): Promise<void> {
    const viewport = this.viewport();
    if (!viewport) throw new Error("viewer not mounted");
    this.status.textContent = strings.viewerLoading;
    this.status.hidden = false;
    this.el.dataset.rendered = "0";
    this.displayedIndex = null;
    const generation = ++this.openGeneration;
    const superseded = () => this.disposed || generation !== this.openGeneration;
    const run = (async () => {
      const loaded = await loadSeries(this.session, series, location.origin);
      if (superseded()) return;
      for (let i = 0; i < loaded.imageIds.length; i++) {
        wadors.metaDataManager.add(loaded.imageIds[i], loaded.instances[i] as never);
      }
      this.loaded = loaded;
      this.store.dispatch({
        type: "series",
        studyUID: series.studyUID,
        seriesUID: series.seriesUID,
        imageCount: loaded.imageIds.length,
      });
      await viewport.setStack(loaded.imageIds, this.store.state.imageIndex);
      if (superseded()) return;
      toolUtilities.stackPrefetch.enable(this.element);
      this.applyView(this.store.state, null); // the state may have moved on meanwhile
      viewport.render();
    })();
    this.loading = run;
    try {
      await run;
      if (generation === this.openGeneration) this.status.hidden = true;
    } catch (err) {
      if (generation !== this.openGeneration) return;
      this.status.textContent = strings.viewerLoadFailed(err instanceof Error ? err.message : String(err));
      this.status.hidden = false;
      throw err;
    } finally {
      if (this.loading === run) this.loading = null;
      this.render(this.store.state);
    }
  }

  setLeftTool(tool: LeftTool): void {
    if (tool === this.leftTool) return;
    const group = ToolGroupManager.getToolGroup(this.toolGroupId);
    if (group) {
      group.setToolPassive(TOOL_NAMES[this.leftTool]);
      group.setToolActive(TOOL_NAMES[tool], { bindings: [{ mouseButton: MouseBindings.Primary }] });
    }
    this.leftTool = tool;
    this.markTool();
  }

  focus(): void {
    this.element.focus({ preventScroll: true });
  }

  dispose(): void {
    this.disposed = true;
    this.resizeObserver?.disconnect();
    for (const cleanup of this.cleanups) cleanup();
    this.cleanups = [];
    try {
      toolUtilities.stackPrefetch.disable(this.element);
    } catch {
      // never enabled
    }
    ToolGroupManager.destroyToolGroup(this.toolGroupId);
    this.engine?.destroy();
    this.engine = null;
  }

  private viewport(): StackViewport | null {
    return (this.engine?.getViewport(this.viewportId) as StackViewport | undefined) ?? null;
  }

  private readCamera(): Camera | null {
    const viewport = this.viewport();
    if (!viewport) return null;
    const p = viewport.getViewPresentation();
    return {
      zoom: p.zoom ?? 1,
      pan: [p.pan?.[0] ?? 0, p.pan?.[1] ?? 0],
      rotation: p.rotation ?? 0,
      flipHorizontal: Boolean(p.flipHorizontal),
      flipVertical: Boolean(p.flipVertical),
    };
  }

  /** The store changed: bring the viewport to it (unless it is there already). */
  private apply(state: ViewerState, previous: ViewerState): void {
    const viewport = this.viewport();
    if (!viewport || !this.loaded || this.loading) {
      this.render(state);
      return;
    }
    if (state.seriesUID !== this.loaded.series.seriesUID) {
      this.render(state); // the room page opens the other series
      return;
    }
    this.applyView(state, previous);
    viewport.render();
    this.render(state);
  }

  private applyView(state: ViewerState, previous: ViewerState | null): void {
    const viewport = this.viewport();
    if (!viewport) return;
    if (viewport.getTargetImageIdIndex() !== state.imageIndex) {
      void viewport.setImageIdIndex(state.imageIndex).catch(() => undefined);
    }
    if (state.voi) {
      const current = viewport.getProperties().voiRange;
      const wanted = rangeFromVoi(state.voi);
      if (!current || Math.abs(current.lower - wanted.lower) > 0.01 || Math.abs(current.upper - wanted.upper) > 0.01) {
        viewport.setProperties({ voiRange: wanted });
      }
    } else if (previous?.voi) {
      viewport.resetProperties();
    }
    if (state.camera) {
      const now = this.readCamera();
      if (JSON.stringify(now) !== JSON.stringify(state.camera)) {
        viewport.setViewPresentation({
          zoom: state.camera.zoom,
          pan: state.camera.pan as Types.Point2,
          rotation: state.camera.rotation,
          flipHorizontal: state.camera.flipHorizontal,
          flipVertical: state.camera.flipVertical,
        });
      }
    } else if (previous?.camera) {
      viewport.resetCamera();
    }
  }

  /** Overlay, slider, buttons and the data attributes the tests read. */
  private render(state: ViewerState): void {
    const viewport = this.viewport();
    const count = state.imageCount;
    const index = state.imageIndex;
    this.slider.max = String(Math.max(0, count - 1));
    this.slider.value = String(index);
    this.slider.disabled = count <= 1;
    this.overlay.position.textContent = count ? strings.imagePosition(index, count) : "";
    const range = viewport && this.loaded ? viewport.getProperties().voiRange : undefined;
    const shown = range ? voiFromRange(range) : state.voi;
    this.overlay.window.textContent = shown ? strings.windowLevel(shown.width, shown.center) : "";
    const zoom = this.loaded ? this.readCamera()?.zoom : undefined;
    this.overlay.zoom.textContent = zoom ? strings.zoomLabel(zoom) : "";
    const series = this.loaded?.series;
    this.overlay.series.textContent = series ? strings.seriesLabel(series.number, series.description, count) : "";
    for (const [preset, button] of this.presetButtons) {
      button.setAttribute("aria-pressed", String(state.preset === preset));
    }
    const d = this.el.dataset;
    d.seriesUid = state.seriesUID ?? "";
    d.imageIndex = String(index);
    d.imageCount = String(count);
    d.shownIndex = this.displayedIndex === null ? "" : String(this.displayedIndex);
    d.voi = shown ? `${Math.round(shown.center)},${Math.round(shown.width)}` : "";
    d.preset = state.preset ?? "";
  }

  private markTool(): void {
    for (const [tool, button] of this.toolButtons) button.setAttribute("aria-pressed", String(tool === this.leftTool));
  }

  private onKey(e: KeyboardEvent): void {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const page = Math.max(1, Math.round(this.store.state.imageCount / 10));
    const actions: Record<string, () => void> = {
      ArrowUp: () => this.store.dispatch({ type: "scroll", delta: -1 }),
      ArrowLeft: () => this.store.dispatch({ type: "scroll", delta: -1 }),
      ArrowDown: () => this.store.dispatch({ type: "scroll", delta: 1 }),
      ArrowRight: () => this.store.dispatch({ type: "scroll", delta: 1 }),
      PageUp: () => this.store.dispatch({ type: "scroll", delta: -page }),
      PageDown: () => this.store.dispatch({ type: "scroll", delta: page }),
      Home: () => this.store.dispatch({ type: "index", index: 0 }),
      End: () => this.store.dispatch({ type: "index", index: this.store.state.imageCount - 1 }),
      "0": () => this.store.dispatch({ type: "voi", voi: null }),
      r: () => this.store.dispatch({ type: "reset" }),
      R: () => this.store.dispatch({ type: "reset" }),
    };
    PRESET_ORDER.forEach((preset, i) => {
      actions[String(i + 1)] = () => this.store.dispatch({ type: "preset", preset });
    });
    const action = actions[e.key];
    if (!action) return;
    e.preventDefault();
    action();
  }
}

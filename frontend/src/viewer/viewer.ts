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
  eventTarget,
  metaData as csMetaData,
  getRenderingEngine,
  RenderingEngine,
  type StackViewport,
  type Types,
  utilities as csUtilities,
} from "@cornerstonejs/core";
import { wadors } from "@cornerstonejs/dicom-image-loader";
import {
  AngleTool,
  annotation as csAnnotation,
  EllipticalROITool,
  Enums as ToolEnums,
  LengthTool,
  PanTool,
  StackScrollTool,
  ToolGroupManager,
  utilities as toolUtilities,
  type Types as ToolTypes,
  WindowLevelTool,
  ZoomTool,
} from "@cornerstonejs/tools";

import { h } from "../dom";
import type { Session } from "../session";
import { strings } from "../strings";
import { listSeries, loadSeries, type LoadedSeries, type SeriesInfo } from "./dicomweb";
import {
  MAX_CINE_FPS,
  MIN_CINE_FPS,
  PRESET_ORDER,
  type Camera,
  type Measurement,
  type MeasurementTool,
  type PresetId,
  type ViewerState,
  type Voi,
} from "./state";
import type { ViewerStore } from "./store";
import { initCornerstone } from "./cornerstone";
import { StackLoading } from "./stackLoading";

export type LeftTool = "windowLevel" | "pan" | "zoom" | "scroll" | "length" | "angle" | "roi";

const TOOL_NAMES: Record<LeftTool, string> = {
  windowLevel: WindowLevelTool.toolName,
  pan: PanTool.toolName,
  zoom: ZoomTool.toolName,
  scroll: StackScrollTool.toolName,
  length: LengthTool.toolName,
  angle: AngleTool.toolName,
  roi: EllipticalROITool.toolName,
};

const TOOL_LABELS: Record<LeftTool, string> = {
  windowLevel: strings.toolWindowLevel,
  pan: strings.toolPan,
  zoom: strings.toolZoom,
  scroll: strings.toolScroll,
  length: strings.toolLength,
  angle: strings.toolAngle,
  roi: strings.toolRoi,
};

const TOOL_KEYS: Record<LeftTool, string> = {
  windowLevel: "w",
  pan: "p",
  zoom: "z",
  scroll: "s",
  length: "l",
  angle: "a",
  roi: "o",
};

const VIEW_TOOLS: LeftTool[] = ["windowLevel", "pan", "zoom", "scroll"];
const MEASURE_TOOLS: LeftTool[] = ["length", "angle", "roi"];

/** Cornerstone tool name ↔ the shared measurement kind. */
const MEASUREMENT_KINDS: Record<string, MeasurementTool> = {
  [LengthTool.toolName]: "length",
  [AngleTool.toolName]: "angle",
  [EllipticalROITool.toolName]: "roi",
};
const MEASUREMENT_TOOLS: Partial<Record<MeasurementTool, typeof LengthTool | typeof AngleTool | typeof EllipticalROITool>> = {
  length: LengthTool,
  angle: AngleTool,
  roi: EllipticalROITool,
};

type Annotation = ToolTypes.Annotation;

function finite(x: unknown): number | null {
  return typeof x === "number" && Number.isFinite(x) ? x : null;
}

/** The label of a measurement from the stats its tool computed (units from pixel spacing). */
function measurementLabel(kind: MeasurementTool, annotation: Annotation): string {
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

function measurementOf(annotation: Annotation): Measurement | null {
  const kind = MEASUREMENT_KINDS[annotation.metadata?.toolName ?? ""];
  const points = (annotation.data as { handles?: { points?: Types.Point3[] } }).handles?.points;
  if (!kind || !annotation.annotationUID || !points?.length) return null;
  return {
    id: annotation.annotationUID,
    tool: kind,
    viewport: 0,
    frameOfReferenceUID: annotation.metadata?.FrameOfReferenceUID ?? null,
    points: points.map((p) => [p[0], p[1], p[2]]),
    label: measurementLabel(kind, annotation),
  };
}

function samePoints(a: Types.Point3[], b: [number, number, number][]): boolean {
  return a.length === b.length && a.every((p, i) => p.every((x, j) => Math.abs(x - b[i][j]) < 1e-6));
}

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
  /** The second viewport (compare), its stage, overlay and series chooser. */
  private readonly element2: HTMLDivElement;
  private readonly mainStage: HTMLElement;
  private readonly compareStage: HTMLElement;
  private readonly compareOverlay = {
    series: h("div", { class: "ov-series" }),
    position: h("div", { class: "ov-position", "data-testid": "compare-position" }),
  };
  private readonly compareStatus = h("div", { class: "viewer-status", hidden: true });
  private readonly compareSelect: HTMLSelectElement;
  private readonly viewportId2: string;
  private readonly toolGroupId2: string;
  private compareLoaded: LoadedSeries | null = null;
  private compareOpening: string | null = null;
  private compareEnabled = false;
  private compareShown: number | null = null;
  private catalog: SeriesInfo[] = [];
  private readonly studySeries = new Map<string, Promise<SeriesInfo[]>>();
  /** The viewport the scroll keys act on (local; shared as `active` while driving). */
  private activeViewport: 0 | 1 = 0;
  private readonly overlay = {
    series: h("div", { class: "ov-series" }),
    position: h("div", { class: "ov-position", "data-testid": "image-position" }),
    window: h("div", { class: "ov-window", "data-testid": "window-level" }),
    zoom: h("div", { class: "ov-zoom" }),
  };
  private readonly slider: HTMLInputElement;
  private readonly laser = h("div", { class: "laser", hidden: true, "data-testid": "laser" });
  /** The main viewport's load order, preview and load status. */
  private readonly frames: StackLoading;
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
  private readonly cineButton: HTMLButtonElement;
  private readonly fpsInput: HTMLInputElement;
  private readonly invertButton: HTMLButtonElement;
  private readonly flipButtons: { h: HTMLButtonElement; v: HTMLButtonElement };
  /** The file's own windows beyond its first (MR, X-ray: often several). */
  private readonly filePresets = h("span", { class: "toolgroup file-presets" });
  private readonly measureList = h("ul", { class: "measure-list", "data-testid": "measurements" });
  private readonly helpOverlay: HTMLElement;
  private cineTimer: number | undefined;
  private cineRate = 0;
  /** Annotation UIDs that are (or were) shared measurements on this viewport. */
  private readonly syncedMeasurements = new Set<string>();
  /** Set while this viewer adds or removes annotations itself (no echo into the store). */
  private applyingMeasurements = false;

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
    this.viewportId2 = `${this.viewportId}-compare`;
    this.toolGroupId2 = `${this.toolGroupId}-compare`;
    this.element2 = h("div", { class: "viewport-host", tabindex: "0", "data-testid": "viewport-compare" });
    this.element2.addEventListener("contextmenu", (e) => e.preventDefault());
    this.compareSelect = h("select", { class: "compare-select", "aria-label": strings.compareWith, title: strings.compareWith, "data-testid": "compare-series" });
    this.compareSelect.addEventListener("change", () => this.chooseCompare(this.compareSelect.value));
    this.syncBar = h("div", { class: "sync-bar", "data-testid": "sync-bar" });
    this.frames = new StackLoading(session, {
      viewport: () => this.viewport(),
      opening: () => this.loading !== null,
      changed: () => this.render(this.store.state),
    });

    const tools = h("div", { class: "toolgroup", role: "group", "aria-label": strings.leftButtonTool });
    const measureTools = h("div", { class: "toolgroup", role: "group", "aria-label": strings.measureTools });
    for (const tool of [...VIEW_TOOLS, ...MEASURE_TOOLS]) {
      const button = h(
        "button",
        {
          type: "button",
          class: "tool",
          "data-tool": tool,
          title: `${TOOL_LABELS[tool]} (${TOOL_KEYS[tool].toUpperCase()})`,
          onclick: () => this.setLeftTool(tool),
        },
        TOOL_LABELS[tool],
      );
      this.toolButtons.set(tool, button);
      (MEASURE_TOOLS.includes(tool) ? measureTools : tools).append(button);
    }
    const act = (label: string, key: string, testid: string, onclick: () => void, text: string = label) =>
      h("button", { type: "button", class: "tool", title: `${label} (${key})`, "aria-label": label, "data-testid": testid, onclick }, text);
    this.flipButtons = {
      h: act(strings.flipHorizontal, "H", "flip-h", () => this.store.dispatch({ type: "flip", axis: "h" })),
      v: act(strings.flipVertical, "V", "flip-v", () => this.store.dispatch({ type: "flip", axis: "v" })),
    };
    this.invertButton = act(strings.invert, "I", "invert", () => this.store.dispatch({ type: "invert" }));
    const transform = h(
      "div",
      { class: "toolgroup", role: "group", "aria-label": strings.transform },
      act(strings.rotateLeft, "[", "rotate-left", () => this.store.dispatch({ type: "rotate", degrees: -90 }), "⟲"),
      act(strings.rotateRight, "]", "rotate-right", () => this.store.dispatch({ type: "rotate", degrees: 90 }), "⟳"),
      this.flipButtons.h,
      this.flipButtons.v,
      this.invertButton,
    );
    this.cineButton = act(strings.cinePlay, "Space", "cine", () => this.toggleCine(), "▶");
    this.fpsInput = h("input", {
      type: "number",
      class: "cine-fps",
      min: String(MIN_CINE_FPS),
      max: String(MAX_CINE_FPS),
      step: "1",
      value: String(this.store.state.cineFps),
      title: strings.cineFps,
      "aria-label": strings.cineFps,
      "data-testid": "cine-fps",
    });
    this.fpsInput.addEventListener("change", () => {
      const fps = Number(this.fpsInput.value);
      if (Number.isFinite(fps) && this.fpsInput.value !== "") this.store.dispatch({ type: "cine", fps });
      this.render(this.store.state);
    });
    const cine = h("div", { class: "toolgroup cine", role: "group" }, this.cineButton, this.fpsInput, h("span", { class: "muted" }, strings.fpsUnit));
    this.helpOverlay = h(
      "div",
      { class: "viewer-help-overlay", hidden: true, "data-testid": "help", role: "dialog", "aria-label": strings.help },
      h("h3", {}, strings.help),
      h("dl", {}, strings.shortcuts.flatMap(([keys, what]) => [h("dt", {}, keys), h("dd", {}, what)])),
      h("button", { type: "button", onclick: () => this.toggleHelp(false) }, strings.closeHelp),
    );
    const helpButton = act(strings.help, "?", "help-button", () => this.toggleHelp(), "?");
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
      this.filePresets,
    );
    const reset = h(
      "button",
      { type: "button", class: "reset", title: `${strings.reset} (R)`, onclick: () => this.store.dispatch({ type: "reset" }) },
      strings.reset,
    );

    this.el = h(
      "section",
      { class: "viewer", "data-testid": "viewer", "data-rendered": "0" },
      h("div", { class: "viewer-toolbar" }, tools, measureTools, presets, transform, cine, this.compareSelect, reset, helpButton, this.syncBar),
      h(
        "div",
        { class: "viewer-stages" },
        (this.mainStage = h(
          "div",
          { class: "viewer-stage" },
          this.element,
          this.frames.preview.el,
          h("div", { class: "viewer-overlay" }, this.overlay.series, this.overlay.position, this.overlay.window, this.overlay.zoom,
            this.frames.status, this.frames.progress, this.laser),
          this.status,
          this.helpOverlay,
        )),
        (this.compareStage = h(
          "div",
          { class: "viewer-stage compare-stage", hidden: true, "data-testid": "compare", "data-rendered": "0" },
          this.element2,
          h("div", { class: "viewer-overlay" }, this.compareOverlay.series, this.compareOverlay.position),
          this.compareStatus,
        )),
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
      this.measureList,
      h("p", { class: "viewer-help" }, strings.viewerHelp),
    );
    // Viewer keys work wherever the focus is, except where the user types or chooses.
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement | null;
      if (target?.closest?.("input, textarea, select, [contenteditable=true]")) return;
      // Space on a focused button or link is that control's.
      if (e.key === " " && target?.closest?.("button, a, [role=button]")) return;
      if (!this.el.isConnected) return;
      this.onKey(e);
    };
    document.addEventListener("keydown", onKey);
    this.cleanups.push(() => document.removeEventListener("keydown", onKey));
    this.element2.addEventListener("pointerdown", () => {
      this.setActiveViewport(1);
      this.element2.focus({ preventScroll: true });
    });
    this.element.addEventListener("pointerdown", () => {
      this.setActiveViewport(0);
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
    this.cleanups.push(() => window.clearInterval(this.cineTimer));
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
    // Measurement tools stay passive when not on the left button: their annotations are
    // drawn and can be moved or selected.
    for (const tool of MEASURE_TOOLS) group.setToolPassive(TOOL_NAMES[tool]);
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
      this.frames.displayed(e.detail.imageIdIndex, e.detail.image);
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
      this.frames.place();
      this.render(this.store.state);
    });
    on(Events.IMAGE_RENDERED, () => {
      if (this.viewport()?.getCurrentImageId()) this.el.dataset.rendered = "1";
      this.render(this.store.state);
    });

    // Measurements drawn, moved or deleted here become state (and go to the room when
    // driving); the ones this viewer adds from the state are not echoed back.
    const onAnnotation = (type: string, fn: (detail: { annotation?: Annotation; changeType?: string }) => void) => {
      const listener = ((e: CustomEvent) => {
        if (this.disposed || this.applyingMeasurements || !e.detail?.annotation) return;
        const a = e.detail.annotation as Annotation;
        if (!MEASUREMENT_KINDS[a.metadata?.toolName ?? ""]) return;
        const element = (e.detail as { element?: Element }).element;
        const viewportId = (e.detail as { viewportId?: string }).viewportId;
        if ((element && element !== this.element) || (viewportId && viewportId !== this.viewportId)) return;
        fn(e.detail);
      }) as EventListener;
      eventTarget.addEventListener(type, listener);
      this.cleanups.push(() => eventTarget.removeEventListener(type, listener));
    };
    const take = (annotation: Annotation) => {
      const m = measurementOf(annotation);
      if (!m) return;
      this.syncedMeasurements.add(m.id);
      this.store.dispatch({ type: "measurement", measurement: m });
    };
    onAnnotation(ToolEnums.Events.ANNOTATION_COMPLETED, ({ annotation }) => take(annotation!));
    onAnnotation(ToolEnums.Events.ANNOTATION_MODIFIED, ({ annotation, changeType }) => {
      const id = annotation!.annotationUID ?? "";
      const known = this.store.state.measurements.find((m) => m.id === id);
      if (!known) return; // still being drawn: taken when completed
      if (this.pointerDown) return take(annotation!); // moved by this user
      // Stats computed after the drawing: the label, from the screen that drew it.
      const mine = this.store.isDriving || !this.store.following || !this.store.shared;
      if (mine && changeType === ToolEnums.ChangeTypes.StatsUpdated) {
        const label = measurementOf(annotation!)?.label;
        if (label && label !== known.label) this.store.dispatch({ type: "measurement", measurement: { ...known, label } });
      }
    });
    onAnnotation(ToolEnums.Events.ANNOTATION_REMOVED, ({ annotation }) => {
      const id = annotation!.annotationUID ?? "";
      this.syncedMeasurements.delete(id);
      this.store.dispatch({ type: "removeMeasurement", id });
    });

    this.resizeObserver = new ResizeObserver(() => {
      if (!this.disposed) this.resized();
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
      // The state's slice is requested (and previewed) before anything else of the series.
      this.frames.open(loaded.imageIds);
      this.frames.show(this.store.state);
      await viewport.setStack(loaded.imageIds, this.store.state.imageIndex);
      if (superseded()) return;
      this.applyView(this.store.state, null); // the state may have moved on meanwhile
      viewport.render();
      this.renderCompareChoices();
      void this.fillCompareChoicesFromStudy();
      this.renderPresetsFor(loaded);
      this.applyCompare(this.store.state);
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
      this.updateCine(this.store.state);
      this.render(this.store.state);
    }
  }

  /**
   * The series the compare chooser offers (the case's studies, e.g. with a prior study).
   * Without it, the chooser offers the series of the study on screen.
   */
  setCatalog(series: SeriesInfo[]): void {
    this.catalog = series.slice();
    for (const s of series) {
      if (!this.studySeries.has(s.studyUID)) {
        this.studySeries.set(s.studyUID, Promise.resolve(series.filter((x) => x.studyUID === s.studyUID)));
      }
    }
    this.renderCompareChoices();
  }

  private seriesOf(studyUID: string): Promise<SeriesInfo[]> {
    let listed = this.studySeries.get(studyUID);
    if (!listed) {
      listed = listSeries(this.session, studyUID);
      listed.catch(() => this.studySeries.delete(studyUID));
      this.studySeries.set(studyUID, listed);
    }
    return listed;
  }

  private renderCompareChoices(): void {
    const state = this.store.state;
    const options = this.catalog.length
      ? this.catalog
      : [...(this.loaded ? [this.loaded.series] : []), ...(this.compareLoaded ? [this.compareLoaded.series] : [])];
    const seen = new Set<string>();
    const value = state.compare ? `${state.compare.studyUID}|${state.compare.seriesUID}` : "";
    this.compareSelect.replaceChildren(
      h("option", { value: "" }, strings.compareOff),
      ...options
        .filter((s) => !seen.has(s.seriesUID) && seen.add(s.seriesUID))
        .map((s) =>
          h(
            "option",
            { value: `${s.studyUID}|${s.seriesUID}`, selected: value === `${s.studyUID}|${s.seriesUID}` },
            strings.seriesLabel(s.number, s.description, s.instanceCount),
          ),
        ),
    );
    this.compareSelect.value = value;
  }

  /**
   * CT presets for CT only; for every modality, the windows the file itself carries (its
   * first is "Default"), as MR and X-ray workstations offer them.
   */
  private renderPresetsFor(loaded: LoadedSeries): void {
    const modality = loaded.series.modality.toUpperCase();
    const ct = modality === "" || modality === "CT";
    for (const button of this.presetButtons.values()) button.style.display = ct ? "" : "none";
    const imageId = loaded.imageIds[Math.min(this.store.state.imageIndex, loaded.imageIds.length - 1)];
    const voi = imageId
      ? (csMetaData.get("voiLutModule", imageId) as { windowCenter?: number | number[]; windowWidth?: number | number[] } | undefined)
      : undefined;
    const list = (v: number | number[] | undefined) => (Array.isArray(v) ? v : v === undefined ? [] : [v]);
    const centers = list(voi?.windowCenter);
    const widths = list(voi?.windowWidth);
    const windows = centers
      .map((center, i) => ({ center: Number(center), width: Number(widths[i]) }))
      .filter((w) => Number.isFinite(w.center) && Number.isFinite(w.width) && w.width > 0);
    this.filePresets.replaceChildren(
      ...windows.slice(1, 6).map((w, i) =>
        h(
          "button",
          {
            type: "button",
            class: "preset",
            "data-preset": `file-${i + 2}`,
            title: strings.presetFileTitle(w.width, w.center),
            onclick: () => this.store.dispatch({ type: "voi", voi: w }),
          },
          strings.presetFile(i + 2),
        ),
      ),
    );
  }

  /** Lists the study on screen for the chooser when no catalog was given. */
  private async fillCompareChoicesFromStudy(): Promise<void> {
    const studyUID = this.store.state.studyUID;
    if (this.catalog.length || !studyUID) return;
    try {
      const series = await this.seriesOf(studyUID);
      if (!this.catalog.length && !this.disposed) {
        this.catalog = series;
        this.renderCompareChoices();
      }
    } catch {
      // the chooser keeps what it has
    }
  }

  private chooseCompare(value: string): void {
    if (!value) {
      this.store.dispatch({ type: "compare", compare: null });
      this.setActiveViewport(0);
      return;
    }
    const [studyUID, seriesUID] = value.split("|");
    const series = this.catalog.find((s) => s.seriesUID === seriesUID);
    this.store.dispatch({
      type: "compare",
      compare: { studyUID, seriesUID, imageCount: series?.instanceCount ?? 1 },
    });
  }

  private setActiveViewport(viewport: 0 | 1, share = true): void {
    const active = viewport === 1 && this.store.state.compare ? 1 : 0;
    this.activeViewport = active;
    this.mainStage.classList.toggle("active", active === 0 && this.store.state.compare !== null);
    this.compareStage.classList.toggle("active", active === 1);
    if (share && this.store.isDriving) this.store.dispatch({ type: "active", viewport: active });
  }

  private compareViewport(): StackViewport | null {
    if (!this.compareEnabled) return null;
    return (this.engine?.getViewport(this.viewportId2) as StackViewport | undefined) ?? null;
  }

  /** The second viewport, created when first needed (it has a size only when shown). */
  private ensureCompareViewport(): StackViewport | null {
    if (this.compareEnabled) return this.compareViewport();
    if (!this.engine) return null;
    this.engine.enableElement({
      viewportId: this.viewportId2,
      type: CoreEnums.ViewportType.STACK,
      element: this.element2,
      defaultOptions: { background: [0, 0, 0] as Types.Point3 },
    });
    this.compareEnabled = true;
    const group = ToolGroupManager.createToolGroup(this.toolGroupId2);
    if (group) {
      for (const tool of [StackScrollTool, WindowLevelTool, PanTool, ZoomTool]) group.addTool(tool.toolName);
      group.addViewport(this.viewportId2, this.engineId);
      group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
      group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
      group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
      group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
    }
    const on = <T extends Event>(type: string, fn: (e: T) => void) => {
      const listener = fn as EventListener;
      this.element2.addEventListener(type, listener);
      this.cleanups.push(() => this.element2.removeEventListener(type, listener));
    };
    on<CustomEvent<Types.EventTypes.StackViewportScrollEventDetail>>(Events.STACK_VIEWPORT_SCROLL, (e) => {
      if (!this.compareOpening) this.store.dispatch({ type: "compareIndex", index: e.detail.newImageIdIndex });
    });
    on<CustomEvent<Types.EventTypes.StackNewImageEventDetail>>(Events.STACK_NEW_IMAGE, (e) => {
      this.compareShown = e.detail.imageIdIndex;
      this.render(this.store.state);
    });
    on(Events.IMAGE_RENDERED, () => {
      if (this.compareViewport()?.getCurrentImageId()) this.compareStage.dataset.rendered = "1";
    });
    this.resizeObserver?.observe(this.element2);
    return this.compareViewport();
  }

  /**
   * A viewport changed size (window, or the compare view opening or closing): the camera is
   * fitted again to the state's presentation (zoom 1 is "fit" on every size).
   */
  private resized(): void {
    const engine = getRenderingEngine(this.engineId);
    if (!engine) return;
    engine.resize(true, true);
    const viewport = this.viewport();
    if (viewport && this.loaded && !this.loading) {
      const camera = this.store.state.camera;
      if (camera) {
        viewport.setViewPresentation({
          zoom: camera.zoom,
          pan: camera.pan as Types.Point2,
          rotation: camera.rotation,
          flipHorizontal: camera.flipHorizontal,
          flipVertical: camera.flipVertical,
        });
      } else {
        viewport.resetCamera();
      }
      viewport.render();
    }
    const compare = this.compareViewport();
    if (compare && this.compareLoaded) {
      compare.resetCamera();
      compare.render();
    }
  }

  /** The state's compare view on the second viewport: shown or hidden, series, image. */
  private applyCompare(state: ViewerState): void {
    const c = state.compare;
    const wasHidden = this.compareStage.hidden;
    this.compareStage.hidden = c === null;
    this.el.classList.toggle("comparing", c !== null);
    if (wasHidden !== this.compareStage.hidden) {
      this.resized();
      this.setActiveViewport(c ? this.activeViewport : 0, false);
    }
    if (!c || !this.engine) return;
    if (this.compareLoaded?.series.seriesUID !== c.seriesUID) {
      if (this.compareOpening !== c.seriesUID) void this.openCompare(c.studyUID, c.seriesUID);
      return;
    }
    if (this.compareOpening) return;
    const viewport = this.compareViewport();
    const index = Math.min(c.imageIndex, this.compareLoaded.imageIds.length - 1);
    if (viewport && viewport.getTargetImageIdIndex() !== index) {
      void viewport.setImageIdIndex(index).catch(() => undefined);
    }
  }

  private async openCompare(studyUID: string, seriesUID: string): Promise<void> {
    this.compareOpening = seriesUID;
    this.compareStage.dataset.rendered = "0";
    this.compareShown = null;
    this.compareStatus.textContent = strings.viewerLoading;
    this.compareStatus.hidden = false;
    const stillWanted = () => !this.disposed && this.compareOpening === seriesUID;
    try {
      const listed = await this.seriesOf(studyUID).catch(() => [] as SeriesInfo[]);
      const series: SeriesInfo = listed.find((s) => s.seriesUID === seriesUID) ?? {
        studyUID, seriesUID, number: null, modality: "", description: "", instanceCount: 0,
      };
      const loaded = await loadSeries(this.session, series, location.origin);
      if (!stillWanted()) return;
      for (let i = 0; i < loaded.imageIds.length; i++) {
        wadors.metaDataManager.add(loaded.imageIds[i], loaded.instances[i] as never);
      }
      const viewport = this.ensureCompareViewport();
      if (!viewport) return;
      this.compareLoaded = loaded;
      this.store.dispatch({ type: "compare", compare: { studyUID, seriesUID, imageCount: loaded.imageIds.length } });
      const index = Math.min(this.store.state.compare?.imageIndex ?? 0, loaded.imageIds.length - 1);
      await viewport.setStack(loaded.imageIds, Math.max(0, index));
      if (!stillWanted()) return;
      viewport.render();
      this.compareStatus.hidden = true;
    } catch (err) {
      if (!stillWanted()) return;
      this.compareStatus.textContent = strings.viewerLoadFailed(err instanceof Error ? err.message : String(err));
      this.compareStatus.hidden = false;
    } finally {
      if (this.compareOpening === seriesUID) this.compareOpening = null;
      this.renderCompareChoices();
      this.applyCompare(this.store.state); // the state may have moved on meanwhile
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
    // Cornerstone keeps annotations page-wide: the room's go with its viewer.
    this.applyingMeasurements = true;
    for (const id of this.syncedMeasurements) {
      try {
        if (csAnnotation.state.getAnnotation(id)) csAnnotation.state.removeAnnotation(id);
      } catch {
        // already gone
      }
    }
    this.syncedMeasurements.clear();
    this.resizeObserver?.disconnect();
    for (const cleanup of this.cleanups) cleanup();
    this.cleanups = [];
    this.frames.dispose();
    ToolGroupManager.destroyToolGroup(this.toolGroupId);
    if (this.compareEnabled) ToolGroupManager.destroyToolGroup(this.toolGroupId2);
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
    this.updateCine(state);
    this.applyCompare(state);
    if (state.compare !== previous.compare) this.renderCompareChoices();
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
    this.frames.show(state);
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
    // After the window: resetProperties (back to the file's window) clears invert too.
    if (Boolean(viewport.getProperties().invert) !== state.invert) {
      viewport.setProperties({ invert: state.invert });
    }
    this.applyMeasurements(state);
  }

  /** Shared measurements ↔ Cornerstone annotations on this viewport: add, move, remove. */
  private applyMeasurements(state: ViewerState): void {
    const viewport = this.viewport();
    if (!viewport || !this.loaded) return;
    const wanted = new Map(state.measurements.filter((m) => m.viewport === 0).map((m) => [m.id, m]));
    let changed = false;
    this.applyingMeasurements = true;
    try {
      for (const id of [...this.syncedMeasurements]) {
        if (wanted.has(id)) continue;
        this.syncedMeasurements.delete(id);
        if (csAnnotation.state.getAnnotation(id)) {
          csAnnotation.state.removeAnnotation(id);
          changed = true;
        }
      }
      for (const m of wanted.values()) {
        this.syncedMeasurements.add(m.id);
        const existing = csAnnotation.state.getAnnotation(m.id);
        if (existing) {
          const handles = (existing.data as { handles: { points: Types.Point3[] } }).handles;
          if (!samePoints(handles.points, m.points)) {
            handles.points = m.points.map((p) => [...p] as Types.Point3);
            existing.invalidated = true;
            changed = true;
          }
          continue;
        }
        const Tool = MEASUREMENT_TOOLS[m.tool];
        if (!Tool) continue; // an arrow from another client: not drawn here
        // Drawn only on a series in its frame of reference (it comes back with one).
        const frame = viewport.getFrameOfReferenceUID();
        if (m.frameOfReferenceUID && frame && m.frameOfReferenceUID !== frame) continue;
        Tool.hydrate(this.viewportId, m.points.map((p) => [...p] as Types.Point3), { annotationUID: m.id });
        const added = csAnnotation.state.getAnnotation(m.id);
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
      this.applyingMeasurements = false;
    }
    if (changed) toolUtilities.triggerAnnotationRenderForViewportIds([this.viewportId]);
  }

  /** Cine: the driver (or a screen on its own) steps the state; a follower plays locally at
   * the shared rate and is re-aligned by each shared image index it receives. */
  private updateCine(state: ViewerState): void {
    const play =
      state.cinePlaying &&
      !this.disposed &&
      this.loaded !== null &&
      this.loading === null &&
      state.seriesUID === this.loaded.series.seriesUID &&
      this.loaded.imageIds.length > 1;
    if (!play) {
      window.clearInterval(this.cineTimer);
      this.cineTimer = undefined;
      this.cineRate = 0;
      return;
    }
    if (this.cineTimer !== undefined && this.cineRate === state.cineFps) return;
    window.clearInterval(this.cineTimer);
    this.cineRate = state.cineFps;
    this.cineTimer = window.setInterval(() => this.cineStep(), 1000 / state.cineFps);
  }

  private cineStep(): void {
    const viewport = this.viewport();
    const count = this.loaded?.imageIds.length ?? 0;
    if (!viewport || count < 2) return;
    const followingRoom = !this.store.isDriving && this.store.following && this.store.shared !== null;
    if (followingRoom) {
      const next = (viewport.getTargetImageIdIndex() + 1) % count;
      void viewport.setImageIdIndex(next).catch(() => undefined);
    } else {
      this.store.dispatch({ type: "index", index: (this.store.state.imageIndex + 1) % count });
    }
  }

  private toggleCine(): void {
    this.store.dispatch({ type: "cine", playing: !this.store.state.cinePlaying });
  }

  private toggleHelp(show?: boolean): void {
    this.helpOverlay.hidden = !(show ?? this.helpOverlay.hidden);
  }

  /** Delete: the selected measurements, else the last one. */
  private deleteMeasurement(): void {
    const ids = new Set(this.store.state.measurements.map((m) => m.id));
    const selected = (csAnnotation.selection.getAnnotationsSelected() ?? []).filter((id) => ids.has(id));
    const last = this.store.state.measurements.at(-1)?.id;
    for (const id of selected.length ? selected : last ? [last] : []) {
      this.store.dispatch({ type: "removeMeasurement", id });
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
    // What is on the canvas; the slice status says when the state's slice is still coming.
    this.overlay.position.textContent = count ? strings.imagePosition(this.frames.onScreen ?? index, count) : "";
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
    // The camera as the viewport has it (what is on screen, not merely asked for).
    const camera = this.loaded ? this.readCamera() : null;
    const rotation = camera ? ((Math.round(camera.rotation) % 360) + 360) % 360 : 0;
    d.camera = camera
      ? `${camera.zoom.toFixed(2)},${camera.pan[0].toFixed(2)},${camera.pan[1].toFixed(2)},${rotation},${camera.flipHorizontal ? 1 : 0},${camera.flipVertical ? 1 : 0}`
      : "";
    d.rotation = String(rotation);
    d.flipH = String(camera?.flipHorizontal ?? false);
    d.flipV = String(camera?.flipVertical ?? false);
    const inverted = viewport && this.loaded ? Boolean(viewport.getProperties().invert) : state.invert;
    d.invert = String(inverted);
    d.cine = state.cinePlaying ? "playing" : "paused";
    d.cineFps = String(state.cineFps);
    d.measurements = String(state.measurements.length);
    const c = state.compare;
    d.compareSeriesUid = c?.seriesUID ?? "";
    d.compareIndex = c ? String(c.imageIndex) : "";
    d.compareShown = c && this.compareShown !== null ? String(this.compareShown) : "";
    d.active = String(this.activeViewport);
    this.frames.render(state, this.cineTimer !== undefined, d);
    const cs = this.compareLoaded?.series;
    this.compareOverlay.series.textContent = c && cs ? strings.seriesLabel(cs.number, cs.description, c.imageCount) : "";
    this.compareOverlay.position.textContent = c && c.imageCount ? strings.imagePosition(c.imageIndex, c.imageCount) : "";
    this.invertButton.setAttribute("aria-pressed", String(state.invert));
    this.flipButtons.h.setAttribute("aria-pressed", String(state.camera?.flipHorizontal ?? false));
    this.flipButtons.v.setAttribute("aria-pressed", String(state.camera?.flipVertical ?? false));
    this.cineButton.textContent = state.cinePlaying ? "⏸" : "▶";
    this.cineButton.title = `${state.cinePlaying ? strings.cinePause : strings.cinePlay} (Space)`;
    this.cineButton.setAttribute("aria-label", state.cinePlaying ? strings.cinePause : strings.cinePlay);
    this.cineButton.setAttribute("aria-pressed", String(state.cinePlaying));
    if (document.activeElement !== this.fpsInput) this.fpsInput.value = String(state.cineFps);
    this.renderMeasurements(state);
  }

  private renderedMeasurements = "";

  private renderMeasurements(state: ViewerState): void {
    const key = JSON.stringify(state.measurements.map((m) => [m.id, m.label]));
    if (key === this.renderedMeasurements) return;
    this.renderedMeasurements = key;
    const kind: Record<MeasurementTool, string> = {
      length: strings.toolLength,
      angle: strings.toolAngle,
      roi: strings.toolRoi,
      arrow: "→",
    };
    this.measureList.replaceChildren(
      ...state.measurements.map((m) =>
        h(
          "li",
          { class: "measure", "data-testid": "measurement", "data-id": m.id, "data-tool": m.tool },
          h("span", { class: "measure-kind" }, kind[m.tool]),
          h("span", { class: "measure-label", "data-testid": "measurement-label" }, m.label || "…"),
          h(
            "button",
            {
              type: "button",
              class: "link",
              title: strings.deleteMeasurement,
              "aria-label": strings.deleteMeasurement,
              "data-testid": "delete-measurement",
              onclick: () => this.store.dispatch({ type: "removeMeasurement", id: m.id }),
            },
            "×",
          ),
        ),
      ),
    );
    this.measureList.hidden = state.measurements.length === 0;
  }

  private markTool(): void {
    for (const [tool, button] of this.toolButtons) button.setAttribute("aria-pressed", String(tool === this.leftTool));
  }

  private onKey(e: KeyboardEvent): void {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const compare = this.activeViewport === 1 ? this.store.state.compare : null;
    const count = compare ? compare.imageCount : this.store.state.imageCount;
    const page = Math.max(1, Math.round(count / 10));
    // Scroll keys act on the active viewport (the compare view once clicked).
    const scroll = (delta: number) =>
      compare
        ? this.store.dispatch({ type: "compareIndex", index: compare.imageIndex + delta })
        : this.store.dispatch({ type: "scroll", delta });
    const goTo = (index: number) =>
      this.store.dispatch(compare ? { type: "compareIndex", index } : { type: "index", index });
    const actions: Record<string, () => void> = {
      ArrowUp: () => scroll(-1),
      ArrowLeft: () => scroll(-1),
      ArrowDown: () => scroll(1),
      ArrowRight: () => scroll(1),
      PageUp: () => scroll(-page),
      PageDown: () => scroll(page),
      Home: () => goTo(0),
      End: () => goTo(count - 1),
      "0": () => this.store.dispatch({ type: "voi", voi: null }),
      r: () => this.store.dispatch({ type: "reset" }),
      R: () => this.store.dispatch({ type: "reset" }),
      "[": () => this.store.dispatch({ type: "rotate", degrees: -90 }),
      "]": () => this.store.dispatch({ type: "rotate", degrees: 90 }),
      h: () => this.store.dispatch({ type: "flip", axis: "h" }),
      v: () => this.store.dispatch({ type: "flip", axis: "v" }),
      i: () => this.store.dispatch({ type: "invert" }),
      " ": () => this.toggleCine(),
      "+": () => this.store.dispatch({ type: "cine", fps: this.store.state.cineFps + 5 }),
      "=": () => this.store.dispatch({ type: "cine", fps: this.store.state.cineFps + 5 }),
      "-": () => this.store.dispatch({ type: "cine", fps: this.store.state.cineFps - 5 }),
      Delete: () => this.deleteMeasurement(),
      Backspace: () => this.deleteMeasurement(),
      "?": () => this.toggleHelp(),
    };
    if (!this.helpOverlay.hidden) actions.Escape = () => this.toggleHelp(false);
    for (const tool of [...VIEW_TOOLS, ...MEASURE_TOOLS]) actions[TOOL_KEYS[tool]] = () => this.setLeftTool(tool);
    PRESET_ORDER.forEach((preset, i) => {
      actions[String(i + 1)] = () => this.store.dispatch({ type: "preset", preset });
    });
    const action = actions[e.key];
    if (!action) return;
    e.preventDefault();
    action();
  }
}

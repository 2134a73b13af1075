/**
 * The stack viewer: two viewports (viewport.ts: the main one, and the compare view in
 * compare.ts), the toolbar and keys (toolbar.ts, keys.ts, from the tool table in tools.ts),
 * the measurements (measurements.ts), cine (cine.ts), and the series and frames loading
 * (loading.ts, stackLoading.ts), put together and driven by the ViewerStore.
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

import { h } from "../dom";
import type { Session } from "../session";
import { strings } from "../strings";
import { Cine, cineStep } from "./cine";
import { CompareView } from "./compare";
import { loadSeries, type ImageRef, type SeriesInfo } from "./dicomweb";
import { canvasPoint, CornerstoneEngine, annotations, fileVoiModule, imagePoint, onImagePlane, registerMetadata, voiFromRange } from "./engine";
import { keyImageMark, type KeyImageMark } from "./keyImage";
import { initCornerstone } from "./cornerstone";
import { keyCommand, type Command } from "./keys";
import { Latest } from "./loading";
import { MeasurementList } from "./measurementList";
import { Laser, trackPointer } from "./pointer";
import type { ViewerState } from "./state";
import type { ViewerStore } from "./store";
import { StackLoading } from "./stackLoading";
import { fileWindows, Toolbar } from "./toolbar";
import { DEFAULT_TOOL, type LeftTool } from "./tools";
import { Viewport } from "./viewport";

let viewerCount = 0;

export class StackViewer {
  readonly el: HTMLElement;
  /** Where the room page shows who drives and the follow / control buttons. */
  readonly syncBar = h("div", { class: "sync-bar", "data-testid": "sync-bar" });
  private readonly id = ++viewerCount;
  private readonly engineId = `hoichan-engine-${this.id}`;
  private readonly main: Viewport;
  private readonly compare: CompareView;
  private readonly mainStage: HTMLElement;
  private readonly overlay = {
    series: h("div", { class: "ov-series" }),
    position: h("div", { class: "ov-position", "data-testid": "image-position" }),
    window: h("div", { class: "ov-window", "data-testid": "window-level" }),
    zoom: h("div", { class: "ov-zoom" }),
  };
  private readonly status = h("div", { class: "viewer-status" }, strings.viewerEmpty);
  private readonly slider: HTMLInputElement;
  private readonly laser = new Laser();
  private readonly helpOverlay: HTMLElement;
  private readonly toolbar: Toolbar;
  private readonly measureList: MeasurementList;
  /** The main viewport's load order, preview and load status. */
  private readonly frames: StackLoading;
  private readonly opening = new Latest();
  /** The main viewport's series on its way (its stack not yet set). */
  private loading: Promise<void> | null = null;
  /** The viewport the scroll keys act on (local; shared as `active` while driving). */
  private activeViewport: 0 | 1 = 0;
  private leftTool: LeftTool = DEFAULT_TOOL;
  private engine: CornerstoneEngine | null = null;
  private disposed = false;
  private resizeObserver: ResizeObserver | null = null;
  private cleanups: (() => void)[] = [];
  private readonly cine = new Cine(() => this.cineStep());

  constructor(
    private readonly session: Session,
    private readonly store: ViewerStore,
  ) {
    const render = () => this.render(this.store.state);
    this.main = new Viewport(
      { index: 0, viewportId: `hoichan-stack-${this.id}`, toolGroupId: `hoichan-tools-${this.id}`, testid: "viewport" },
      store,
      {
        // The scroll tool (wheel) announces its target at once; the new image comes when it
        // is on screen, possibly an older target: it only updates what is displayed.
        scrolled: (index) => {
          if (!this.loading) this.store.dispatch({ type: "index", index });
        },
        newImage: (index, image) => {
          this.main.shown = index;
          this.frames.displayed(index, image);
          render();
        },
        voiModified: (range) => {
          if (this.main.pointerDown && range) this.store.dispatch({ type: "voi", voi: voiFromRange(range) });
          render();
        },
        cameraModified: () => {
          if (this.main.pointerDown) this.store.dispatch({ type: "camera", camera: this.main.camera() });
          this.frames.place();
          render();
        },
        rendered: () => {
          if (this.main.stack?.getCurrentImageId()) this.el.dataset.rendered = "1";
          render();
        },
      },
      annotations,
      () => this.setActiveViewport(0),
    );
    this.compare = new CompareView(session, store, { viewportId: `hoichan-stack-${this.id}-compare`, toolGroupId: `hoichan-tools-${this.id}-compare` }, {
      engine: () => this.engine,
      leftTool: () => this.leftTool,
      mainSeries: () => this.main.loaded?.series ?? null,
      toggled: (shown) => {
        this.el.classList.toggle("comparing", shown);
        this.resized();
        this.setActiveViewport(shown ? this.activeViewport : 0, false);
      },
      enabled: (element) => this.resizeObserver?.observe(element),
      pressed: () => this.setActiveViewport(1),
      changed: render,
    });
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
    this.frames = new StackLoading(session, {
      viewport: () => this.main.stack,
      opening: () => this.loading !== null,
      changed: render,
    });
    this.toolbar = new Toolbar((command) => this.run(command), {
      compareSelect: this.compare.select,
      syncBar: this.syncBar,
      fps: store.state.cineFps,
      fpsSettled: render,
    });
    this.measureList = new MeasurementList((id) => this.store.dispatch({ type: "removeMeasurement", id }));
    this.helpOverlay = h(
      "div",
      { class: "viewer-help-overlay", hidden: true, "data-testid": "help", role: "dialog", "aria-label": strings.help },
      h("h3", {}, strings.help),
      h("dl", {}, strings.shortcuts.flatMap(([keys, what]) => [h("dt", {}, keys), h("dd", {}, what)])),
      h("button", { type: "button", onclick: () => this.toggleHelp(false) }, strings.closeHelp),
    );

    this.el = h(
      "section",
      { class: "viewer", "data-testid": "viewer", "data-rendered": "0" },
      this.toolbar.el,
      h(
        "div",
        { class: "viewer-stages" },
        (this.mainStage = h(
          "div",
          { class: "viewer-stage" },
          this.main.element,
          this.frames.preview.el,
          h("div", { class: "viewer-overlay" }, this.overlay.series, this.overlay.position, this.overlay.window, this.overlay.zoom,
            this.frames.status, this.frames.progress, this.laser.el),
          this.status,
          this.helpOverlay,
        )),
        this.compare.stage,
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
      this.measureList.el,
      h("p", { class: "viewer-help" }, strings.viewerHelp),
    );
    // Viewer keys work wherever the focus is, except where the user types or chooses.
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement | null;
      if (target?.closest?.("input, textarea, select, [contenteditable=true]")) return;
      // Space on a focused button or link is that control's.
      if (e.key === " " && target?.closest?.("button, a, [role=button]")) return;
      if (!this.el.isConnected || e.altKey || e.ctrlKey || e.metaKey) return;
      const command = keyCommand(e.key, { state: this.store.state, active: this.activeViewport, helpShown: !this.helpOverlay.hidden });
      if (!command) return;
      e.preventDefault();
      this.run(command);
    };
    document.addEventListener("keydown", onKey);
    this.cleanups.push(() => document.removeEventListener("keydown", onKey));
    this.cleanups.push(this.store.subscribe((state, previous) => this.apply(state, previous)));
    this.cleanups.push(() => this.cine.stop(), () => this.laser.dispose());
    this.render(this.store.state);
  }

  /** Call once the element is in the document (the viewport needs its size). */
  async mount(): Promise<void> {
    await initCornerstone(this.session);
    if (this.disposed) return;
    const engine = (this.engine = new CornerstoneEngine(this.engineId));
    this.main.enable(engine, this.leftTool);
    this.resizeObserver = new ResizeObserver(() => {
      if (!this.disposed) this.resized();
    });
    this.resizeObserver.observe(this.main.element);
  }

  get series(): SeriesInfo | null {
    return this.main.loaded?.series ?? null;
  }

  /** Length of the loaded stack, if `seriesUID` is the one loaded. */
  imageCount(seriesUID: string): number | null {
    const loaded = this.main.loaded;
    return loaded && loaded.series.seriesUID === seriesUID ? loaded.imageIds.length : null;
  }

  /** The instance and frame of each image of a loaded series (either viewport), in stack order. */
  imageRefs(seriesUID: string): readonly ImageRef[] | null {
    return [this.main.loaded, this.compare.viewport.loaded].find((l) => l?.series.seriesUID === seriesUID)?.refs ?? null;
  }

  /** Shows the (first frame of the) instance of the loaded series, a key image. */
  showInstance(sopUID: string): void {
    const index = this.main.loaded?.refs.findIndex((r) => r.sopUID === sopUID) ?? -1;
    if (index >= 0) this.store.dispatch({ type: "index", index });
  }

  /** The main viewport's image, with the lengths drawn on it, as a key image; null: none shown. */
  keyImage(): KeyImageMark | null {
    const loaded = this.main.loaded;
    const imageId = this.main.stack?.getCurrentImageId();
    const ref = loaded && imageId ? loaded.refs[loaded.imageIds.indexOf(imageId)] : undefined;
    if (!loaded || !imageId || !ref) return null;
    return keyImageMark(
      { studyUID: loaded.series.studyUID, seriesUID: loaded.series.seriesUID, sopUID: ref.sopUID, frame: ref.frame },
      this.store.state.measurements,
      (world) => onImagePlane(imageId, world),
    );
  }

  /** A pointer position as a fraction of the displayed image; null off the image. */
  imagePoint(clientX: number, clientY: number): [number, number] | null {
    const stack = this.main.stack;
    return stack ? imagePoint(stack, this.main.element, clientX, clientY) : null;
  }

  /** The laser pointer of the one who drives, at a fraction of the image; null hides it. */
  showPointer(point: [number, number] | null): void {
    const stack = this.main.stack;
    this.laser.show(point, point && stack ? canvasPoint(stack, point) : null, this.el.dataset);
  }

  /** Where pointer moves over the image go (the room sends them while this screen drives). */
  onPointer(listener: (point: [number, number] | null) => void): void {
    this.cleanups.push(trackPointer(this.main.element, (x, y) => this.imagePoint(x, y), listener));
  }

  /**
   * Loads a series (metadata, image ids) and shows it at the store's state when the store
   * already points at this series (restored or shared), else at its middle image.
   */
  async open(series: SeriesInfo): Promise<void> {
    const stack = this.main.stack;
    if (!stack) throw new Error("viewer not mounted");
    this.status.textContent = strings.viewerLoading;
    this.status.hidden = false;
    this.el.dataset.rendered = "0";
    this.main.shown = null;
    const superseded = this.opening.begin();
    const run = (async () => {
      const loaded = await loadSeries(this.session, series, location.origin);
      if (superseded()) return;
      registerMetadata(loaded);
      this.main.loaded = loaded;
      this.store.dispatch({
        type: "series",
        studyUID: series.studyUID,
        seriesUID: series.seriesUID,
        imageCount: loaded.imageIds.length,
      });
      // The state's slice is requested (and previewed) before anything else of the series.
      this.frames.open(loaded.imageIds);
      this.frames.show(this.store.state);
      if (!(await this.main.show(this.store.state.imageIndex, superseded))) return;
      this.applyView(this.store.state, null); // the state may have moved on meanwhile
      stack.render();
      this.compare.renderChoices();
      void this.compare.offerStudy(this.store.state.studyUID);
      this.renderPresets();
      this.compare.apply(this.store.state);
    })();
    this.loading = run;
    try {
      await run;
      if (!superseded()) this.status.hidden = true;
    } catch (err) {
      if (superseded()) return;
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
    this.compare.setCatalog(series);
  }

  setLeftTool(tool: LeftTool): void {
    if (tool === this.leftTool) return;
    for (const viewport of [this.main, this.compare.viewport]) viewport.setLeftTool(this.leftTool, tool);
    this.leftTool = tool;
    this.toolbar.render(this.store.state, tool);
  }

  focus(): void {
    this.main.element.focus({ preventScroll: true });
  }

  dispose(): void {
    this.disposed = true;
    this.opening.stop();
    this.main.dispose();
    this.compare.dispose();
    this.resizeObserver?.disconnect();
    for (const cleanup of this.cleanups) cleanup();
    this.cleanups = [];
    this.frames.dispose();
    this.engine?.destroy();
    this.engine = null;
  }

  private run(command: Command): void {
    switch (command.kind) {
      case "dispatch":
        this.store.dispatch(command.action);
        return;
      case "tool":
        return this.setLeftTool(command.tool);
      case "cine":
        this.store.dispatch({ type: "cine", playing: !this.store.state.cinePlaying });
        return;
      case "help":
        return this.toggleHelp(command.show);
      case "deleteMeasurement":
        return this.deleteMeasurement();
    }
  }

  private toggleHelp(show?: boolean): void {
    this.helpOverlay.hidden = !(show ?? this.helpOverlay.hidden);
  }

  /** Delete: the selected measurements, else the last one. */
  private deleteMeasurement(): void {
    const ids = new Set(this.store.state.measurements.map((m) => m.id));
    const selected = annotations.selected().filter((id) => ids.has(id));
    const last = this.store.state.measurements.at(-1)?.id;
    for (const id of selected.length ? selected : last ? [last] : []) {
      this.store.dispatch({ type: "removeMeasurement", id });
    }
  }

  /**
   * CT presets for CT only; for every modality, the windows the file itself carries (its
   * first is "Default"), as MR and X-ray workstations offer them.
   */
  private renderPresets(): void {
    const loaded = this.main.loaded;
    if (!loaded) return;
    const modality = loaded.series.modality.toUpperCase();
    const imageId = loaded.imageIds[Math.min(this.store.state.imageIndex, loaded.imageIds.length - 1)];
    this.toolbar.setPresets(modality === "" || modality === "CT", fileWindows(imageId ? fileVoiModule(imageId) : undefined));
  }

  private setActiveViewport(viewport: 0 | 1, share = true): void {
    const active = viewport === 1 && this.store.state.compare ? 1 : 0;
    this.activeViewport = active;
    this.mainStage.classList.toggle("active", active === 0 && this.store.state.compare !== null);
    this.compare.stage.classList.toggle("active", active === 1);
    if (share && this.store.isDriving) this.store.dispatch({ type: "active", viewport: active });
  }

  /**
   * A viewport changed size (window, or the compare view opening or closing): the camera is
   * fitted again to the state's presentation (zoom 1 is "fit" on every size).
   */
  private resized(): void {
    if (!this.engine) return;
    this.engine.resize();
    const main = this.main.stack;
    if (main && this.main.loaded && !this.loading) {
      this.main.setCamera(this.store.state.camera);
      main.render();
    }
    this.compare.fit();
  }

  /** The store changed: bring the viewports to it (unless they are there already). */
  private apply(state: ViewerState, previous: ViewerState): void {
    const stack = this.main.stack;
    this.updateCine(state);
    this.compare.apply(state);
    if (state.compare !== previous.compare) this.compare.renderChoices();
    const loaded = this.main.loaded;
    // Another series: the room page opens it.
    if (stack && loaded && !this.loading && state.seriesUID === loaded.series.seriesUID) {
      this.applyView(state, previous);
      stack.render();
    }
    this.render(state);
  }

  private applyView(state: ViewerState, previous: ViewerState | null): void {
    if (!this.main.stack) return;
    this.frames.show(state);
    this.main.applyView(state, previous);
    this.main.applyMeasurements(state);
  }

  private updateCine(state: ViewerState): void {
    const loaded = this.main.loaded;
    this.cine.update(
      state.cinePlaying &&
        !this.disposed &&
        loaded !== null &&
        this.loading === null &&
        state.seriesUID === loaded.series.seriesUID &&
        loaded.imageIds.length > 1,
      state.cineFps,
    );
  }

  private cineStep(): void {
    const stack = this.main.stack;
    const count = this.main.loaded?.imageIds.length ?? 0;
    if (!stack || count < 2) return;
    const next = cineStep(this.store, stack.getTargetImageIdIndex(), count);
    if (next.shared) this.store.dispatch({ type: "index", index: next.index });
    else void stack.setImageIdIndex(next.index).catch(() => undefined);
  }

  /** Overlay, slider, buttons and the data attributes the tests read. */
  private render(state: ViewerState): void {
    const stack = this.main.stack;
    const loaded = this.main.loaded;
    const count = state.imageCount;
    const index = state.imageIndex;
    this.slider.max = String(Math.max(0, count - 1));
    this.slider.value = String(index);
    this.slider.disabled = count <= 1;
    // What is on the canvas; the slice status says when the state's slice is still coming.
    this.overlay.position.textContent = count ? strings.imagePosition(this.frames.onScreen ?? index, count) : "";
    const range = stack && loaded ? stack.getProperties().voiRange : undefined;
    const shown = range ? voiFromRange(range) : state.voi;
    this.overlay.window.textContent = shown ? strings.windowLevel(shown.width, shown.center) : "";
    // The camera as the viewport has it (what is on screen, not merely asked for).
    const camera = loaded ? this.main.camera() : null;
    this.overlay.zoom.textContent = camera?.zoom ? strings.zoomLabel(camera.zoom) : "";
    const series = loaded?.series;
    this.overlay.series.textContent = series ? strings.seriesLabel(series.number, series.description, count) : "";
    const d = this.el.dataset;
    d.seriesUid = state.seriesUID ?? "";
    d.imageIndex = String(index);
    d.imageCount = String(count);
    d.shownIndex = this.main.shown === null ? "" : String(this.main.shown);
    d.voi = shown ? `${Math.round(shown.center)},${Math.round(shown.width)}` : "";
    d.preset = state.preset ?? "";
    const rotation = camera ? ((Math.round(camera.rotation) % 360) + 360) % 360 : 0;
    d.camera = camera
      ? `${camera.zoom.toFixed(2)},${camera.pan[0].toFixed(2)},${camera.pan[1].toFixed(2)},${rotation},${camera.flipHorizontal ? 1 : 0},${camera.flipVertical ? 1 : 0}`
      : "";
    d.rotation = String(rotation);
    d.flipH = String(camera?.flipHorizontal ?? false);
    d.flipV = String(camera?.flipVertical ?? false);
    const inverted = stack && loaded ? Boolean(stack.getProperties().invert) : state.invert;
    d.invert = String(inverted);
    d.cine = state.cinePlaying ? "playing" : "paused";
    d.cineFps = String(state.cineFps);
    d.measurements = String(state.measurements.length);
    this.compare.render(state, d);
    d.active = String(this.activeViewport);
    this.frames.render(state, this.cine.playing, d);
    this.toolbar.render(state, this.leftTool);
    this.measureList.render(state);
  }
}

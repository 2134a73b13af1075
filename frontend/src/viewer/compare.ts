/**
 * The compare view: a second series (typically a prior study) on the second viewport, with
 * its chooser. Its scrolling is shared (`compare` in the state); its window and camera are its
 * own, not state.
 */

import { h } from "../dom";
import type { Session } from "../session";
import { strings } from "../strings";
import { listSeries, loadSeries, type SeriesInfo } from "./dicomweb";
import { annotations, registerMetadata } from "./engine";
import { SeriesCatalog } from "./loading";
import type { ViewerState } from "./state";
import type { ViewerStore } from "./store";
import type { LeftTool } from "./tools";
import { Viewport, type ViewportEngine } from "./viewport";

export interface CompareHost {
  engine(): ViewportEngine | null;
  leftTool(): LeftTool;
  /** The series on the main viewport (offered when there is no catalog). */
  mainSeries(): SeriesInfo | null;
  /** The compare view was shown or hidden: the viewports changed size. */
  toggled(shown: boolean): void;
  /** Its element has a size now, to be observed like the main one's. */
  enabled(element: HTMLElement): void;
  /** A pointer went down on it. */
  pressed(): void;
  /** Something its overlay or the viewer's data attributes show changed. */
  changed(): void;
}

export class CompareView {
  readonly viewport: Viewport;
  readonly stage: HTMLElement;
  readonly select: HTMLSelectElement;
  private readonly overlay = {
    series: h("div", { class: "ov-series" }),
    position: h("div", { class: "ov-position", "data-testid": "compare-position" }),
  };
  private readonly status = h("div", { class: "viewer-status", hidden: true });
  private readonly catalog: SeriesCatalog;
  /** The series on its way. */
  private opening: string | null = null;
  private disposed = false;

  constructor(
    private readonly session: Session,
    private readonly store: ViewerStore,
    ids: { viewportId: string; toolGroupId: string },
    private readonly host: CompareHost,
  ) {
    this.catalog = new SeriesCatalog((studyUID) => listSeries(session, studyUID));
    this.viewport = new Viewport(
      { index: 1, ...ids, testid: "viewport-compare" },
      store,
      {
        scrolled: (index) => {
          if (!this.opening) this.store.dispatch({ type: "compareIndex", index });
        },
        newImage: (index) => {
          this.viewport.shown = index;
          host.changed();
        },
        voiModified: () => undefined,
        cameraModified: () => undefined,
        rendered: () => {
          if (this.viewport.stack?.getCurrentImageId()) this.stage.dataset.rendered = "1";
        },
      },
      annotations,
      () => host.pressed(),
    );
    this.select = h("select", { class: "compare-select", "aria-label": strings.compareWith, title: strings.compareWith, "data-testid": "compare-series" });
    this.select.addEventListener("change", () => this.choose(this.select.value));
    this.stage = h(
      "div",
      { class: "viewer-stage compare-stage", hidden: true, "data-testid": "compare", "data-rendered": "0" },
      this.viewport.element,
      h("div", { class: "viewer-overlay" }, this.overlay.series, this.overlay.position),
      this.status,
    );
  }

  /** The series to offer: the case's studies, e.g. with a prior study. */
  setCatalog(series: SeriesInfo[]): void {
    this.catalog.set(series);
    this.renderChoices();
  }

  /** Without a catalog, the series of the study on screen are offered. */
  async offerStudy(studyUID: string | null): Promise<void> {
    if (!studyUID) return;
    try {
      if ((await this.catalog.offerStudy(studyUID)) && !this.disposed) this.renderChoices();
    } catch {
      // the chooser keeps what it has
    }
  }

  renderChoices(): void {
    const state = this.store.state;
    const value = state.compare ? `${state.compare.studyUID}|${state.compare.seriesUID}` : "";
    this.select.replaceChildren(
      h("option", { value: "" }, strings.compareOff),
      ...this.catalog.choices([this.host.mainSeries(), this.viewport.loaded?.series]).map((s) =>
        h(
          "option",
          { value: `${s.studyUID}|${s.seriesUID}`, selected: value === `${s.studyUID}|${s.seriesUID}` },
          strings.seriesLabel(s.number, s.description, s.instanceCount),
        ),
      ),
    );
    this.select.value = value;
  }

  /** The state's compare view: shown or hidden, series, image, measurements. */
  apply(state: ViewerState): void {
    const c = state.compare;
    const wasHidden = this.stage.hidden;
    this.stage.hidden = c === null;
    if (wasHidden !== this.stage.hidden) this.host.toggled(c !== null);
    if (!c || !this.host.engine()) return;
    if (this.viewport.loaded?.series.seriesUID !== c.seriesUID) {
      if (this.opening !== c.seriesUID) void this.open(c.studyUID, c.seriesUID);
      return;
    }
    if (this.opening) return;
    this.viewport.go(c.imageIndex);
    this.viewport.applyMeasurements(state);
  }

  /** The viewports changed size: fitted again (its camera is not shared). */
  fit(): void {
    const stack = this.viewport.stack;
    if (!stack || !this.viewport.loaded) return;
    stack.resetCamera();
    stack.render();
  }

  /** Its overlay, and the data attributes the tests read. */
  render(state: ViewerState, d: DOMStringMap): void {
    const c = state.compare;
    d.compareSeriesUid = c?.seriesUID ?? "";
    d.compareIndex = c ? String(c.imageIndex) : "";
    d.compareShown = c && this.viewport.shown !== null ? String(this.viewport.shown) : "";
    const series = this.viewport.loaded?.series;
    this.overlay.series.textContent = c && series ? strings.seriesLabel(series.number, series.description, c.imageCount) : "";
    this.overlay.position.textContent = c && c.imageCount ? strings.imagePosition(c.imageIndex, c.imageCount) : "";
  }

  dispose(): void {
    this.disposed = true;
    this.viewport.dispose();
  }

  private choose(value: string): void {
    if (!value) {
      this.store.dispatch({ type: "compare", compare: null });
      return;
    }
    const [studyUID, seriesUID] = value.split("|");
    const series = this.catalog.series.find((s) => s.seriesUID === seriesUID);
    this.store.dispatch({
      type: "compare",
      compare: { studyUID, seriesUID, imageCount: series?.instanceCount ?? 1 },
    });
  }

  /** The second viewport, enabled when first needed (it has a size only when shown). */
  private enable(): boolean {
    if (this.viewport.enabled) return true;
    const engine = this.host.engine();
    if (!engine) return false;
    this.viewport.enable(engine, this.host.leftTool());
    this.host.enabled(this.viewport.element);
    return true;
  }

  private async open(studyUID: string, seriesUID: string): Promise<void> {
    this.opening = seriesUID;
    this.stage.dataset.rendered = "0";
    this.viewport.shown = null;
    this.status.textContent = strings.viewerLoading;
    this.status.hidden = false;
    const superseded = () => this.disposed || this.opening !== seriesUID;
    try {
      const series = await this.catalog.find(studyUID, seriesUID);
      const loaded = await loadSeries(this.session, series, location.origin);
      if (superseded()) return;
      registerMetadata(loaded);
      if (!this.enable()) return;
      this.viewport.loaded = loaded;
      this.store.dispatch({ type: "compare", compare: { studyUID, seriesUID, imageCount: loaded.imageIds.length } });
      if (!(await this.viewport.show(this.store.state.compare?.imageIndex ?? 0, superseded))) return;
      this.viewport.stack?.render();
      this.status.hidden = true;
    } catch (err) {
      if (superseded()) return;
      this.status.textContent = strings.viewerLoadFailed(err instanceof Error ? err.message : String(err));
      this.status.hidden = false;
    } finally {
      if (this.opening === seriesUID) this.opening = null;
      this.renderChoices();
      this.apply(this.store.state); // the state may have moved on meanwhile
      this.host.changed();
    }
  }
}

/**
 * The main viewport's frames on their way: the load order (frameLoader.ts), the preview over
 * the canvas while the wanted slice's frame is coming (preview.ts), and what the overlay says
 * about it: "Loading slice 251…", preview or full quality, "312 / 500 loaded".
 *
 * A slice the state asks for goes on screen only once its frame is in the cache, so the
 * viewport requests none of them itself, and the loader's order holds; the viewport still
 * loads what the wheel scroll tool and the follower's cine ask of it directly.
 */

import { metaData, type StackViewport, type Types, utilities as csUtilities } from "@cornerstonejs/core";

import { h } from "../dom";
import type { Session } from "../session";
import { strings } from "../strings";
import { FrameLoader } from "./frameLoader";
import { cornerTransform, PREVIEW_SIDE, SlicePreview, type Point } from "./preview";
import { sliceStatus, type SliceStatus } from "./sliceStatus";
import type { ViewerState } from "./state";

export interface LoadingHost {
  viewport(): StackViewport | null;
  /** Opening a series: its setStack puts the wanted slice on screen itself. */
  opening(): boolean;
  /** Something the overlay shows changed. */
  changed(): void;
}

export class StackLoading {
  readonly status = h("div", { class: "ov-slice", "data-testid": "slice-status", hidden: true });
  readonly progress = h("div", { class: "ov-progress", "data-testid": "load-progress", hidden: true });
  readonly preview: SlicePreview;
  private frames: FrameLoader | null = null;
  /** The slice whose lossless frame is on the canvas, and its transfer syntax. */
  private shown: number | null = null;
  private shownSyntax = "";

  constructor(
    session: Session,
    private readonly host: LoadingHost,
  ) {
    this.preview = new SlicePreview(session, (imageId, w, h) => this.placement(imageId, w, h), () => host.changed());
  }

  /** The slice the canvas shows: its preview, else its lossless frame. */
  get onScreen(): number | null {
    return this.preview.index ?? this.shown;
  }

  /** A series opens: its frames load from now on, the state's slice first. */
  open(imageIds: string[]): void {
    this.frames?.dispose();
    this.preview.clear();
    this.shown = null;
    this.shownSyntax = "";
    this.frames = new FrameLoader(imageIds, { ready: (i) => this.ready(i), changed: () => this.host.changed() });
  }

  /** The state's slice: on screen now if loaded, else when its frame comes (a preview
   * meanwhile, where it pays). */
  show(state: ViewerState): void {
    const frames = this.frames;
    const index = state.imageIndex;
    if (!frames || index < 0 || index >= frames.total) return;
    frames.want(index);
    if (frames.isLoaded(index) || this.shown === index) return;
    const imageId = frames.imageIds[index];
    if (this.worthPreview(imageId)) this.preview.request({ index, imageId, voi: state.voi, invert: state.invert });
  }

  /** STACK_NEW_IMAGE: a lossless frame is on the canvas. */
  displayed(index: number, image: Types.IImage | undefined): void {
    this.shown = index;
    this.shownSyntax = (image as { transferSyntaxUID?: string } | undefined)?.transferSyntaxUID ?? "";
    this.frames?.displayed(index);
    if (index === this.frames?.wanted) this.preview.clear();
  }

  /** The camera or the viewport's size changed. */
  place(): void {
    this.preview.place();
  }

  /** The overlay's status and progress, and the data attributes the tests read. */
  render(state: ViewerState, playing: boolean, d: DOMStringMap): void {
    const frames = this.frames;
    const status = frames
      ? sliceStatus({
          wanted: state.imageIndex,
          shown: this.shown,
          preview: this.preview.index,
          failed: frames.wanted === state.imageIndex && frames.wantedFailed,
          playing,
        })
      : null;
    this.status.hidden = status === null;
    this.status.textContent = status ? statusText(status) : "";
    this.status.dataset.quality = status?.quality ?? "";
    const loaded = frames?.loaded ?? 0;
    const total = frames?.total ?? 0;
    this.progress.hidden = !frames || loaded >= total;
    this.progress.textContent = frames ? strings.framesLoaded(loaded, total) : "";
    d.quality = status?.quality ?? "";
    d.loaded = String(loaded);
    d.loadTotal = String(total);
    d.previewIndex = this.preview.index === null ? "" : String(this.preview.index);
    d.transferSyntax = this.shownSyntax;
  }

  dispose(): void {
    this.frames?.dispose();
    this.frames = null;
    this.preview.clear();
  }

  private ready(index: number): void {
    const viewport = this.host.viewport();
    if (!viewport || this.host.opening() || viewport.getTargetImageIdIndex() === index) return;
    void viewport.setImageIdIndex(index).catch(() => undefined);
  }

  /** Not for images no larger than the preview: their frame is small anyway. */
  private worthPreview(imageId: string): boolean {
    const pixel = metaData.get("imagePixelModule", imageId) as { rows?: number; columns?: number } | undefined;
    return Math.max(pixel?.rows ?? 0, pixel?.columns ?? 0) > PREVIEW_SIDE;
  }

  /** The preview on the canvas where the slice's frame will be: its corners through the
   * viewport's camera. Fitted while nothing is on screen to line it up with. */
  private placement(imageId: string, w: number, h: number): string | null {
    const viewport = this.host.viewport();
    const plane = metaData.get("imagePlaneModule", imageId) as { rows?: number; columns?: number } | undefined;
    if (!viewport || this.shown === null || !plane?.rows || !plane.columns) return null;
    const corner = (col: number, row: number): Point => {
      const world = csUtilities.imageToWorldCoords(imageId, [col, row] as Types.Point2);
      const [x, y] = viewport.worldToCanvas(world as Types.Point3);
      return [x, y];
    };
    try {
      return cornerTransform(corner(0, 0), corner(plane.columns, 0), corner(0, plane.rows), w, h);
    } catch {
      return null; // no geometry for this image: fitted
    }
  }
}

function statusText(status: SliceStatus): string {
  switch (status.quality) {
    case "loading":
      return strings.sliceLoading(status.index);
    case "preview":
      return strings.slicePreview;
    case "failed":
      return strings.sliceFailed(status.index);
    case "full":
      return strings.sliceFull;
  }
}

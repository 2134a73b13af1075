/**
 * A first look at a slice whose lossless frame is still on the way: the server's rendered
 * JPEG of it (a few kB against the frame's hundreds), laid over the canvas where the slice
 * will be drawn, until the frame itself is on screen. Asked only where it pays: after
 * PREVIEW_DELAY_MS without the frame (on a fast link the frame comes first and nothing
 * flickers), and for images larger than the preview.
 */

import { h } from "../dom";
import type { Session } from "../session";
import type { Voi } from "./state";

/** The preview's longest side in pixels, and its JPEG quality: small, for weak links. */
export const PREVIEW_SIDE = 256;
export const PREVIEW_QUALITY = 70;
export const PREVIEW_DELAY_MS = 150;

/** `.../frames/{n}/rendered` (PS3.18 10.4.1.1.3) of a `wadors:` image id, in the window the
 * viewer shows (none: the file's own, as the viewport uses too). */
export function renderedUrl(imageId: string, voi: Voi | null, side = PREVIEW_SIDE, quality = PREVIEW_QUALITY): string {
  const params = new URLSearchParams({ viewport: `${side},${side}`, quality: String(quality) });
  if (voi) params.set("window", `${voi.center},${voi.width}`);
  return `${imageId.replace(/^wadors:/, "")}/rendered?${params}`;
}

export type Point = [number, number];

/**
 * The CSS transform (origin at the top left) that puts a w×h picture's corners on the canvas
 * points of the image's top-left, top-right and bottom-left corners: zoom, pan, rotation and
 * flips of the viewport's camera all at once.
 */
export function cornerTransform(topLeft: Point, topRight: Point, bottomLeft: Point, w: number, h: number): string {
  const a = (topRight[0] - topLeft[0]) / w;
  const b = (topRight[1] - topLeft[1]) / w;
  const c = (bottomLeft[0] - topLeft[0]) / h;
  const d = (bottomLeft[1] - topLeft[1]) / h;
  return `matrix(${a}, ${b}, ${c}, ${d}, ${topLeft[0]}, ${topLeft[1]})`;
}

export interface PreviewRequest {
  index: number;
  imageId: string;
  voi: Voi | null;
  invert: boolean;
}

/** Where a preview of `imageId` goes: a transform for a w×h picture, or null to fit it in
 * the viewport (nothing on screen yet to line it up with). */
export type Placement = (imageId: string, w: number, h: number) => string | null;

export class SlicePreview {
  readonly el = h("img", { class: "slice-preview", alt: "", hidden: true, "data-testid": "slice-preview" });
  private wanted: PreviewRequest | null = null;
  private shownIndex: number | null = null;
  private timer: number | undefined;
  private abort: AbortController | null = null;
  private url: string | null = null;

  constructor(
    private readonly session: Session,
    private readonly placement: Placement,
    private readonly changed: () => void,
  ) {}

  /** The slice whose preview is on screen. */
  get index(): number | null {
    return this.shownIndex;
  }

  /** A preview of `request`'s slice, unless cleared or superseded before it is due. */
  request(request: PreviewRequest): void {
    if (this.wanted?.imageId === request.imageId) return;
    this.clear();
    this.wanted = request;
    this.timer = window.setTimeout(() => void this.fetch(request), PREVIEW_DELAY_MS);
  }

  /** The lossless frame is on screen, or the slice is no longer wanted. */
  clear(): void {
    window.clearTimeout(this.timer);
    this.abort?.abort();
    this.abort = null;
    this.wanted = null;
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = null;
    this.el.removeAttribute("src");
    if (this.shownIndex !== null) {
      this.el.hidden = true;
      this.shownIndex = null;
      this.changed();
    }
  }

  /** Lines the preview up with the canvas again (the camera or the size changed). */
  place(): void {
    const r = this.wanted;
    const { naturalWidth: w, naturalHeight: h } = this.el;
    if (!r || !w || !h) return;
    const transform = this.placement(r.imageId, w, h);
    this.el.classList.toggle("fit", transform === null);
    this.el.style.width = transform === null ? "" : `${w}px`;
    this.el.style.height = transform === null ? "" : `${h}px`;
    this.el.style.transform = transform ?? "";
  }

  private async fetch(request: PreviewRequest): Promise<void> {
    const abort = (this.abort = new AbortController());
    try {
      const response = await this.session.fetch(renderedUrl(request.imageId, request.voi), {
        headers: { Accept: "image/jpeg" },
        signal: abort.signal,
      });
      if (!response.ok || this.wanted !== request) return;
      const url = URL.createObjectURL(await response.blob());
      if (this.wanted !== request) return URL.revokeObjectURL(url);
      this.url = url;
      this.el.src = url;
      await this.el.decode();
      if (this.wanted !== request) return;
      this.el.style.filter = request.invert ? "invert(1)" : "";
      this.place();
      this.el.hidden = false;
      this.shownIndex = request.index;
      this.changed();
    } catch {
      // aborted, or no preview to be had: the frame itself follows
    }
  }
}

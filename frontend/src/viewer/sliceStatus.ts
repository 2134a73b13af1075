/**
 * What the viewer says about its slice, so that a stale slice is never passed off as the
 * wanted one (in a room: the one in control's): while the wanted slice is still coming the
 * viewer says so, whatever older slice its canvas still holds.
 */

export type SliceQuality = "loading" | "preview" | "full" | "failed";

export interface SliceStatus {
  quality: SliceQuality;
  /** The slice the status is about (0-based): the wanted one, or during cine the shown one. */
  index: number;
}

export interface SliceStatusInput {
  /** The slice the state asks for; null before a series is open. */
  wanted: number | null;
  /** The slice whose lossless frame is on the canvas. */
  shown: number | null;
  /** The slice whose preview covers the canvas. */
  preview: number | null;
  /** The wanted slice's last request failed. */
  failed: boolean;
  /** Cine: the viewer steps through loaded frames itself, each shown one is its choice. */
  playing: boolean;
}

export function sliceStatus(s: SliceStatusInput): SliceStatus | null {
  if (s.wanted === null) return null;
  if (s.playing && s.shown !== null) return { quality: "full", index: s.shown };
  if (s.shown === s.wanted) return { quality: "full", index: s.wanted };
  if (s.failed) return { quality: "failed", index: s.wanted };
  if (s.preview === s.wanted) return { quality: "preview", index: s.wanted };
  return { quality: "loading", index: s.wanted };
}

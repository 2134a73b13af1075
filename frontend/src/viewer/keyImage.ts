/**
 * A key image as the minutes keep it (docs/api.md "Key images"): the frame shown in the main
 * viewport, and the lengths measured on it in image pixel coordinates (column, row), which
 * the server writes into a TID 1500 SR on the source image. Nothing here knows Cornerstone:
 * the viewer hands in how a world point lands on the image.
 */

import type { Measurement, Point3 } from "./state";

export interface KeyLength {
  kind: "length";
  points: [[number, number], [number, number]];
  length_mm: number;
  label: string;
}

export interface KeyImageMark {
  study_instance_uid: string;
  series_instance_uid: string;
  sop_instance_uid: string;
  frame: number;
  caption: string;
  measurements: KeyLength[];
}

export interface ShownImage {
  studyUID: string;
  seriesUID: string;
  sopUID: string;
  frame: number;
}

/** The millimetres a length tool's label states ("42.3 mm"); null when it states none. */
export function lengthMm(label: string): number | null {
  const match = /(\d+(?:[.,]\d+)?)\s*mm\b/.exec(label);
  return match ? Number(match[1].replace(",", ".")) : null;
}

/**
 * The mark for the image shown: its lengths of the main viewport whose both ends lie on this
 * image (`onImage` is null for a point off its plane), each with the length the drawing
 * screen computed.
 */
export function keyImageMark(
  shown: ShownImage,
  measurements: readonly Measurement[],
  onImage: (world: Point3) => [number, number] | null,
): KeyImageMark {
  const lengths: KeyLength[] = [];
  for (const m of measurements) {
    if (m.viewport !== 0 || m.tool !== "length" || m.points.length !== 2) continue;
    const ends = m.points.map(onImage);
    const mm = lengthMm(m.label);
    if (ends[0] && ends[1] && mm !== null) {
      lengths.push({ kind: "length", points: [ends[0], ends[1]], length_mm: mm, label: "" });
    }
  }
  return {
    study_instance_uid: shown.studyUID,
    series_instance_uid: shown.seriesUID,
    sop_instance_uid: shown.sopUID,
    frame: shown.frame,
    caption: "",
    measurements: lengths,
  };
}

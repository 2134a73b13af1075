/**
 * The viewer state as the room channel carries it (`viewer:state`, docs/signaling.md, "The
 * synchronized viewer"): one or two viewports (the second compares a prior study), window as
 * centre/width, camera relative to the display, cine, and the measurements in world
 * coordinates (mm) with their frame of reference. Each viewport names its image by instance
 * and frame (`sop_uid`, `frame`), the index only a hint: screens need not sort a series alike.
 * The types are generated from signaling/schemas.py (../wire/protocol.ts); this file maps
 * them to and from the viewer's state.
 */

import type { ViewerStateIn, Viewport } from "../wire/protocol";
import type { ImageRef } from "./dicomweb";
import {
  DEFAULT_CINE_FPS,
  EMPTY_STATE,
  normalizeMeasurement,
  reduce,
  type Camera,
  type Measurement,
  type Point3,
  type ViewerState,
} from "./state";

/** The images of a series this screen has loaded, in stack order; null when not loaded. */
export type SeriesImages = (seriesUID: string) => readonly ImageRef[] | null;

const NO_IMAGES: SeriesImages = () => null;

function wireViewport(
  studyUID: string | null,
  seriesUID: string | null,
  imageIndex: number,
  state: ViewerState | null,
  images: SeriesImages,
): Viewport {
  const camera = state?.camera;
  // The image by its instance and frame; the index is only a hint (another screen's sort).
  const image = seriesUID ? images(seriesUID)?.[imageIndex] : undefined;
  return {
    study_uid: studyUID,
    series_uid: seriesUID,
    sop_uid: image?.sopUID ?? null,
    frame: image?.frame ?? 1,
    image_index: imageIndex,
    window_center: state?.voi?.center ?? null,
    window_width: state?.voi?.width ?? null,
    zoom: camera?.zoom ?? 1,
    pan: camera ? [camera.pan[0], camera.pan[1]] : [0, 0],
    rotation: camera?.rotation ?? 0,
    flip_h: camera?.flipHorizontal ?? false,
    flip_v: camera?.flipVertical ?? false,
    invert: state?.invert ?? false,
    cine_playing: state?.cinePlaying ?? false,
    cine_fps: state?.cineFps ?? DEFAULT_CINE_FPS,
  };
}

/**
 * What this client sends: the whole state (viewport 0, the compare view as viewport 1), each
 * image named by its instance and frame when `images` knows its series.
 */
export function toWire(state: ViewerState, images: SeriesImages = NO_IMAGES): ViewerStateIn {
  const main = wireViewport(state.studyUID, state.seriesUID, state.imageIndex, state, images);
  const c = state.compare;
  return {
    viewports: c ? [main, wireViewport(c.studyUID, c.seriesUID, c.imageIndex, null, images)] : [main],
    active: state.compare ? state.active : 0,
    measurements: state.measurements.flatMap((m) => {
      // The server takes 1-16 points; the state's measurements have them (normalizeMeasurement).
      const [first, ...rest] = m.points.map((p): Point3 => [p[0], p[1], p[2]]);
      if (!first) return [];
      return [{
        id: m.id,
        tool: m.tool,
        viewport: m.viewport,
        frame_of_reference_uid: m.frameOfReferenceUID,
        points: [first, ...rest],
        label: m.label,
      }];
    }),
  };
}

function wireCamera(vp: Viewport): Camera | null {
  const zoom = vp.zoom ?? 1;
  const fitted = zoom === 1 && (vp.pan?.[0] ?? 0) === 0 && (vp.pan?.[1] ?? 0) === 0 && !vp.rotation && !vp.flip_h && !vp.flip_v;
  if (fitted) return null;
  return {
    zoom,
    pan: [vp.pan?.[0] ?? 0, vp.pan?.[1] ?? 0],
    rotation: vp.rotation ?? 0,
    flipHorizontal: Boolean(vp.flip_h),
    flipVertical: Boolean(vp.flip_v),
  };
}

/**
 * Which image of the stack a viewport shows: the one with its instance and frame when this
 * screen has the series loaded and finds it there, else the index as sent (a hint).
 */
function wireIndex(vp: Viewport, images: SeriesImages): number {
  const stack = vp.series_uid && vp.sop_uid ? images(vp.series_uid) : null;
  if (stack) {
    const frame = vp.frame ?? 1;
    const found = stack.findIndex((r) => r.sopUID === vp.sop_uid && r.frame === frame);
    if (found >= 0) return found;
  }
  const hint = vp.image_index ?? 0;
  return Number.isFinite(hint) ? Math.max(0, Math.floor(hint)) : 0;
}

/**
 * A received state as this viewer's state. `imageCount` is the loaded series' length when
 * the state names the series on screen, and `images` its images, where the viewport's
 * instance and frame are looked up; otherwise the index is kept as sent and clamped once
 * the series is loaded (room/sync.ts then looks the image up again). Null when there is
 * nothing to show (no series).
 */
export function fromWire(
  wire: ViewerStateIn,
  imageCount: (seriesUID: string) => number | null,
  images: SeriesImages = NO_IMAGES,
): ViewerState | null {
  const vp = wire?.viewports?.[0];
  if (!vp || !vp.study_uid || !vp.series_uid) return null;
  const index = wireIndex(vp, images);
  const count = imageCount(vp.series_uid) ?? images(vp.series_uid)?.length ?? index + 1;
  let state = reduce(EMPTY_STATE, {
    type: "series",
    studyUID: vp.study_uid,
    seriesUID: vp.series_uid,
    imageCount: count,
    imageIndex: index,
  });
  if (typeof vp.window_center === "number" && typeof vp.window_width === "number") {
    state = reduce(state, { type: "voi", voi: { center: vp.window_center, width: vp.window_width } });
  }
  const camera = wireCamera(vp);
  if (camera) state = reduce(state, { type: "camera", camera });
  if (vp.invert === true) state = reduce(state, { type: "invert", invert: true });
  state = reduce(state, {
    type: "cine",
    playing: vp.cine_playing === true,
    fps: typeof vp.cine_fps === "number" ? vp.cine_fps : DEFAULT_CINE_FPS,
  });
  const second = wire.viewports[1];
  if (second?.study_uid && second.series_uid) {
    const i = wireIndex(second, images);
    state = reduce(state, {
      type: "compare",
      compare: {
        studyUID: second.study_uid,
        seriesUID: second.series_uid,
        imageCount: imageCount(second.series_uid) ?? images(second.series_uid)?.length ?? i + 1,
        imageIndex: i,
      },
    });
    if (wire.active === 1) state = reduce(state, { type: "active", viewport: 1 });
  }
  if (Array.isArray(wire.measurements)) {
    const measurements: Measurement[] = [];
    for (const m of wire.measurements) {
      const parsed = normalizeMeasurement({
        id: m?.id,
        tool: m?.tool,
        viewport: m?.viewport,
        frameOfReferenceUID: m?.frame_of_reference_uid ?? null,
        points: m?.points,
        label: m?.label,
      });
      if (parsed) measurements.push(parsed);
    }
    if (measurements.length) state = { ...state, measurements };
  }
  return state;
}

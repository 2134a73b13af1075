/**
 * The viewer state as the room channel carries it (`viewer:state`, docs/signaling.md, "The
 * synchronized viewer"): one or two viewports (the second compares a prior study), window as
 * centre/width, camera relative to the display, cine, and the measurements in world
 * coordinates (mm) with their frame of reference.
 */

import {
  DEFAULT_CINE_FPS,
  EMPTY_STATE,
  normalizeMeasurement,
  reduce,
  type Camera,
  type Measurement,
  type ViewerState,
} from "./state";

export interface WireViewport {
  study_uid?: string | null;
  series_uid?: string | null;
  image_index: number;
  window_center?: number | null;
  window_width?: number | null;
  zoom: number;
  pan: [number, number];
  rotation: number;
  flip_h: boolean;
  flip_v: boolean;
  invert: boolean;
  cine_playing: boolean;
  cine_fps: number;
}

export interface WireMeasurement {
  id: string;
  tool: "length" | "angle" | "roi" | "arrow";
  viewport: number;
  frame_of_reference_uid?: string | null;
  points: [number, number, number][];
  label: string;
}

export interface WireViewerState {
  viewports: WireViewport[];
  active: number;
  measurements: WireMeasurement[];
}

export interface SharedWire {
  seq: number;
  state: WireViewerState;
}

function wireViewport(
  studyUID: string | null,
  seriesUID: string | null,
  imageIndex: number,
  state: ViewerState | null,
): WireViewport {
  const camera = state?.camera;
  return {
    study_uid: studyUID,
    series_uid: seriesUID,
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

/** What this client sends: the whole state (viewport 0, the compare view as viewport 1). */
export function toWire(state: ViewerState): WireViewerState {
  const viewports = [wireViewport(state.studyUID, state.seriesUID, state.imageIndex, state)];
  if (state.compare) {
    viewports.push(wireViewport(state.compare.studyUID, state.compare.seriesUID, state.compare.imageIndex, null));
  }
  return {
    viewports,
    active: state.compare ? state.active : 0,
    measurements: state.measurements.map((m) => ({
      id: m.id,
      tool: m.tool,
      viewport: m.viewport,
      frame_of_reference_uid: m.frameOfReferenceUID,
      points: m.points.map((p) => [p[0], p[1], p[2]] as [number, number, number]),
      label: m.label,
    })),
  };
}

function wireCamera(vp: WireViewport): Camera | null {
  const fitted =
    vp.zoom === 1 && vp.pan?.[0] === 0 && vp.pan?.[1] === 0 && !vp.rotation && !vp.flip_h && !vp.flip_v;
  if (fitted) return null;
  return {
    zoom: vp.zoom,
    pan: [vp.pan?.[0] ?? 0, vp.pan?.[1] ?? 0],
    rotation: vp.rotation ?? 0,
    flipHorizontal: Boolean(vp.flip_h),
    flipVertical: Boolean(vp.flip_v),
  };
}

function wireIndex(vp: WireViewport): number {
  return Number.isFinite(vp.image_index) ? Math.max(0, Math.floor(vp.image_index)) : 0;
}

/**
 * A received state as this viewer's state. `imageCount` is the loaded series' length when
 * the state names the series on screen; otherwise the index is kept as sent and clamped once
 * the series is loaded. Null when there is nothing to show (no series).
 */
export function fromWire(wire: WireViewerState, imageCount: (seriesUID: string) => number | null): ViewerState | null {
  const vp = wire?.viewports?.[0];
  if (!vp || !vp.study_uid || !vp.series_uid) return null;
  const index = wireIndex(vp);
  const count = imageCount(vp.series_uid) ?? index + 1;
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
    const i = wireIndex(second);
    state = reduce(state, {
      type: "compare",
      compare: {
        studyUID: second.study_uid,
        seriesUID: second.series_uid,
        imageCount: imageCount(second.series_uid) ?? i + 1,
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

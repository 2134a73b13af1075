/**
 * The viewer state as the room channel carries it (`viewer:state`, docs/signaling.md, "The
 * synchronized viewer"): one or two viewports, window as centre/width, camera relative to the
 * display. This app drives viewport 0; the other fields keep their defaults.
 */

import { EMPTY_STATE, reduce, type ViewerState } from "./state";

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

export interface WireViewerState {
  viewports: WireViewport[];
  active: number;
  measurements: unknown[];
}

export interface SharedWire {
  seq: number;
  state: WireViewerState;
}

/** What this client sends: the whole state of viewport 0. */
export function toWire(state: ViewerState): WireViewerState {
  const camera = state.camera;
  return {
    viewports: [
      {
        study_uid: state.studyUID,
        series_uid: state.seriesUID,
        image_index: state.imageIndex,
        window_center: state.voi?.center ?? null,
        window_width: state.voi?.width ?? null,
        zoom: camera?.zoom ?? 1,
        pan: camera ? [camera.pan[0], camera.pan[1]] : [0, 0],
        rotation: camera?.rotation ?? 0,
        flip_h: camera?.flipHorizontal ?? false,
        flip_v: camera?.flipVertical ?? false,
        invert: false,
        cine_playing: false,
        cine_fps: 15,
      },
    ],
    active: 0,
    measurements: [],
  };
}

/**
 * A received state as this viewer's state. `imageCount` is the loaded series' length when
 * the state names the series on screen; otherwise the index is kept as sent and clamped once
 * the series is loaded. Null when there is nothing to show (no series).
 */
export function fromWire(wire: WireViewerState, imageCount: (seriesUID: string) => number | null): ViewerState | null {
  const vp = wire?.viewports?.[0];
  if (!vp || !vp.study_uid || !vp.series_uid) return null;
  const index = Number.isFinite(vp.image_index) ? Math.max(0, Math.floor(vp.image_index)) : 0;
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
  const fitted =
    vp.zoom === 1 && vp.pan?.[0] === 0 && vp.pan?.[1] === 0 && !vp.rotation && !vp.flip_h && !vp.flip_v;
  if (!fitted) {
    state = reduce(state, {
      type: "camera",
      camera: {
        zoom: vp.zoom,
        pan: [vp.pan?.[0] ?? 0, vp.pan?.[1] ?? 0],
        rotation: vp.rotation ?? 0,
        flipHorizontal: Boolean(vp.flip_h),
        flipVertical: Boolean(vp.flip_v),
      },
    });
  }
  return state;
}

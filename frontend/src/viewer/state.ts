/**
 * The viewer state and its reducer: what a viewer shows, as plain data, so that it can be
 * kept across a reload, sent to the room and applied from the room (DESIGN.md,
 * "Synchronized viewing"). Cornerstone is driven from this state and reports back into it;
 * nothing here knows Cornerstone.
 */

export interface Voi {
  /** Window centre and width, in the modality's output units (HU for CT). */
  center: number;
  width: number;
}

/**
 * Camera relative to the display, as Cornerstone's ViewPresentation: zoom 1 is "fit", pan is
 * in fractions of the displayed size, so that it means the same on screens of other sizes.
 */
export interface Camera {
  zoom: number;
  pan: [number, number];
  rotation: number;
  flipHorizontal: boolean;
  flipVertical: boolean;
}

export type PresetId = "lung" | "mediastinum" | "bone" | "brain";

/** CT window presets (centre/width in HU), as radiology workstations ship them. */
export const CT_PRESETS: Record<PresetId, Voi> = {
  lung: { center: -600, width: 1500 },
  mediastinum: { center: 50, width: 350 },
  bone: { center: 400, width: 1800 },
  brain: { center: 40, width: 80 },
};

export const PRESET_ORDER: PresetId[] = ["lung", "mediastinum", "bone", "brain"];

export interface ViewerState {
  studyUID: string | null;
  seriesUID: string | null;
  imageIndex: number;
  imageCount: number;
  /** null: the file's own window (its first VOI preset). */
  voi: Voi | null;
  preset: PresetId | null;
  /** null: fitted to the viewport (the reset camera). */
  camera: Camera | null;
}

export type ViewerAction =
  | { type: "series"; studyUID: string; seriesUID: string; imageCount: number; imageIndex?: number }
  | { type: "index"; index: number }
  | { type: "scroll"; delta: number }
  | { type: "voi"; voi: Voi | null }
  | { type: "preset"; preset: PresetId }
  | { type: "camera"; camera: Camera | null }
  | { type: "reset" };

export const EMPTY_STATE: ViewerState = {
  studyUID: null,
  seriesUID: null,
  imageIndex: 0,
  imageCount: 0,
  voi: null,
  preset: null,
  camera: null,
};

export const MIN_WINDOW_WIDTH = 1;
export const MIN_ZOOM = 0.05;
export const MAX_ZOOM = 50;

function clampIndex(index: number, count: number): number {
  if (count <= 0 || !Number.isFinite(index)) return 0;
  return Math.min(count - 1, Math.max(0, Math.round(index)));
}

function sameVoi(a: Voi | null, b: Voi | null): boolean {
  if (a === null || b === null) return a === b;
  return Math.abs(a.center - b.center) < 0.5 && Math.abs(a.width - b.width) < 0.5;
}

function sameCamera(a: Camera | null, b: Camera | null): boolean {
  if (a === null || b === null) return a === b;
  return (
    Math.abs(a.zoom - b.zoom) < 1e-4 &&
    Math.abs(a.pan[0] - b.pan[0]) < 1e-4 &&
    Math.abs(a.pan[1] - b.pan[1]) < 1e-4 &&
    Math.abs(a.rotation - b.rotation) < 1e-3 &&
    a.flipHorizontal === b.flipHorizontal &&
    a.flipVertical === b.flipVertical
  );
}

function normalizeVoi(voi: Voi | null): Voi | null {
  if (voi === null) return null;
  if (!Number.isFinite(voi.center) || !Number.isFinite(voi.width)) return null;
  return { center: voi.center, width: Math.max(MIN_WINDOW_WIDTH, voi.width) };
}

function normalizeCamera(camera: Camera | null): Camera | null {
  if (camera === null) return null;
  const finite = (n: number, fallback: number) => (Number.isFinite(n) ? n : fallback);
  const rotation = ((finite(camera.rotation, 0) % 360) + 360) % 360;
  return {
    zoom: Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, finite(camera.zoom, 1))),
    pan: [finite(camera.pan[0], 0), finite(camera.pan[1], 0)],
    rotation,
    flipHorizontal: Boolean(camera.flipHorizontal),
    flipVertical: Boolean(camera.flipVertical),
  };
}

/** Which preset a window is, if any (a drag that lands exactly on one shows it). */
export function presetOf(voi: Voi | null): PresetId | null {
  if (voi === null) return null;
  return PRESET_ORDER.find((id) => sameVoi(CT_PRESETS[id], voi)) ?? null;
}

/** The reducer: pure, returns the same object when nothing changes. */
export function reduce(state: ViewerState, action: ViewerAction): ViewerState {
  switch (action.type) {
    case "series": {
      const count = Math.max(0, Math.floor(action.imageCount));
      const sameSeries = state.seriesUID === action.seriesUID && state.studyUID === action.studyUID;
      const index = clampIndex(
        action.imageIndex ?? (sameSeries ? state.imageIndex : Math.floor(count / 2)),
        count,
      );
      if (sameSeries && count === state.imageCount && index === state.imageIndex) return state;
      return sameSeries
        ? { ...state, imageCount: count, imageIndex: index }
        : {
            ...EMPTY_STATE,
            studyUID: action.studyUID,
            seriesUID: action.seriesUID,
            imageCount: count,
            imageIndex: index,
          };
    }
    case "index":
    case "scroll": {
      if (state.imageCount === 0) return state;
      const target = action.type === "index" ? action.index : state.imageIndex + action.delta;
      const index = clampIndex(target, state.imageCount);
      return index === state.imageIndex ? state : { ...state, imageIndex: index };
    }
    case "voi": {
      const voi = normalizeVoi(action.voi);
      if (sameVoi(voi, state.voi)) return state;
      return { ...state, voi, preset: presetOf(voi) };
    }
    case "preset": {
      const voi = CT_PRESETS[action.preset];
      if (!voi) return state;
      if (state.preset === action.preset && sameVoi(voi, state.voi)) return state;
      return { ...state, voi: { ...voi }, preset: action.preset };
    }
    case "camera": {
      const camera = normalizeCamera(action.camera);
      return sameCamera(camera, state.camera) ? state : { ...state, camera };
    }
    case "reset": {
      if (state.voi === null && state.camera === null) return state;
      return { ...state, voi: null, preset: null, camera: null };
    }
  }
}

/** Validates a state read from storage or received from the room; null if unusable. */
export function parseState(value: unknown): ViewerState | null {
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  const str = (x: unknown) => (typeof x === "string" && x.length > 0 && x.length <= 64 ? x : null);
  const num = (x: unknown) => (typeof x === "number" && Number.isFinite(x) ? x : null);
  const studyUID = str(v.studyUID);
  const seriesUID = str(v.seriesUID);
  const imageCount = num(v.imageCount);
  const imageIndex = num(v.imageIndex);
  if (!studyUID || !seriesUID || imageCount === null || imageIndex === null) return null;
  let state = reduce(EMPTY_STATE, { type: "series", studyUID, seriesUID, imageCount, imageIndex });
  const voi = v.voi as Record<string, unknown> | null | undefined;
  if (voi && num(voi.center) !== null && num(voi.width) !== null) {
    state = reduce(state, { type: "voi", voi: { center: voi.center as number, width: voi.width as number } });
  }
  const camera = v.camera as Record<string, unknown> | null | undefined;
  if (camera && Array.isArray(camera.pan) && camera.pan.length === 2 && num(camera.zoom) !== null) {
    state = reduce(state, {
      type: "camera",
      camera: {
        zoom: camera.zoom as number,
        pan: [num(camera.pan[0]) ?? 0, num(camera.pan[1]) ?? 0],
        rotation: num(camera.rotation) ?? 0,
        flipHorizontal: camera.flipHorizontal === true,
        flipVertical: camera.flipVertical === true,
      },
    });
  }
  return state;
}

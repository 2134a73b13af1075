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

export type MeasurementTool = "length" | "angle" | "roi" | "arrow";
export type Point3 = [number, number, number];

/** A measurement as the room shares it: world points (mm, patient coordinates). */
export interface Measurement {
  /** Cornerstone's annotation UID, the same on every screen. */
  id: string;
  tool: MeasurementTool;
  viewport: 0 | 1;
  frameOfReferenceUID: string | null;
  points: Point3[];
  /** As the drawing screen computed it ("42.3 mm", "35.0°", "120.4 mm² · mean 41.2 HU"). */
  label: string;
}

/** The second viewport: a series (typically a prior study) shown beside the first. */
export interface CompareView {
  studyUID: string;
  seriesUID: string;
  imageIndex: number;
  imageCount: number;
}

export const MIN_CINE_FPS = 1;
export const MAX_CINE_FPS = 60;
export const DEFAULT_CINE_FPS = 15;
export const MAX_MEASUREMENTS = 200;

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
  invert: boolean;
  cinePlaying: boolean;
  cineFps: number;
  measurements: Measurement[];
  compare: CompareView | null;
  /** The viewport the keys and buttons act on (1 only with a compare view). */
  active: 0 | 1;
}

export type ViewerAction =
  | { type: "series"; studyUID: string; seriesUID: string; imageCount: number; imageIndex?: number }
  | { type: "index"; index: number }
  | { type: "scroll"; delta: number }
  | { type: "voi"; voi: Voi | null }
  | { type: "preset"; preset: PresetId }
  | { type: "camera"; camera: Camera | null }
  | { type: "reset" }
  | { type: "rotate"; degrees: number }
  | { type: "flip"; axis: "h" | "v" }
  | { type: "invert"; invert?: boolean }
  | { type: "cine"; playing?: boolean; fps?: number }
  | { type: "measurement"; measurement: Measurement }
  | { type: "removeMeasurement"; id: string }
  | { type: "clearMeasurements" }
  | { type: "compare"; compare: { studyUID: string; seriesUID: string; imageCount: number; imageIndex?: number } | null }
  | { type: "compareIndex"; index: number }
  | { type: "active"; viewport: 0 | 1 };

export const EMPTY_STATE: ViewerState = {
  studyUID: null,
  seriesUID: null,
  imageIndex: 0,
  imageCount: 0,
  voi: null,
  preset: null,
  camera: null,
  invert: false,
  cinePlaying: false,
  cineFps: DEFAULT_CINE_FPS,
  measurements: [],
  compare: null,
  active: 0,
};

const FITTED: Camera = { zoom: 1, pan: [0, 0], rotation: 0, flipHorizontal: false, flipVertical: false };

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

function clampFps(fps: number, fallback: number): number {
  if (!Number.isFinite(fps)) return fallback;
  return Math.min(MAX_CINE_FPS, Math.max(MIN_CINE_FPS, Math.round(fps)));
}

/** A measurement made safe to keep and send; null if unusable. */
export function normalizeMeasurement(m: unknown): Measurement | null {
  if (typeof m !== "object" || m === null) return null;
  const v = m as Record<string, unknown>;
  if (typeof v.id !== "string" || v.id.length < 1 || v.id.length > 64) return null;
  const tool = v.tool;
  if (tool !== "length" && tool !== "angle" && tool !== "roi" && tool !== "arrow") return null;
  if (!Array.isArray(v.points) || v.points.length < 1 || v.points.length > 16) return null;
  const points: Point3[] = [];
  for (const p of v.points) {
    if (!Array.isArray(p) || p.length !== 3 || !p.every((x) => typeof x === "number" && Number.isFinite(x))) return null;
    points.push([p[0], p[1], p[2]]);
  }
  const fr = v.frameOfReferenceUID;
  return {
    id: v.id,
    tool,
    viewport: v.viewport === 1 ? 1 : 0,
    frameOfReferenceUID: typeof fr === "string" && fr.length > 0 && fr.length <= 64 ? fr : null,
    points,
    label: typeof v.label === "string" ? v.label.slice(0, 200) : "",
  };
}

function sameMeasurement(a: Measurement, b: Measurement): boolean {
  return (
    a.tool === b.tool &&
    a.viewport === b.viewport &&
    a.frameOfReferenceUID === b.frameOfReferenceUID &&
    a.label === b.label &&
    a.points.length === b.points.length &&
    a.points.every((p, i) => p.every((x, j) => Math.abs(x - b.points[i][j]) < 1e-6))
  );
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
            // The case's measurements and the compare view outlive a change of series.
            measurements: state.measurements,
            compare: state.compare,
            active: state.active,
            cineFps: state.cineFps,
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
      if (state.voi === null && state.camera === null && !state.invert) return state;
      return { ...state, voi: null, preset: null, camera: null, invert: false };
    }
    case "rotate": {
      if (!Number.isFinite(action.degrees) || action.degrees % 360 === 0) return state;
      const camera = state.camera ?? FITTED;
      return reduce(state, { type: "camera", camera: { ...camera, rotation: camera.rotation + action.degrees } });
    }
    case "flip": {
      const camera = state.camera ?? FITTED;
      return reduce(state, {
        type: "camera",
        camera:
          action.axis === "h"
            ? { ...camera, flipHorizontal: !camera.flipHorizontal }
            : { ...camera, flipVertical: !camera.flipVertical },
      });
    }
    case "invert": {
      const invert = action.invert ?? !state.invert;
      return invert === state.invert ? state : { ...state, invert };
    }
    case "cine": {
      const playing = action.playing ?? state.cinePlaying;
      const fps = action.fps === undefined ? state.cineFps : clampFps(action.fps, state.cineFps);
      if (playing === state.cinePlaying && fps === state.cineFps) return state;
      return { ...state, cinePlaying: playing, cineFps: fps };
    }
    case "measurement": {
      const m = normalizeMeasurement(action.measurement);
      if (!m) return state;
      const i = state.measurements.findIndex((x) => x.id === m.id);
      if (i >= 0) {
        if (sameMeasurement(state.measurements[i], m)) return state;
        const measurements = state.measurements.slice();
        measurements[i] = m;
        return { ...state, measurements };
      }
      return { ...state, measurements: [...state.measurements, m].slice(-MAX_MEASUREMENTS) };
    }
    case "removeMeasurement": {
      if (!state.measurements.some((m) => m.id === action.id)) return state;
      return { ...state, measurements: state.measurements.filter((m) => m.id !== action.id) };
    }
    case "clearMeasurements":
      return state.measurements.length ? { ...state, measurements: [] } : state;
    case "compare": {
      const c = action.compare;
      if (c === null) return state.compare === null && state.active === 0 ? state : { ...state, compare: null, active: 0 };
      const count = Math.max(0, Math.floor(c.imageCount));
      const same = state.compare?.seriesUID === c.seriesUID && state.compare.studyUID === c.studyUID;
      const index = clampIndex(c.imageIndex ?? (same ? state.compare!.imageIndex : Math.floor(count / 2)), count);
      if (same && state.compare!.imageCount === count && state.compare!.imageIndex === index) return state;
      return { ...state, compare: { studyUID: c.studyUID, seriesUID: c.seriesUID, imageCount: count, imageIndex: index } };
    }
    case "compareIndex": {
      const c = state.compare;
      if (!c || c.imageCount === 0) return state;
      const index = clampIndex(action.index, c.imageCount);
      return index === c.imageIndex ? state : { ...state, compare: { ...c, imageIndex: index } };
    }
    case "active": {
      const active = action.viewport === 1 && state.compare ? 1 : 0;
      return active === state.active ? state : { ...state, active };
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
  if (v.invert === true) state = reduce(state, { type: "invert", invert: true });
  const fps = num(v.cineFps);
  state = reduce(state, { type: "cine", playing: v.cinePlaying === true, fps: fps ?? DEFAULT_CINE_FPS });
  if (Array.isArray(v.measurements)) {
    for (const m of v.measurements.slice(-MAX_MEASUREMENTS)) {
      const measurement = normalizeMeasurement(m);
      if (measurement) state = reduce(state, { type: "measurement", measurement });
    }
  }
  const compare = v.compare as Record<string, unknown> | null | undefined;
  if (compare && str(compare.studyUID) && str(compare.seriesUID) && num(compare.imageCount) !== null) {
    state = reduce(state, {
      type: "compare",
      compare: {
        studyUID: compare.studyUID as string,
        seriesUID: compare.seriesUID as string,
        imageCount: compare.imageCount as number,
        imageIndex: num(compare.imageIndex) ?? undefined,
      },
    });
    if (v.active === 1) state = reduce(state, { type: "active", viewport: 1 });
  }
  return state;
}

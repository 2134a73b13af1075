/**
 * Reading our /dicomweb (QIDO-RS, WADO-RS metadata, thumbnails) and turning a series into
 * Cornerstone `wadors:` image ids, ordered along the stack.
 */

import type { Session } from "../session";
import { errorFromResponse } from "../session";

export const DICOMWEB_ROOT = "/dicomweb";

/** DICOM JSON (PS3.18 F.2): tag → {vr, Value?, BulkDataURI?}. */
export type DicomJson = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string }>;

export interface StudyInfo {
  studyUID: string;
  description: string;
  date: string;
  modalities: string[];
  patientName: string;
  patientId: string;
}

export interface SeriesInfo {
  studyUID: string;
  seriesUID: string;
  number: number | null;
  modality: string;
  description: string;
  instanceCount: number;
}

/** One image of a stack as the room names it: its instance, and its frame there (from 1). */
export interface ImageRef {
  sopUID: string;
  frame: number;
}

export interface LoadedSeries {
  series: SeriesInfo;
  imageIds: string[];
  /** The metadata of each image id's instance (same order). */
  instances: DicomJson[];
  /** The instance and frame of each image id (same order). */
  refs: ImageRef[];
}

const TAG = {
  StudyInstanceUID: "0020000D",
  SeriesInstanceUID: "0020000E",
  SOPInstanceUID: "00080018",
  StudyDescription: "00081030",
  StudyDate: "00080020",
  ModalitiesInStudy: "00080061",
  PatientName: "00100010",
  PatientID: "00100020",
  Modality: "00080060",
  SeriesNumber: "00200011",
  SeriesDescription: "0008103E",
  NumberOfSeriesRelatedInstances: "00201209",
  InstanceNumber: "00200013",
  NumberOfFrames: "00280008",
  ImagePositionPatient: "00200032",
  ImageOrientationPatient: "00200037",
} as const;

export function first(json: DicomJson, tag: string): unknown {
  return json[tag]?.Value?.[0];
}

export function str(json: DicomJson, tag: string): string {
  const v = first(json, tag);
  if (v === undefined || v === null) return "";
  if (typeof v === "object" && "Alphabetic" in (v as object)) return String((v as { Alphabetic: string }).Alphabetic);
  return String(v);
}

export function num(json: DicomJson, tag: string): number | null {
  const v = Number(first(json, tag));
  return first(json, tag) === undefined || !Number.isFinite(v) ? null : v;
}

function nums(json: DicomJson, tag: string): number[] | null {
  const values = json[tag]?.Value;
  if (!values) return null;
  const out = values.map(Number);
  return out.every(Number.isFinite) ? out : null;
}

async function getJson<T>(session: Session, path: string): Promise<T> {
  const response = await session.fetch(path, { headers: { Accept: "application/dicom+json" } });
  if (response.status === 204) return [] as T;
  if (!response.ok) throw await errorFromResponse(response);
  return (await response.json()) as T;
}

/** QIDO-RS for one study; null when the store does not hold it (or the user may not see it). */
export async function findStudy(session: Session, studyUID: string): Promise<StudyInfo | null> {
  const found = await getJson<DicomJson[]>(
    session,
    `${DICOMWEB_ROOT}/studies?StudyInstanceUID=${encodeURIComponent(studyUID)}`,
  );
  const s = found[0];
  if (!s) return null;
  return {
    studyUID,
    description: str(s, TAG.StudyDescription),
    date: str(s, TAG.StudyDate),
    modalities: (s[TAG.ModalitiesInStudy]?.Value ?? []).map(String),
    patientName: str(s, TAG.PatientName),
    patientId: str(s, TAG.PatientID),
  };
}

export async function listSeries(session: Session, studyUID: string): Promise<SeriesInfo[]> {
  const found = await getJson<DicomJson[]>(session, `${DICOMWEB_ROOT}/studies/${studyUID}/series`);
  return found
    .map((s) => ({
      studyUID,
      seriesUID: str(s, TAG.SeriesInstanceUID),
      number: num(s, TAG.SeriesNumber),
      modality: str(s, TAG.Modality),
      description: str(s, TAG.SeriesDescription),
      instanceCount: num(s, TAG.NumberOfSeriesRelatedInstances) ?? 0,
    }))
    .filter((s) => s.seriesUID)
    .sort((a, b) => (a.number ?? Infinity) - (b.number ?? Infinity));
}

export function thumbnailPath(series: SeriesInfo): string {
  return `${DICOMWEB_ROOT}/studies/${series.studyUID}/series/${series.seriesUID}/thumbnail`;
}

/** The thumbnail as an object URL (an <img> cannot send the bearer token itself). */
export async function thumbnailUrl(session: Session, series: SeriesInfo): Promise<string> {
  const response = await session.fetch(thumbnailPath(series), { headers: { Accept: "image/jpeg" } });
  if (!response.ok) throw await errorFromResponse(response);
  return URL.createObjectURL(await response.blob());
}

/**
 * Orders instances along the stack: by position on the slice normal when every instance has
 * a position and orientation, else by InstanceNumber.
 */
export function sortInstances(instances: DicomJson[]): DicomJson[] {
  const orientation = instances.length ? nums(instances[0], TAG.ImageOrientationPatient) : null;
  const positions = instances.map((i) => nums(i, TAG.ImagePositionPatient));
  if (orientation && orientation.length === 6 && positions.every((p) => p && p.length === 3)) {
    const [r0, r1, r2, c0, c1, c2] = orientation;
    const normal = [r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0];
    const depth = positions.map((p) => p![0] * normal[0] + p![1] * normal[1] + p![2] * normal[2]);
    return instances
      .map((instance, i) => ({ instance, d: depth[i] }))
      .sort((a, b) => b.d - a.d)
      .map((x) => x.instance);
  }
  return [...instances].sort(
    (a, b) => (num(a, TAG.InstanceNumber) ?? 0) - (num(b, TAG.InstanceNumber) ?? 0),
  );
}

export function imageIdsFor(studyUID: string, seriesUID: string, instances: DicomJson[], origin: string) {
  const imageIds: string[] = [];
  const perImage: DicomJson[] = [];
  const refs: ImageRef[] = [];
  for (const instance of instances) {
    const sop = str(instance, TAG.SOPInstanceUID);
    if (!sop) continue;
    const frames = Math.max(1, num(instance, TAG.NumberOfFrames) ?? 1);
    const base = `wadors:${origin}${DICOMWEB_ROOT}/studies/${studyUID}/series/${seriesUID}/instances/${sop}/frames/`;
    for (let f = 1; f <= frames; f++) {
      imageIds.push(base + f);
      perImage.push(instance);
      refs.push({ sopUID: sop, frame: f });
    }
  }
  return { imageIds, perImage, refs };
}

/** WADO-RS series metadata → ordered image ids, one per frame. */
export async function loadSeries(session: Session, series: SeriesInfo, origin: string): Promise<LoadedSeries> {
  const metadata = await getJson<DicomJson[]>(
    session,
    `${DICOMWEB_ROOT}/studies/${series.studyUID}/series/${series.seriesUID}/metadata`,
  );
  const { imageIds, perImage, refs } = imageIdsFor(series.studyUID, series.seriesUID, sortInstances(metadata), origin);
  return { series, imageIds, instances: perImage, refs };
}

/** Series of documents, not images: the minutes' key objects (KO) and measurements (SR). */
export const DOCUMENT_MODALITIES = new Set(["KO", "SR"]);

export interface KeyObjectRef {
  seriesUID: string;
  sopUID: string;
}

const seq = (json: DicomJson, tag: string): DicomJson[] => (json[tag]?.Value ?? []) as DicomJson[];

/** The images Key Object Selection documents name (their evidence), in order, once each. */
export function keyObjectImages(metadata: DicomJson[]): KeyObjectRef[] {
  const seen = new Map<string, KeyObjectRef>();
  for (const kos of metadata) {
    for (const study of seq(kos, "0040A375")) {
      for (const series of seq(study, "00081115")) {
        const seriesUID = str(series, "0020000E");
        for (const sop of seq(series, "00081199")) {
          const sopUID = str(sop, "00081155");
          if (seriesUID && sopUID && !seen.has(sopUID)) seen.set(sopUID, { seriesUID, sopUID });
        }
      }
    }
  }
  return [...seen.values()];
}

/** The key images a KO series names (WADO-RS metadata of its documents). */
export async function loadKeyObjects(session: Session, series: SeriesInfo): Promise<KeyObjectRef[]> {
  return keyObjectImages(await getJson<DicomJson[]>(
    session,
    `${DICOMWEB_ROOT}/studies/${series.studyUID}/series/${series.seriesUID}/metadata`,
  ));
}

/**
 * Cornerstone behind the viewer's ports: the rendering engine and tool groups the viewports
 * use (viewport.ts), page-wide annotations (measurements.ts), the loader's metadata, and
 * the geometry between the screen and the image. Everything else of the viewer reaches
 * Cornerstone only through here, and so runs without a GPU in the unit tests.
 */

import {
  Enums as CoreEnums,
  eventTarget,
  metaData as csMetaData,
  RenderingEngine,
  type StackViewport,
  type Types,
  utilities as csUtilities,
} from "@cornerstonejs/core";
import { wadors } from "@cornerstonejs/dicom-image-loader";
import { annotation as csAnnotation, Enums as ToolEnums, ToolGroupManager, utilities as toolUtilities } from "@cornerstonejs/tools";

import type { LoadedSeries } from "./dicomweb";
import type { Annotations } from "./measurements";
import type { Voi } from "./state";
import { TOOLS, type ToolGroupLike } from "./tools";
import type { AnnotationEvent, AnnotationEvents, ViewportEngine, ViewportEvents } from "./viewport";

const Events = CoreEnums.Events;

// Window centre/width ↔ Cornerstone's VOI range, with DICOM's linear function (PS3.3
// C.11.2.1.2), as Cornerstone converts the file's own window.
export function voiFromRange(range: Types.VOIRange): Voi {
  const { windowCenter, windowWidth } = csUtilities.windowLevel.toWindowLevel(range.lower, range.upper);
  return { center: windowCenter, width: windowWidth };
}

function rangeFromVoi(voi: Voi): Types.VOIRange {
  return csUtilities.windowLevel.toLowHighRange(voi.width, voi.center);
}

export const annotations: Annotations = {
  get: (id) => csAnnotation.state.getAnnotation(id),
  remove: (id) => csAnnotation.state.removeAnnotation(id),
  render: (viewportId) => toolUtilities.triggerAnnotationRenderForViewportIds([viewportId]),
  hydrate: (kind, viewportId, points, id) => {
    const hydrate = TOOLS.find((t) => t.measurement === kind)?.hydrate;
    if (!hydrate) return false;
    hydrate(viewportId, points, { annotationUID: id });
    return true;
  },
  selected: () => csAnnotation.selection.getAnnotationsSelected() ?? [],
};

export class CornerstoneEngine implements ViewportEngine {
  readonly annotations = annotations;
  private engine: RenderingEngine | null;

  constructor(readonly id: string) {
    this.engine = new RenderingEngine(id);
  }

  enable(viewportId: string, element: HTMLDivElement): void {
    this.engine?.enableElement({
      viewportId,
      type: CoreEnums.ViewportType.STACK,
      element,
      defaultOptions: { background: [0, 0, 0] as Types.Point3 },
    });
  }

  stack(viewportId: string): StackViewport | null {
    return (this.engine?.getViewport(viewportId) as StackViewport | undefined) ?? null;
  }

  createToolGroup(id: string): ToolGroupLike | null {
    return (ToolGroupManager.createToolGroup(id) as ToolGroupLike | undefined) ?? null;
  }

  toolGroup(id: string): ToolGroupLike | null {
    return (ToolGroupManager.getToolGroup(id) as ToolGroupLike | undefined) ?? null;
  }

  destroyToolGroup(id: string): void {
    ToolGroupManager.destroyToolGroup(id);
  }

  listen(element: HTMLElement, events: ViewportEvents): () => void {
    const listeners: [string, EventListener][] = [
      [Events.STACK_VIEWPORT_SCROLL, ((e: CustomEvent<Types.EventTypes.StackViewportScrollEventDetail>) => events.scrolled(e.detail.newImageIdIndex)) as EventListener],
      [Events.STACK_NEW_IMAGE, ((e: CustomEvent<Types.EventTypes.StackNewImageEventDetail>) => events.newImage(e.detail.imageIdIndex, e.detail.image)) as EventListener],
      [Events.VOI_MODIFIED, ((e: CustomEvent<Types.EventTypes.VoiModifiedEventDetail>) => events.voiModified(e.detail.range)) as EventListener],
      [Events.CAMERA_MODIFIED, () => events.cameraModified()],
      [Events.IMAGE_RENDERED, () => events.rendered()],
    ];
    for (const [type, listener] of listeners) element.addEventListener(type, listener);
    return () => {
      for (const [type, listener] of listeners) element.removeEventListener(type, listener);
    };
  }

  listenAnnotations(events: AnnotationEvents): () => void {
    const on = (type: string, fn: (e: AnnotationEvent) => void): [string, EventListener] => [
      type,
      ((e: CustomEvent<Partial<AnnotationEvent> & { changeType?: string }>) => {
        const d = e.detail;
        if (!d?.annotation || !this.engine) return;
        fn({
          annotation: d.annotation,
          element: d.element,
          viewportId: d.viewportId,
          statsUpdated: d.changeType === ToolEnums.ChangeTypes.StatsUpdated,
        });
      }) as EventListener,
    ];
    const listeners = [
      on(ToolEnums.Events.ANNOTATION_COMPLETED, events.completed),
      on(ToolEnums.Events.ANNOTATION_MODIFIED, events.modified),
      on(ToolEnums.Events.ANNOTATION_REMOVED, events.removed),
    ];
    for (const [type, listener] of listeners) eventTarget.addEventListener(type, listener);
    return () => {
      for (const [type, listener] of listeners) eventTarget.removeEventListener(type, listener);
    };
  }

  voiRange(voi: Voi): Types.VOIRange {
    return rangeFromVoi(voi);
  }

  /** The viewports changed size: canvases follow, keeping each camera's presentation. */
  resize(): void {
    this.engine?.resize(true, true);
  }

  destroy(): void {
    this.engine?.destroy();
    this.engine = null;
  }
}

/** The series' instance metadata for the image loader, which then asks for frames only. */
export function registerMetadata(loaded: LoadedSeries): void {
  for (let i = 0; i < loaded.imageIds.length; i++) {
    wadors.metaDataManager.add(loaded.imageIds[i], loaded.instances[i] as never);
  }
}

/** The VOI LUT module of an image: its file's own windows. */
export function fileVoiModule(imageId: string): { windowCenter?: number | number[]; windowWidth?: number | number[] } | undefined {
  return csMetaData.get("voiLutModule", imageId) as { windowCenter?: number | number[]; windowWidth?: number | number[] } | undefined;
}

/**
 * A pointer position on the element as a fraction of the displayed image (columns, rows),
 * so that it lands on the same anatomy on every screen whatever its size; null off the image.
 */
export function imagePoint(stack: StackViewport, element: HTMLElement, clientX: number, clientY: number): [number, number] | null {
  const image = stack.getCornerstoneImage?.();
  const imageId = stack.getCurrentImageId();
  if (!image || !imageId) return null;
  const rect = element.getBoundingClientRect();
  const world = stack.canvasToWorld([clientX - rect.left, clientY - rect.top] as Types.Point2);
  const coords = csUtilities.worldToImageCoords(imageId, world);
  if (!coords) return null;
  const [col, row] = coords;
  const x = col / image.columns;
  const y = row / image.rows;
  return x >= 0 && x <= 1 && y >= 0 && y <= 1 ? [x, y] : null;
}

/**
 * Where a world point (a measurement's end) lies on the image, in pixel coordinates (column,
 * row); null when it lies off the image's plane (drawn on another slice), by the round trip
 * back to world coordinates.
 */
export function onImagePlane(imageId: string, world: [number, number, number]): [number, number] | null {
  const coords = csUtilities.worldToImageCoords(imageId, world as Types.Point3);
  if (!coords) return null;
  const back = csUtilities.imageToWorldCoords(imageId, coords as Types.Point2);
  if (!back) return null;
  const off = Math.hypot(back[0] - world[0], back[1] - world[1], back[2] - world[2]);
  return off <= PLANE_TOLERANCE_MM ? [coords[0], coords[1]] : null;
}

/** Thinner than any slice spacing, thicker than rounding. */
const PLANE_TOLERANCE_MM = 0.25;

/** Where a fraction of the displayed image is on the canvas; null without an image. */
export function canvasPoint(stack: StackViewport, point: [number, number]): [number, number] | null {
  const image = stack.getCornerstoneImage?.();
  const imageId = stack.getCurrentImageId();
  if (!image || !imageId) return null;
  const world = csUtilities.imageToWorldCoords(imageId, [point[0] * image.columns, point[1] * image.rows] as Types.Point2);
  if (!world) return null;
  const [x, y] = stack.worldToCanvas(world);
  return [x, y];
}

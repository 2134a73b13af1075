/**
 * Cornerstone3D set-up, once per page: the rendering core, the DICOM image loader (WADO-RS
 * with our bearer token, decoding in module workers), and the tools the viewer uses.
 */

import { init as coreInit } from "@cornerstonejs/core";
import { init as dicomImageLoaderInit } from "@cornerstonejs/dicom-image-loader";
import {
  addTool,
  AngleTool,
  EllipticalROITool,
  init as toolsInit,
  LengthTool,
  PanTool,
  StackScrollTool,
  WindowLevelTool,
  ZoomTool,
} from "@cornerstonejs/tools";

import type { Session } from "../session";

let ready: Promise<void> | null = null;

export function initCornerstone(session: Session): Promise<void> {
  if (!ready) {
    ready = (async () => {
      coreInit();
      dicomImageLoaderInit({
        maxWebWorkers: Math.max(1, Math.min(4, Math.floor((navigator.hardwareConcurrency || 2) / 2))),
        // Every frame request carries the current access token (renewed when near expiry).
        beforeSend: async () => ({ Authorization: `Bearer ${await session.accessToken()}` }),
      });
      toolsInit();
      for (const tool of [StackScrollTool, WindowLevelTool, PanTool, ZoomTool, LengthTool, AngleTool, EllipticalROITool]) {
        addTool(tool);
      }
    })();
    ready.catch(() => {
      ready = null;
    });
  }
  return ready;
}

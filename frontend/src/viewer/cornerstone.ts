/**
 * Cornerstone3D set-up, once per page: the rendering core, the DICOM image loader (WADO-RS
 * frames compressed as FRAME_ACCEPT asks, with our bearer token, decoding in module
 * workers), the request pools' limits, and the tools the viewer uses.
 */

import {
  cache,
  init as coreInit,
  Enums as CoreEnums,
  getEnabledElement,
  imageLoader,
  imageRetrievalPoolManager,
} from "@cornerstonejs/core";
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
import { FRAME_ACCEPT } from "./frameAccept";
import { PREFETCH_CONCURRENCY } from "./loadOrder";

/** localStorage key: "1" puts Cornerstone's cache and loader on `window.hoichanImaging`, for
 * support (and the browser tests) to read decoded frames from the console. */
export const DIAGNOSTICS_KEY = "hoichan.diagnostics";

let ready: Promise<void> | null = null;

export function initCornerstone(session: Session): Promise<void> {
  if (!ready) {
    ready = (async () => {
      coreInit();
      dicomImageLoaderInit({
        maxWebWorkers: Math.max(1, Math.min(4, Math.floor((navigator.hardwareConcurrency || 2) / 2))),
        // Every frame request carries the current access token (renewed when near expiry).
        // The headers returned here override the loader's own, its fixed Accept (octet-stream,
        // transfer-syntax=*) included: the loader's public way to choose frame encodings. It
        // then picks each part's decoder from the part's Content-Type.
        beforeSend: async () => ({
          Accept: FRAME_ACCEPT,
          Authorization: `Bearer ${await session.accessToken()}`,
        }),
      });
      // Whoever else queues prefetch (the retrieval pool allows 200 by default) still leaves
      // connections and bandwidth to the frames someone is waiting for.
      imageRetrievalPoolManager.setMaxSimultaneousRequests(CoreEnums.RequestType.Prefetch, PREFETCH_CONCURRENCY);
      exposeDiagnostics();
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

function exposeDiagnostics(): void {
  try {
    if (localStorage.getItem(DIAGNOSTICS_KEY) !== "1") return;
  } catch {
    return; // storage blocked: no diagnostics
  }
  Object.defineProperty(window, "hoichanImaging", {
    value: { cache, imageLoader, getEnabledElement },
    configurable: true,
  });
}

/**
 * The viewer's tools as data: one table that the toolbar, the keyboard and both viewports'
 * Cornerstone tool groups are all built from, so that a tool added here shows up everywhere.
 */

import {
  AngleTool,
  EllipticalROITool,
  Enums as ToolEnums,
  LengthTool,
  PanTool,
  StackScrollTool,
  WindowLevelTool,
  ZoomTool,
} from "@cornerstonejs/tools";

import { strings } from "../strings";
import type { MeasurementTool, Point3 } from "./state";

/** Draws a shared measurement as the tool's own annotation (Cornerstone's `hydrate`). */
export type Hydrate = (viewportId: string, points: Point3[], options: { annotationUID: string }) => unknown;

export type LeftTool = "windowLevel" | "pan" | "zoom" | "scroll" | "length" | "angle" | "roi";

export interface ToolDef {
  id: LeftTool;
  /** Cornerstone's name for it (what tool groups are configured by). */
  toolName: string;
  label: string;
  key: string;
  /** Measurement tools draw annotations the room shares, under this kind. */
  measurement: MeasurementTool | null;
  /** A mouse button it keeps whatever tool the left button has. */
  binding: number | null;
  hydrate: Hydrate | null;
}

const { MouseBindings } = ToolEnums;

export const TOOLS: readonly ToolDef[] = [
  { id: "windowLevel", toolName: WindowLevelTool.toolName, label: strings.toolWindowLevel, key: "w", measurement: null, binding: null, hydrate: null },
  { id: "pan", toolName: PanTool.toolName, label: strings.toolPan, key: "p", measurement: null, binding: MouseBindings.Auxiliary, hydrate: null },
  { id: "zoom", toolName: ZoomTool.toolName, label: strings.toolZoom, key: "z", measurement: null, binding: MouseBindings.Secondary, hydrate: null },
  { id: "scroll", toolName: StackScrollTool.toolName, label: strings.toolScroll, key: "s", measurement: null, binding: MouseBindings.Wheel, hydrate: null },
  { id: "length", toolName: LengthTool.toolName, label: strings.toolLength, key: "l", measurement: "length", binding: null, hydrate: LengthTool.hydrate as Hydrate },
  { id: "angle", toolName: AngleTool.toolName, label: strings.toolAngle, key: "a", measurement: "angle", binding: null, hydrate: AngleTool.hydrate as Hydrate },
  { id: "roi", toolName: EllipticalROITool.toolName, label: strings.toolRoi, key: "o", measurement: "roi", binding: null, hydrate: EllipticalROITool.hydrate as Hydrate },
];

export const DEFAULT_TOOL: LeftTool = "windowLevel";

export function tool(id: LeftTool): ToolDef {
  const def = TOOLS.find((t) => t.id === id);
  if (!def) throw new Error(`unknown tool ${id}`);
  return def;
}

/** The shared measurement kind a Cornerstone annotation's tool draws, if it is one of ours. */
export function measurementKind(toolName: string | undefined): MeasurementTool | null {
  return TOOLS.find((t) => t.toolName === toolName)?.measurement ?? null;
}

/** The part of a Cornerstone tool group the viewer uses. */
export interface ToolGroupLike {
  addTool(toolName: string): void;
  addViewport(viewportId: string, renderingEngineId: string): void;
  setToolActive(toolName: string, options: { bindings: { mouseButton: number }[] }): void;
  setToolPassive(toolName: string): void;
}

/** Every tool of the table on a viewport: the fixed buttons, `left` on the left button, and
 * the other measurement tools passive, so that their annotations are drawn and can be moved
 * or selected. */
export function configureToolGroup(group: ToolGroupLike, viewportId: string, engineId: string, left: LeftTool): void {
  for (const t of TOOLS) group.addTool(t.toolName);
  group.addViewport(viewportId, engineId);
  for (const t of TOOLS) {
    if (t.binding !== null) group.setToolActive(t.toolName, { bindings: [{ mouseButton: t.binding }] });
  }
  for (const t of TOOLS) if (t.measurement && t.id !== left) group.setToolPassive(t.toolName);
  group.setToolActive(tool(left).toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
}

/** The left button changes tool. Cornerstone's passive keeps a tool's other buttons (pan
 * stays on the middle one), so the fixed bindings need no restoring. */
export function switchLeftTool(group: ToolGroupLike, from: LeftTool, to: LeftTool): void {
  group.setToolPassive(tool(from).toolName);
  group.setToolActive(tool(to).toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
}

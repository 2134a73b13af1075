/**
 * What the viewer's keys and buttons do, as data: a command, run by the viewer. The keys act
 * on the active viewport (the compare view once clicked).
 */

import { PRESET_ORDER, type ViewerAction, type ViewerState } from "./state";
import { TOOLS, type LeftTool } from "./tools";

export type Command =
  | { kind: "dispatch"; action: ViewerAction }
  | { kind: "tool"; tool: LeftTool }
  | { kind: "cine" }
  | { kind: "help"; show?: boolean }
  /** The selected measurements, else the last one. */
  | { kind: "deleteMeasurement" };

const act = (action: ViewerAction): Command => ({ kind: "dispatch", action });

export interface KeyContext {
  state: ViewerState;
  /** The viewport the scroll keys move (0 without a compare view). */
  active: 0 | 1;
  helpShown: boolean;
}

/** The command of a key (KeyboardEvent.key), or null when the viewer has none for it. */
export function keyCommand(key: string, { state, active, helpShown }: KeyContext): Command | null {
  const compare = active === 1 ? state.compare : null;
  const count = compare ? compare.imageCount : state.imageCount;
  const page = Math.max(1, Math.round(count / 10));
  const scroll = (delta: number): Command =>
    compare ? act({ type: "compareIndex", index: compare.imageIndex + delta }) : act({ type: "scroll", delta });
  const goTo = (index: number): Command => act(compare ? { type: "compareIndex", index } : { type: "index", index });
  switch (key) {
    case "ArrowUp":
    case "ArrowLeft":
      return scroll(-1);
    case "ArrowDown":
    case "ArrowRight":
      return scroll(1);
    case "PageUp":
      return scroll(-page);
    case "PageDown":
      return scroll(page);
    case "Home":
      return goTo(0);
    case "End":
      return goTo(count - 1);
    case "0":
      return act({ type: "voi", voi: null });
    case "r":
    case "R":
      return act({ type: "reset" });
    case "[":
      return act({ type: "rotate", degrees: -90 });
    case "]":
      return act({ type: "rotate", degrees: 90 });
    case "h":
      return act({ type: "flip", axis: "h" });
    case "v":
      return act({ type: "flip", axis: "v" });
    case "i":
      return act({ type: "invert" });
    case " ":
      return { kind: "cine" };
    case "+":
    case "=":
      return act({ type: "cine", fps: state.cineFps + 5 });
    case "-":
      return act({ type: "cine", fps: state.cineFps - 5 });
    case "Delete":
    case "Backspace":
      return { kind: "deleteMeasurement" };
    case "?":
      return { kind: "help" };
    case "Escape":
      return helpShown ? { kind: "help", show: false } : null;
  }
  const tool = TOOLS.find((t) => t.key === key);
  if (tool) return { kind: "tool", tool: tool.id };
  const preset = PRESET_ORDER[Number(key) - 1];
  return /^[1-9]$/.test(key) && preset ? act({ type: "preset", preset }) : null;
}

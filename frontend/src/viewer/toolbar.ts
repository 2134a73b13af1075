/**
 * The viewer's toolbar, described as data (`toolbarGroups`, from the tool table) and built
 * from it (`Toolbar`); its buttons run the same commands as the keys.
 */

import { h } from "../dom";
import { strings } from "../strings";
import type { Command } from "./keys";
import { MAX_CINE_FPS, MIN_CINE_FPS, PRESET_ORDER, type PresetId, type ViewerState, type Voi } from "./state";
import { TOOLS, type LeftTool, type ToolDef } from "./tools";

export interface ButtonDef {
  label: string;
  /** Shown in the title: "Invert (I)". */
  key: string;
  /** Instead of label and key. */
  title?: string;
  /** On the button when not the label ("⟲"). */
  text?: string;
  class: "tool" | "preset" | "reset";
  command: Command;
  testid?: string;
  /** data-* attributes (data-tool, data-preset): what the tests and styles select by. */
  data?: Record<string, string>;
  /** Named to assistive technology by its label (the ones whose text is a symbol). */
  labelled?: boolean;
}

export interface GroupDef {
  name: "tools" | "measure" | "presets" | "transform";
  label: string;
  buttons: ButtonDef[];
}

const PRESET_LABELS: Record<PresetId, string> = {
  lung: strings.presetLung,
  mediastinum: strings.presetMediastinum,
  bone: strings.presetBone,
  brain: strings.presetBrain,
};

const act = (label: string, key: string, testid: string, command: Command, text?: string): ButtonDef => ({
  label, key, testid, command, text, class: "tool", labelled: true,
});

const toolButton = (t: ToolDef): ButtonDef => ({
  label: t.label, key: t.key.toUpperCase(), class: "tool", command: { kind: "tool", tool: t.id }, data: { tool: t.id },
});

export function toolbarGroups(): GroupDef[] {
  return [
    { name: "tools", label: strings.leftButtonTool, buttons: TOOLS.filter((t) => !t.measurement).map(toolButton) },
    { name: "measure", label: strings.measureTools, buttons: TOOLS.filter((t) => t.measurement).map(toolButton) },
    {
      name: "presets",
      label: strings.presets,
      buttons: [
        ...PRESET_ORDER.map((preset, i): ButtonDef => ({
          label: PRESET_LABELS[preset], key: String(i + 1), class: "preset", data: { preset },
          command: { kind: "dispatch", action: { type: "preset", preset } },
        })),
        { label: strings.presetDefault, key: "0", class: "preset", data: { preset: "default" }, command: { kind: "dispatch", action: { type: "voi", voi: null } } },
      ],
    },
    {
      name: "transform",
      label: strings.transform,
      buttons: [
        act(strings.rotateLeft, "[", "rotate-left", { kind: "dispatch", action: { type: "rotate", degrees: -90 } }, "⟲"),
        act(strings.rotateRight, "]", "rotate-right", { kind: "dispatch", action: { type: "rotate", degrees: 90 } }, "⟳"),
        act(strings.flipHorizontal, "H", "flip-h", { kind: "dispatch", action: { type: "flip", axis: "h" } }),
        act(strings.flipVertical, "V", "flip-v", { kind: "dispatch", action: { type: "flip", axis: "v" } }),
        act(strings.invert, "I", "invert", { kind: "dispatch", action: { type: "invert" } }),
      ],
    },
  ];
}

/** The windows the file itself carries beyond its first ("Default"), as MR and X-ray
 * workstations offer them; at most five. */
export function fileWindowButtons(windows: Voi[]): ButtonDef[] {
  return windows.slice(1, 6).map((w, i) => ({
    label: strings.presetFile(i + 2), key: "", title: strings.presetFileTitle(w.width, w.center), class: "preset", data: { preset: `file-${i + 2}` },
    command: { kind: "dispatch", action: { type: "voi", voi: w } },
  }));
}

/** The windows of a file's VOI LUT module (centre and width: one value or several). */
export function fileWindows(voi: { windowCenter?: number | number[]; windowWidth?: number | number[] } | undefined): Voi[] {
  const list = (v: number | number[] | undefined) => (Array.isArray(v) ? v : v === undefined ? [] : [v]);
  const widths = list(voi?.windowWidth);
  return list(voi?.windowCenter)
    .map((center, i) => ({ center: Number(center), width: Number(widths[i]) }))
    .filter((w) => Number.isFinite(w.center) && Number.isFinite(w.width) && w.width > 0);
}

/** What is pressed, from the state (and the left tool, which is this screen's own). */
export function pressed(def: ButtonDef, state: ViewerState, leftTool: LeftTool): boolean | null {
  const c = def.command;
  if (c.kind === "tool") return c.tool === leftTool;
  if (c.kind !== "dispatch") return null;
  const a = c.action;
  if (a.type === "preset") return state.preset === a.preset;
  if (a.type === "invert") return state.invert;
  if (a.type === "flip") return (a.axis === "h" ? state.camera?.flipHorizontal : state.camera?.flipVertical) ?? false;
  return null;
}

export interface ToolbarOptions {
  /** At the end of the bar: the compare chooser, and the sync bar the room page fills. */
  compareSelect: HTMLElement;
  syncBar: HTMLElement;
  fps: number;
  /** The fps field was left with a value, taken or not: the state's is shown again. */
  fpsSettled: () => void;
}

export class Toolbar {
  readonly el: HTMLElement;
  private readonly buttons: [ButtonDef, HTMLButtonElement][] = [];
  private readonly presetButtons: HTMLButtonElement[] = [];
  /** The file's own windows beyond its first (MR, X-ray: often several). */
  private readonly filePresets = h("span", { class: "toolgroup file-presets" });
  private readonly cineButton: HTMLButtonElement;
  private readonly fpsInput: HTMLInputElement;

  constructor(private readonly run: (command: Command) => void, options: ToolbarOptions) {
    const { compareSelect, syncBar, fps, fpsSettled } = options;
    const groups = new Map(
      toolbarGroups().map((g) => [
        g.name,
        h("div", { class: "toolgroup", role: "group", "aria-label": g.label }, g.buttons.map((b) => this.button(b))),
      ]),
    );
    for (const [def, button] of this.buttons) {
      if (def.class === "preset" && def.data?.preset !== "default") this.presetButtons.push(button);
    }
    groups.get("presets")!.append(this.filePresets);
    this.cineButton = this.button({ label: strings.cinePlay, key: "Space", testid: "cine", class: "tool", labelled: true, text: "▶", command: { kind: "cine" } }, false);
    this.fpsInput = h("input", {
      type: "number",
      class: "cine-fps",
      min: String(MIN_CINE_FPS),
      max: String(MAX_CINE_FPS),
      step: "1",
      value: String(fps),
      title: strings.cineFps,
      "aria-label": strings.cineFps,
      "data-testid": "cine-fps",
    });
    this.fpsInput.addEventListener("change", () => {
      const value = Number(this.fpsInput.value);
      if (Number.isFinite(value) && this.fpsInput.value !== "") run({ kind: "dispatch", action: { type: "cine", fps: value } });
      fpsSettled();
    });
    const cine = h("div", { class: "toolgroup cine", role: "group" }, this.cineButton, this.fpsInput, h("span", { class: "muted" }, strings.fpsUnit));
    const reset = this.button({ label: strings.reset, key: "R", class: "reset", command: { kind: "dispatch", action: { type: "reset" } } }, false);
    const help = this.button({ label: strings.help, key: "?", testid: "help-button", class: "tool", labelled: true, text: "?", command: { kind: "help" } }, false);
    this.el = h(
      "div",
      { class: "viewer-toolbar" },
      groups.get("tools"), groups.get("measure"), groups.get("presets"), groups.get("transform"), cine, compareSelect, reset, help, syncBar,
    );
  }

  /** CT presets for CT only; for every modality, the windows the file itself carries. */
  setPresets(ct: boolean, windows: Voi[]): void {
    for (const button of this.presetButtons) button.style.display = ct ? "" : "none";
    this.filePresets.replaceChildren(
      ...fileWindowButtons(windows).map((def) => this.button(def, false)),
    );
  }

  render(state: ViewerState, leftTool: LeftTool): void {
    for (const [def, button] of this.buttons) {
      const on = pressed(def, state, leftTool);
      if (on !== null) button.setAttribute("aria-pressed", String(on));
    }
    const playing = state.cinePlaying;
    this.cineButton.textContent = playing ? "⏸" : "▶";
    this.cineButton.title = `${playing ? strings.cinePause : strings.cinePlay} (Space)`;
    this.cineButton.setAttribute("aria-label", playing ? strings.cinePause : strings.cinePlay);
    this.cineButton.setAttribute("aria-pressed", String(playing));
    if (document.activeElement !== this.fpsInput) this.fpsInput.value = String(state.cineFps);
  }

  private button(def: ButtonDef, track = true): HTMLButtonElement {
    const data = Object.fromEntries(Object.entries(def.data ?? {}).map(([k, v]) => [`data-${k}`, v]));
    const button = h(
      "button",
      {
        type: "button",
        class: def.class,
        ...data,
        title: def.title ?? `${def.label} (${def.key})`,
        "aria-label": def.labelled ? def.label : null,
        "data-testid": def.testid ?? null,
        onclick: () => this.run(def.command),
      },
      def.text ?? def.label,
    );
    if (track) this.buttons.push([def, button]);
    return button;
  }
}

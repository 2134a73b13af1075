import { AngleTool, EllipticalROITool, Enums, LengthTool, PanTool, StackScrollTool, WindowLevelTool, ZoomTool } from "@cornerstonejs/tools";
import { beforeAll, describe, expect, it } from "vitest";

import type { Command } from "../src/viewer/keys";
import { keyCommand } from "../src/viewer/keys";
import { EMPTY_STATE, reduce, type ViewerState } from "../src/viewer/state";
import { fileWindowButtons, fileWindows, pressed, Toolbar, toolbarGroups } from "../src/viewer/toolbar";
import { configureToolGroup, measurementKind, switchLeftTool, TOOLS, type ToolGroupLike } from "../src/viewer/tools";
import { FakeElement, installFakeDom } from "./fakeDom";

const { MouseBindings } = Enums;

/** A tool group that records what it was asked, in order. */
function recordingGroup() {
  const calls: string[] = [];
  const group: ToolGroupLike = {
    addTool: (name) => calls.push(`add ${name}`),
    addViewport: (viewportId, engineId) => calls.push(`viewport ${viewportId} ${engineId}`),
    setToolActive: (name, { bindings }) => calls.push(`active ${name} ${bindings.map((b) => b.mouseButton).join(",")}`),
    setToolPassive: (name) => calls.push(`passive ${name}`),
  };
  return { group, calls };
}

function loaded(index = 10, count = 40): ViewerState {
  return reduce(EMPTY_STATE, { type: "series", studyUID: "1.2", seriesUID: "1.2.3", imageCount: count, imageIndex: index });
}

describe("the tool table", () => {
  it("names Cornerstone's tools, each with its own key", () => {
    expect(TOOLS.map((t) => [t.id, t.toolName, t.key])).toEqual([
      ["windowLevel", WindowLevelTool.toolName, "w"],
      ["pan", PanTool.toolName, "p"],
      ["zoom", ZoomTool.toolName, "z"],
      ["scroll", StackScrollTool.toolName, "s"],
      ["length", LengthTool.toolName, "l"],
      ["angle", AngleTool.toolName, "a"],
      ["roi", EllipticalROITool.toolName, "o"],
    ]);
    expect(new Set(TOOLS.map((t) => t.key)).size).toBe(TOOLS.length);
  });

  it("the measurement tools draw the shared kinds, and only they can be hydrated", () => {
    expect(measurementKind(LengthTool.toolName)).toBe("length");
    expect(measurementKind(EllipticalROITool.toolName)).toBe("roi");
    expect(measurementKind(PanTool.toolName)).toBeNull();
    expect(measurementKind(undefined)).toBeNull();
    expect(TOOLS.filter((t) => t.hydrate).map((t) => t.id)).toEqual(["length", "angle", "roi"]);
  });

  it("a tool group gets every tool: wheel, middle and right buttons fixed, measurements passive, the left tool on the left button", () => {
    const { group, calls } = recordingGroup();
    configureToolGroup(group, "vp", "engine", "windowLevel");
    expect(calls).toEqual([
      ...TOOLS.map((t) => `add ${t.toolName}`),
      "viewport vp engine",
      `active ${PanTool.toolName} ${MouseBindings.Auxiliary}`,
      `active ${ZoomTool.toolName} ${MouseBindings.Secondary}`,
      `active ${StackScrollTool.toolName} ${MouseBindings.Wheel}`,
      `passive ${LengthTool.toolName}`,
      `passive ${AngleTool.toolName}`,
      `passive ${EllipticalROITool.toolName}`,
      `active ${WindowLevelTool.toolName} ${MouseBindings.Primary}`,
    ]);
  });

  it("a measurement tool on the left button is not also made passive", () => {
    const { group, calls } = recordingGroup();
    configureToolGroup(group, "vp", "engine", "angle");
    expect(calls).not.toContain(`passive ${AngleTool.toolName}`);
    expect(calls.at(-1)).toBe(`active ${AngleTool.toolName} ${MouseBindings.Primary}`);
  });

  it("switching the left tool passes the old one and activates the new one on the left button", () => {
    const { group, calls } = recordingGroup();
    switchLeftTool(group, "windowLevel", "length");
    expect(calls).toEqual([`passive ${WindowLevelTool.toolName}`, `active ${LengthTool.toolName} ${MouseBindings.Primary}`]);
  });
});

describe("the toolbar as data", () => {
  const groups = toolbarGroups();

  it("has the tools and the measurement tools from the table, in its order", () => {
    const ids = (name: string) => groups.find((g) => g.name === name)!.buttons.map((b) => (b.command as { tool: string }).tool);
    expect(ids("tools")).toEqual(["windowLevel", "pan", "zoom", "scroll"]);
    expect(ids("measure")).toEqual(["length", "angle", "roi"]);
    const length = groups[1].buttons[0];
    expect(length).toMatchObject({ label: "Length", key: "L", data: { tool: "length" } });
  });

  it("presets in their order and Default, transforms with their keys", () => {
    const presets = groups.find((g) => g.name === "presets")!.buttons;
    expect(presets.map((b) => [b.data?.preset, b.key])).toEqual([["lung", "1"], ["mediastinum", "2"], ["bone", "3"], ["brain", "4"], ["default", "0"]]);
    expect(presets.at(-1)!.command).toEqual({ kind: "dispatch", action: { type: "voi", voi: null } });
    const transform = groups.find((g) => g.name === "transform")!.buttons;
    expect(transform.map((b) => [b.testid, b.key])).toEqual([["rotate-left", "["], ["rotate-right", "]"], ["flip-h", "H"], ["flip-v", "V"], ["invert", "I"]]);
  });

  it("says what is pressed from the state and the left tool", () => {
    const all = groups.flatMap((g) => g.buttons);
    const byTestid = (id: string) => all.find((b) => b.testid === id)!;
    const lung = all.find((b) => b.data?.preset === "lung")!;
    let s = reduce(reduce(loaded(), { type: "preset", preset: "lung" }), { type: "flip", axis: "h" });
    expect(pressed(lung, s, "pan")).toBe(true);
    expect(pressed(byTestid("flip-h"), s, "pan")).toBe(true);
    expect(pressed(byTestid("flip-v"), s, "pan")).toBe(false);
    expect(pressed(byTestid("invert"), s, "pan")).toBe(false);
    expect(pressed(byTestid("rotate-left"), s, "pan")).toBeNull();
    expect(pressed(all.find((b) => b.data?.tool === "pan")!, s, "pan")).toBe(true);
    s = reduce(s, { type: "invert" });
    expect(pressed(byTestid("invert"), s, "zoom")).toBe(true);
  });

  it("offers the file's windows after its first, at most five", () => {
    const windows = fileWindows({ windowCenter: [40, 300, 1, 2, 3, 4, 5], windowWidth: [400, 1500, 10, 20, 30, 40, 50] });
    expect(windows).toHaveLength(7);
    const buttons = fileWindowButtons(windows);
    expect(buttons.map((b) => b.data?.preset)).toEqual(["file-2", "file-3", "file-4", "file-5", "file-6"]);
    expect(buttons[0].command).toEqual({ kind: "dispatch", action: { type: "voi", voi: { center: 300, width: 1500 } } });
    expect(fileWindows({ windowCenter: 40, windowWidth: 400 })).toEqual([{ center: 40, width: 400 }]);
    expect(fileWindows({ windowCenter: [40, 50], windowWidth: [0] })).toEqual([]);
    expect(fileWindows(undefined)).toEqual([]);
  });
});

describe("the toolbar built", () => {
  beforeAll(installFakeDom);

  it("runs each button's command and marks the pressed ones", () => {
    const run: Command[] = [];
    const compareSelect = new FakeElement("select") as unknown as HTMLElement;
    const syncBar = new FakeElement("div") as unknown as HTMLElement;
    const toolbar = new Toolbar((c) => run.push(c), { compareSelect, syncBar, fps: 15, fpsSettled: () => undefined });
    const el = toolbar.el as unknown as FakeElement;
    expect(el.children.at(-1)).toBe(syncBar);
    const buttons = el.all().filter((e) => e.tagName === "button");
    const tool = (id: string) => buttons.find((b) => b.dataset.tool === id)!;
    expect(tool("length").title).toBe("Length (L)");
    tool("length").fire("click");
    buttons.find((b) => b.dataset.testid === "invert")!.fire("click");
    buttons.find((b) => b.dataset.testid === "cine")!.fire("click");
    expect(run).toEqual([{ kind: "tool", tool: "length" }, { kind: "dispatch", action: { type: "invert" } }, { kind: "cine" }]);
    toolbar.render(reduce(loaded(), { type: "cine", playing: true }), "length");
    expect(tool("length").getAttribute("aria-pressed")).toBe("true");
    expect(tool("windowLevel").getAttribute("aria-pressed")).toBe("false");
    const cine = buttons.find((b) => b.dataset.testid === "cine")!;
    expect([cine.textContent, cine.getAttribute("aria-pressed")]).toEqual(["⏸", "true"]);
  });

  it("hides the CT presets off CT and lists the file's windows", () => {
    const toolbar = new Toolbar(() => undefined, {
      compareSelect: new FakeElement("select") as unknown as HTMLElement,
      syncBar: new FakeElement("div") as unknown as HTMLElement,
      fps: 15,
      fpsSettled: () => undefined,
    });
    toolbar.setPresets(false, [{ center: 40, width: 400 }, { center: 300, width: 1500 }]);
    const buttons = (toolbar.el as unknown as FakeElement).all().filter((e) => e.tagName === "button");
    expect(buttons.find((b) => b.dataset.preset === "lung")!.style.display).toBe("none");
    expect(buttons.find((b) => b.dataset.preset === "default")!.style.display).toBeUndefined();
    expect(buttons.filter((b) => b.dataset.preset?.startsWith("file-")).map((b) => b.dataset.preset)).toEqual(["file-2"]);
  });
});

describe("the keys", () => {
  const ctx = (state: ViewerState, active: 0 | 1 = 0, helpShown = false) => ({ state, active, helpShown });

  it("scroll the main stack, by one, by a tenth, to the ends", () => {
    const s = loaded(10, 40);
    expect(keyCommand("ArrowDown", ctx(s))).toEqual({ kind: "dispatch", action: { type: "scroll", delta: 1 } });
    expect(keyCommand("ArrowLeft", ctx(s))).toEqual({ kind: "dispatch", action: { type: "scroll", delta: -1 } });
    expect(keyCommand("PageDown", ctx(s))).toEqual({ kind: "dispatch", action: { type: "scroll", delta: 4 } });
    expect(keyCommand("End", ctx(s))).toEqual({ kind: "dispatch", action: { type: "index", index: 39 } });
  });

  it("scroll the compare view once it is the active one", () => {
    const s = reduce(loaded(), { type: "compare", compare: { studyUID: "9", seriesUID: "9.1", imageCount: 20, imageIndex: 5 } });
    expect(keyCommand("ArrowDown", ctx(s, 1))).toEqual({ kind: "dispatch", action: { type: "compareIndex", index: 6 } });
    expect(keyCommand("PageUp", ctx(s, 1))).toEqual({ kind: "dispatch", action: { type: "compareIndex", index: 3 } });
    expect(keyCommand("Home", ctx(s, 1))).toEqual({ kind: "dispatch", action: { type: "compareIndex", index: 0 } });
    // Active 1 without a compare view is the main stack.
    expect(keyCommand("Home", ctx(loaded(), 1))).toEqual({ kind: "dispatch", action: { type: "index", index: 0 } });
  });

  it("choose the tools from the table, presets by number, and the rest", () => {
    const s = loaded();
    for (const t of TOOLS) expect(keyCommand(t.key, ctx(s))).toEqual({ kind: "tool", tool: t.id });
    expect(keyCommand("1", ctx(s))).toEqual({ kind: "dispatch", action: { type: "preset", preset: "lung" } });
    expect(keyCommand("4", ctx(s))).toEqual({ kind: "dispatch", action: { type: "preset", preset: "brain" } });
    expect(keyCommand("5", ctx(s))).toBeNull();
    expect(keyCommand("0", ctx(s))).toEqual({ kind: "dispatch", action: { type: "voi", voi: null } });
    expect(keyCommand("+", ctx(s))).toEqual({ kind: "dispatch", action: { type: "cine", fps: 20 } });
    expect(keyCommand(" ", ctx(s))).toEqual({ kind: "cine" });
    expect(keyCommand("Backspace", ctx(s))).toEqual({ kind: "deleteMeasurement" });
    expect(keyCommand("x", ctx(s))).toBeNull();
  });

  it("Escape closes the help only when it is shown", () => {
    expect(keyCommand("Escape", ctx(loaded()))).toBeNull();
    expect(keyCommand("Escape", ctx(loaded(), 0, true))).toEqual({ kind: "help", show: false });
    expect(keyCommand("?", ctx(loaded()))).toEqual({ kind: "help" });
  });
});

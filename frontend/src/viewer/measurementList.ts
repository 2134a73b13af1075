/** The list of the room's measurements under the viewer, each with its delete button. */

import { h } from "../dom";
import { strings } from "../strings";
import type { MeasurementTool, ViewerState } from "./state";

const KIND: Record<MeasurementTool, string> = {
  length: strings.toolLength,
  angle: strings.toolAngle,
  roi: strings.toolRoi,
  arrow: "→",
};

export class MeasurementList {
  readonly el = h("ul", { class: "measure-list", "data-testid": "measurements" });
  /** What the list shows, so that an unrelated state change does not rebuild it. */
  private rendered = "";

  constructor(private readonly remove: (id: string) => void) {}

  render(state: ViewerState): void {
    const key = JSON.stringify(state.measurements.map((m) => [m.id, m.label]));
    if (key === this.rendered) return;
    this.rendered = key;
    this.el.replaceChildren(
      ...state.measurements.map((m) =>
        h(
          "li",
          { class: "measure", "data-testid": "measurement", "data-id": m.id, "data-tool": m.tool },
          h("span", { class: "measure-kind" }, KIND[m.tool]),
          h("span", { class: "measure-label", "data-testid": "measurement-label" }, m.label || "…"),
          h(
            "button",
            {
              type: "button",
              class: "link",
              title: strings.deleteMeasurement,
              "aria-label": strings.deleteMeasurement,
              "data-testid": "delete-measurement",
              onclick: () => this.remove(m.id),
            },
            "×",
          ),
        ),
      ),
    );
    this.el.hidden = state.measurements.length === 0;
  }
}

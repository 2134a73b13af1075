/**
 * The laser pointer: the driver's pointer over the image, sent as a fraction of the image
 * (so that it lands on the same anatomy on screens of other sizes), and shown on followers'.
 */

import { h } from "../dom";

type Point = [number, number];

/** A pointer that stops moving fades: the driver's page may have gone. */
export const LASER_FADE_MS = 4000;

export class Laser {
  readonly el = h("div", { class: "laser", hidden: true, "data-testid": "laser" });
  private timer: ReturnType<typeof setTimeout> | undefined;

  /** `point` (a fraction of the image) at `at` on the canvas; either null hides it. The
   * point shown goes on `d` for the tests. */
  show(point: Point | null, at: Point | null, d: DOMStringMap): void {
    clearTimeout(this.timer);
    if (!point || !at) {
      this.el.hidden = true;
      return;
    }
    this.el.style.transform = `translate(${at[0]}px, ${at[1]}px)`;
    this.el.hidden = false;
    d.laser = `${point[0].toFixed(3)},${point[1].toFixed(3)}`;
    this.timer = setTimeout(() => {
      this.el.hidden = true;
    }, LASER_FADE_MS);
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}

/**
 * Pointer moves over `element` as image points (`toImage`: null off the image) for
 * `listener`: each point while on the image, then one null on leaving it. Drags are tools,
 * not pointing. Returns the function that stops it.
 */
export function trackPointer(
  element: HTMLElement,
  toImage: (clientX: number, clientY: number) => Point | null,
  listener: (point: Point | null) => void,
): () => void {
  let inside = false;
  const move = (e: PointerEvent) => {
    if (e.buttons !== 0) return;
    const point = toImage(e.clientX, e.clientY);
    if (point || inside) listener(point);
    inside = point !== null;
  };
  const leave = () => {
    if (inside) listener(null);
    inside = false;
  };
  element.addEventListener("pointermove", move);
  element.addEventListener("pointerleave", leave);
  return () => {
    element.removeEventListener("pointermove", move);
    element.removeEventListener("pointerleave", leave);
  };
}

"""Reading and driving the Cornerstone viewer of a page: what it shows (its data-* state and
its canvas) and keyboard moves through the demo CT's stack."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Page

SLICES = 200
RENDERED = "[data-testid=viewer][data-rendered='1']"

# Reads the viewport's canvas: how much of it is lit, and a digest to tell two pictures apart.
CANVAS_STATS = """() => {
  const canvas = document.querySelector('[data-testid=viewport] canvas');
  if (!canvas || !canvas.width) return null;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let lit = 0, sum = 0, digest = 0;
  for (let i = 0; i < data.length; i += 4) {
    const v = data[i];
    if (v > 40) lit++;
    sum += v;
    digest = (digest * 31 + v) >>> 0;
  }
  const pixels = data.length / 4;
  return {width: canvas.width, height: canvas.height, lit: lit / pixels, mean: sum / pixels,
          digest};
}"""


def wait_canvas(page: Page, other_than: int | None = None) -> dict[str, Any]:
    """The canvas once drawn (something lit), and different from `other_than` if given:
    Cornerstone draws on the next animation frame after a change."""
    page.wait_for_function(
        f"d => {{ const s = ({CANVAS_STATS})(); return s && s.lit > 0 && s.digest !== d; }}",
        arg=other_than if other_than is not None else -1)
    return canvas_stats(page)


def viewer_data(page: Page) -> dict[str, str]:
    return json.loads(page.evaluate(
        "JSON.stringify(document.querySelector('[data-testid=viewer]').dataset)"))


def shown(page: Page) -> int:
    return int(viewer_data(page)["shownIndex"] or -1)


def wait_data(page: Page, key: str, value: str, timeout: float = 5_000) -> None:
    page.wait_for_function(
        "([k, v]) => document.querySelector('[data-testid=viewer]')?.dataset[k] === v",
        arg=[key, value], timeout=timeout)


def canvas_stats(page: Page) -> dict[str, Any]:
    stats = page.evaluate(CANVAS_STATS)
    assert stats is not None, "no viewport canvas"
    return stats


def wait_shown(page: Page, index: int) -> None:
    """Until the image at `index` is the one on screen (not merely asked for)."""
    page.wait_for_function(
        "i => document.querySelector('[data-testid=viewer]')?.dataset.shownIndex === String(i)",
        arg=index)


def go_to(page: Page, index: int) -> None:
    """Keyboard to an image: Home, PageDown (a tenth of the stack), then ArrowDown."""
    page.get_by_test_id("viewport").focus()
    page.keyboard.press("Home")
    for _ in range(index // (SLICES // 10)):
        page.keyboard.press("PageDown")
    for _ in range(index % (SLICES // 10)):
        page.keyboard.press("ArrowDown")
    wait_shown(page, index)

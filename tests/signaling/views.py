"""A viewer state as a client sends it (``viewer:state``), for the tests that drive one."""

from __future__ import annotations

from typing import Any

STUDY = "1.2.826.0.1.3680043.9.7777.1"
SERIES = "1.2.826.0.1.3680043.9.7777.1.1"
SOP = "1.2.826.0.1.3680043.9.7777.1.1.57"


def view(index: int, center: float = 40, width: float = 400, **extra: Any) -> dict[str, Any]:
    # The image by instance and frame, as the browser sends it (the index a hint).
    return {"viewports": [{"study_uid": STUDY, "series_uid": SERIES, "sop_uid": SOP,
                           "frame": 2, "image_index": index,
                           "window_center": center, "window_width": width, "zoom": 1.5,
                           "pan": [10.0, -4.5], "rotation": 90, "flip_h": True, **extra}],
            "measurements": [{"id": "m1", "tool": "length",
                              "points": [[0, 0, 10.5], [12.25, 3, 10.5]], "label": "17 mm"}]}

"""Rendered frames and thumbnails (PS3.18 §10.4.1.1.3): window/level, resize, PNG or JPEG.

The viewer renders from lossless pixels itself; server rendering is for thumbnails and for
clients that only show pictures.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.processing import apply_modality_lut

from app.errors import ApiError

MEDIA = {"image/jpeg": ".jpg", "image/png": ".png"}
MAX_SIDE = 4096


def parse_window(value: str | None) -> tuple[float, float] | None:
    """``window=center,width[,function]`` (only the linear function)."""
    if not value:
        return None
    parts = value.split(",")
    try:
        center, width = float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        raise ApiError(400, "window is center,width[,linear]", field="window") from None
    if len(parts) > 2 and parts[2].lower() not in ("linear", ""):
        raise ApiError(400, "only the linear VOI function is supported", field="window")
    if not (np.isfinite(center) and np.isfinite(width)) or width <= 0:
        raise ApiError(400, "window width must be positive", field="window")
    return center, width


def parse_viewport(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    try:
        w, h = (int(v) for v in value.split(",")[:2])
    except ValueError:
        raise ApiError(400, "viewport is width,height", field="viewport") from None
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise ApiError(400, f"viewport sides are 1 to {MAX_SIDE}", field="viewport")
    return w, h


def choose_media(accept: str) -> str:
    for media in (m.split(";")[0].strip() for m in accept.split(",")):
        if media in MEDIA:
            return media
        if media in ("*/*", "image/*", ""):
            return "image/jpeg"
    raise ApiError(406, "rendered frames are image/jpeg or image/png", field="Accept")


def _first(value: object) -> float:
    if isinstance(value, (list, tuple, MultiValue)):
        return float(value[0])
    return float(value)  # type: ignore[arg-type]


def _file_window(ds: Dataset) -> tuple[float, float] | None:
    """The file's first window preset (the modality's own choice)."""
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        return None
    return _first(center), _first(width)


def render(ds: Dataset, pixels: np.ndarray, window: tuple[float, float] | None,
           viewport: tuple[int, int] | None, media: str, quality: int = 90) -> bytes:
    """One frame's pixels (as pydicom decodes them) to an 8-bit picture."""
    if pixels.ndim == 3 and pixels.shape[-1] == 3:  # colour: no VOI
        image = cv2.cvtColor(np.clip(pixels, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    else:
        values = apply_modality_lut(pixels, ds).astype(np.float32)
        window = window or _file_window(ds) or (
            float(values.min() + values.max()) / 2, float(max(values.max() - values.min(), 1)))
        center, width = window
        low = center - width / 2
        image = np.clip((values - low) / width * 255.0, 0, 255).astype(np.uint8)
        if ds.get("PhotometricInterpretation") == "MONOCHROME1":
            image = 255 - image
    if viewport is not None:
        h, w = image.shape[:2]
        scale = min(viewport[0] / w, viewport[1] / h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1
                           else cv2.INTER_LINEAR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if media == "image/jpeg" else []
    ok, encoded = cv2.imencode(MEDIA[media], image, params)
    if not ok:
        raise ApiError(500, "could not encode the picture")
    return encoded.tobytes()

"""DICOM JSON model (PS3.18 §F.2) helpers."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

DICOM_JSON = "application/dicom+json"


def attr(tag: str, vr: str, *values: Any) -> dict[str, Any]:
    """One attribute; empty values give an attribute without ``Value``, as the model says."""
    present = [v for v in values if v not in (None, "")]
    if not present:
        return {tag: {"vr": vr}}
    if vr == "PN":
        return {tag: {"vr": vr, "Value": [{"Alphabetic": str(v)} for v in present]}}
    if vr in ("IS", "US", "UL", "SS", "SL"):
        return {tag: {"vr": vr, "Value": [int(v) for v in present]}}
    return {tag: {"vr": vr, "Value": [str(v) for v in present]}}


def dicom_json_response(payload: list[dict[str, Any]]) -> web.Response:
    # An empty search is 200 with [] (PS3.18 allows 204 too): clients need no special case.
    return web.Response(body=json.dumps(payload).encode(), content_type=DICOM_JSON)

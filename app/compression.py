"""JSON responses compressed by the client's Accept-Encoding: Brotli where it is accepted,
else gzip or deflate (aiohttp's own). QIDO results and WADO-RS metadata shrink some fiftyfold
(notes/real-peers.md: 549 KB to 10 KB), which on a commune link is seconds.

Pixel data is never compressed here: its own codecs do that, and a general-purpose
compressor over frames costs more time than the bytes it saves.
"""

from __future__ import annotations

import asyncio

import brotli
from aiohttp import web
from aiohttp.typedefs import Handler

COMPRESSIBLE = ("application/json", "application/dicom+json")
MIN_BYTES = 1024
THREAD_BYTES = 64 * 1024  # larger bodies are compressed off the event loop
BROTLI_QUALITY = 5  # about gzip's speed, 15-20 % smaller


def _accepts(header: str, coding: str) -> bool:
    """Whether ``coding`` is accepted with a q-value above zero (RFC 9110 12.5.3)."""
    for entry in header.lower().split(","):
        name, _, params = entry.strip().partition(";")
        if name.strip() != coding:
            continue
        q = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
        try:
            return float(q) > 0
        except ValueError:
            return False
    return False


@web.middleware
async def compression_middleware(request: web.Request, handler: Handler
                                 ) -> web.StreamResponse:
    response = await handler(request)
    if not isinstance(response, web.Response) or "Content-Encoding" in response.headers:
        return response
    # The raw header, not response.content_type: parsing a multipart type with its unique
    # boundary costs a quarter of a millisecond per frame response.
    media = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if media not in COMPRESSIBLE:
        return response
    body = response.body
    if not isinstance(body, bytes) or len(body) < MIN_BYTES:
        return response
    response.headers.add("Vary", "Accept-Encoding")
    accepted = request.headers.get("Accept-Encoding", "")
    if _accepts(accepted, "br"):
        response.body = (await asyncio.to_thread(brotli.compress, body, quality=BROTLI_QUALITY)
                         if len(body) > THREAD_BYTES else
                         brotli.compress(body, quality=BROTLI_QUALITY))
        response.headers["Content-Encoding"] = "br"
    elif _accepts(accepted, "gzip") or _accepts(accepted, "deflate"):
        response.enable_compression()
    return response

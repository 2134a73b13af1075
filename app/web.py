"""The browser app: the files Vite built into ``frontend/dist``, served by the same process.

- ``/assets/<name>``: content-hashed files (JS, CSS, WASM codecs, workers), cached for a year
  as immutable, since a new build gives them new names.
- ``/`` and every client route (``/login``, ``/consultations/42/room``, ...): ``index.html``,
  never cached, so a new build is picked up at the next page load. A client route is any GET
  that no server route answers, outside the server's own prefixes (``/api``, ``/dicomweb``,
  ``/socket.io``, ...), whose last segment has no file extension.
- Nothing else changes: the API, DICOMweb and Socket.IO answer as before, their 404 and 405
  included.

Without a build (``make run`` and ``make test`` make one), pages answer 503 with a note
saying so, and the rest of the server works as usual.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger(__name__)

DEFAULT_DIST = Path(__file__).resolve().parent.parent / "frontend" / "dist"
DIST_DIR = web.AppKey("frontend_dist", Path)

SERVER_PREFIXES = ("/api", "/dicomweb", "/socket.io", "/healthz", "/metrics")
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
IMMUTABLE = "public, max-age=31536000, immutable"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}
# The page loads only its own files; the DICOM codecs are WebAssembly; thumbnails are blob:
# URLs; Cornerstone sets inline styles on the elements it draws.
CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self' blob:",
    "img-src 'self' blob: data:",
    "style-src 'self' 'unsafe-inline'",
    "connect-src 'self' ws: wss:",
    "media-src 'self' blob: mediastream:",
    "object-src 'none'",
    "base-uri 'self'",
    "frame-ancestors 'none'",
    "form-action 'self'",
])
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
NOT_BUILT = (
    "The browser app is not built: run `make run` (or `cd frontend && npm ci && npm run build`).\n"
    "The API (/api), DICOMweb (/dicomweb) and the room channel (/socket.io) work without it.\n"
)


def missing_build(dist: Path | None = None) -> Path | None:
    """The index.html a build of the browser app would have made, if it is not there."""
    index = (dist or DEFAULT_DIST) / "index.html"
    return None if index.is_file() else index


def is_client_route(path: str) -> bool:
    """A path the browser app routes itself (answered with index.html)."""
    if any(path == p or path.startswith(p + "/") for p in SERVER_PREFIXES):
        return False
    last = path.rsplit("/", 1)[-1]
    return "." not in last


async def _index(request: web.Request) -> web.StreamResponse:
    index = request.app[DIST_DIR] / "index.html"
    if not index.is_file():
        return web.Response(status=503, text=NOT_BUILT, headers={"Cache-Control": "no-store"})
    headers = {**PAGE_HEADERS, "Content-Type": "text/html; charset=utf-8"}
    return web.FileResponse(index, headers=headers)


async def _asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if not ASSET_NAME.match(name) or ".." in name:
        raise web.HTTPNotFound()
    path = request.app[DIST_DIR] / "assets" / name
    if not path.is_file():
        raise web.HTTPNotFound()
    headers = {"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"}
    content_type = CONTENT_TYPES.get(path.suffix)
    if content_type:
        headers["Content-Type"] = content_type
    return web.FileResponse(path, headers=headers)


@web.middleware
async def _client_routes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answers index.html for a GET no route matched, when it is a client route."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if request.method in ("GET", "HEAD") and is_client_route(request.path) \
                and request.match_info.route.resource is None:
            return await _index(request)
        raise


def setup_web(app: web.Application, dist: Path | None = None) -> None:
    """Serves the built browser app; call after every other route is added."""
    app[DIST_DIR] = dist or DEFAULT_DIST
    index = missing_build(app[DIST_DIR])
    if index is not None:
        log.warning("browser app not built (%s missing): pages answer 503", index)
    app.router.add_get("/", _index)
    app.router.add_get("/index.html", _index)
    app.router.add_get("/assets/{name}", _asset)
    app.middlewares.append(_client_routes)

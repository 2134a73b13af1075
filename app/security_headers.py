"""Headers on every API and DICOMweb answer: they carry patient data, so no browser, proxy
or shared hospital computer may keep them (Cache-Control: no-store), and none may be framed,
sniffed into another type or leak its URL (a study UID) to another site. The browser app's
own page and assets get theirs in app.web."""

from __future__ import annotations

from aiohttp import web

DATA_PREFIXES = ("/api/", "/dicomweb/")
DATA_HEADERS = {
    "Cache-Control": "no-store",
    # Nothing in a JSON or DICOM answer is to be run or shown as a page.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(DATA_PREFIXES):
        for name, value in DATA_HEADERS.items():
            response.headers.setdefault(name, value)


def setup_security_headers(app: web.Application) -> None:
    app.on_response_prepare.append(_add_headers)

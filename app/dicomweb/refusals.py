"""Refused and failed DICOMweb requests in the audit trail: who asked (when the token said),
for what (the UIDs in the path, the query), from where, the status answered and why.

A middleware, so that every DICOMweb route is covered however its handler ends: an API
error, an HTTP exception, an unexpected one (500), or a STOW-RS answer listing instances
it could not keep. A study the caller may not read is answered 404 like an unknown one,
and recorded as denied, unlike an unknown one.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from app import audit
from app.audit_windows import AUDIT_WINDOWS, WindowKey
from app.dicomweb.access import CALLER, StudyNotPermitted
from app.dicomweb.stow import CANNOT_UNDERSTAND, PROCESSING_FAILURE, STUDY_MISMATCH
from app.errors import ApiError

log = logging.getLogger(__name__)

LEVELS = ("studies", "series", "instances")
STOW_REASONS = {CANNOT_UNDERSTAND: "cannot understand",
                STUDY_MISMATCH: "of another study than the URL's",
                PROCESSING_FAILURE: "could not be kept"}
FAILED_SOP_SEQUENCE, SOP_INSTANCE_UID, FAILURE_REASON = "00081198", "00081155", "00081197"


def route_action(method: str, template: str) -> str:
    """The action a DICOMweb route's handler audits its reads as, read off the route's
    template: ``.../series`` searches, ``.../series/{series}`` retrieves, ``.../metadata``
    and ``.../frames/{frames}`` are what they say."""
    if method == "POST":
        return "dicomweb.store"
    segments = template.split("/")
    last = segments[-1]
    if not last.startswith("{"):
        return f"dicomweb.search_{last}" if last in LEVELS else f"dicomweb.{last}"
    named = segments[-2]
    return "dicomweb.retrieve" if named in LEVELS else f"dicomweb.{named}"


async def _record(request: web.Request, status: int, reason: str, *, denied: bool = False,
                  detail: dict[str, Any] | None = None) -> None:
    user = request.get(CALLER)
    study = request.match_info.get("study", "")
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else request.path
    key = WindowKey(
        action=route_action(request.method, template), actor_id=user.id if user else None,
        actor_email=user.email if user else "", client_addr=request.remote or "",
        object_type="study" if study else "", object_id=study,
        outcome=audit.DENIED if denied or status in (401, 403) else audit.FAILURE,
        status=status, reason=reason[:200])
    # What else the path asked for: series, instance, frames, a bulk data path.
    asked = {f"asked_{part}": value for part, value in request.match_info.items()
             if part != "study"}
    if request.query_string:
        asked["query"] = request.query_string[:500]
    try:
        await request.app[AUDIT_WINDOWS].record(key, {**asked, **(detail or {})},
                                                refuse_if_stalled=False)
    except Exception:
        # Only once the writer is closed does recording write, and so fail; the answer
        # the client gets must stay the one the handler gave.
        log.exception("refused DICOMweb request not audited: %s", key)


async def _record_stow_failures(request: web.Request, response: web.StreamResponse) -> None:
    """The instances STOW-RS answered it could not keep (202 or 409), by reason."""
    body = response.body if isinstance(response, web.Response) else None
    try:
        failed = json.loads(body)[FAILED_SOP_SEQUENCE]["Value"] if isinstance(
            body, bytes) else []
    except (ValueError, KeyError, TypeError):
        failed = []
    by_reason: dict[int, list[str]] = {}
    for item in failed:
        code = int(item.get(FAILURE_REASON, {}).get("Value", [0])[0])
        uid = (item.get(SOP_INSTANCE_UID, {}).get("Value") or [""])[0]
        by_reason.setdefault(code, []).append(uid)
    for code, uids in sorted(by_reason.items()):
        await _record(request, response.status,
                      f"0x{code:04X} {STOW_REASONS.get(code, 'refused')}",
                      detail={"sop_instance_uids": [u for u in uids if u]})


@web.middleware
async def audit_refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Requests that match no DICOMweb route (an unknown path) read nothing to audit.
    if request.match_info.http_exception is not None or not request.path.startswith(
            "/dicomweb/"):
        return await handler(request)
    try:
        response = await handler(request)
    except StudyNotPermitted as err:
        await _record(request, err.status, "not permitted: answered as an unknown study",
                      denied=True)
        raise
    except ApiError as err:
        await _record(request, err.status, err.message)
        raise
    except web.HTTPException as exc:
        if exc.status >= 400:
            await _record(request, exc.status, exc.reason)
        raise
    except Exception as exc:
        await _record(request, 500, f"internal error ({type(exc).__name__})")
        raise
    if request.method == "POST" and response.status in (202, 409):
        await _record_stow_failures(request, response)
    elif response.status >= 400:
        await _record(request, response.status, response.reason or "")
    return response

"""Declared routes: each names its body, query, response and roles once, and both the
request handling and the OpenAPI document are derived from that declaration."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.appkeys import READ_SESSIONS, SESSIONS, SETTINGS
from app.auth.tokens import AccessClaims, TokenError, verify_access
from app.config import Settings
from app.db.models import User
from app.errors import ApiError, forbidden, from_validation, not_found, unauthorized
from app.roles import PlatformRole

PUBLIC: tuple[PlatformRole, ...] | None = None
ANY_USER: tuple[PlatformRole, ...] = ()
STAFF = (PlatformRole.admin, PlatformRole.coordinator)
ADMIN = (PlatformRole.admin,)

MAX_ID = 2**31 - 1


def _nul_path(value: Any, path: str = "") -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        found = _nul_path(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


class Body(BaseModel):
    """Request bodies: unknown fields and silent type coercion are errors."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """Query strings arrive as text, so values are coerced; unknown keys are still errors."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


@dataclass
class Ctx:
    """What a handler gets: the request, the caller and the database."""

    request: web.Request
    user: User | None
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings

    @property
    def client_addr(self) -> str:
        return self.request.remote or ""

    @property
    def me(self) -> User:
        assert self.user is not None, "route declared PUBLIC uses ctx.me"
        return self.user

    def path_id(self, name: str) -> int:
        raw = self.request.match_info[name]
        # isascii: str.isdigit() also accepts "１" or "١" (which int() reads as 1, an alias of
        # a real id) and "²" (which int() refuses).
        if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_ID:
            raise not_found(name.removesuffix("_id").replace("_", " "))
        return int(raw)


HandlerFn = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class File:
    """A response that is a document rather than JSON (the handler returns it whole)."""

    media_type: str


@dataclass
class Endpoint:
    method: str
    path: str
    handler: HandlerFn
    summary: str
    tag: str
    roles: tuple[PlatformRole, ...] | None
    body: type[Body] | None
    query: type[Query] | None
    response: Any
    status: int
    errors: tuple[int, ...]
    description: str = ""

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


@dataclass
class Api:
    endpoints: list[Endpoint] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        roles: tuple[PlatformRole, ...] | None = ANY_USER,
        body: type[Body] | None = None,
        query: type[Query] | None = None,
        response: Any = None,
        status: int = 200,
        errors: tuple[int, ...] = (),
    ) -> Callable[[HandlerFn], HandlerFn]:
        def register(fn: HandlerFn) -> HandlerFn:
            self.endpoints.append(Endpoint(
                method=method, path=path, handler=fn, summary=summary, tag=tag, roles=roles,
                body=body, query=query, response=response, status=status, errors=errors,
                description=(fn.__doc__ or "").strip(),
            ))
            return fn
        return register

    def install(self, app: web.Application) -> None:
        for ep in self.endpoints:
            app.router.add_route(ep.method, ep.path, _aiohttp_handler(ep))


def bearer_claims(request: web.Request) -> AccessClaims:
    """The verified claims of the request's bearer access token, or 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("missing bearer token")
    try:
        return verify_access(token.strip(), request.app[SETTINGS].jwt_secret)
    except TokenError as exc:
        raise unauthorized(str(exc)) from None


def active_account(user: User | None) -> User:
    if user is None or not user.active:
        raise unauthorized("account disabled or removed")
    return user


async def authenticate(request: web.Request) -> User:
    claims = bearer_claims(request)
    async with request.app[READ_SESSIONS]() as session:
        return active_account(await session.scalar(select(User).where(
            User.id == claims.user_id)))


def _aiohttp_handler(ep: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    response_adapter = (TypeAdapter(ep.response)
                        if ep.response is not None and not isinstance(ep.response, File)
                        else None)

    async def handle(request: web.Request) -> web.StreamResponse:
        user = None
        if ep.roles is not None:
            user = await authenticate(request)
            if ep.roles and not user.has_role(*ep.roles):
                raise forbidden(
                    "requires role " + " or ".join(r.value for r in ep.roles)
                )
        ctx = Ctx(request, user, request.app[SESSIONS], request.app[SETTINGS])
        kwargs: dict[str, Any] = {}
        try:
            if ep.query is not None:
                kwargs["query"] = ep.query.model_validate(dict(request.query))
            elif request.query:
                raise ApiError(422, "unknown query parameter", field=next(iter(request.query)))
            if ep.body is not None:
                kwargs["body"] = ep.body.model_validate_json(await request.read() or b"")
        except ValidationError as exc:
            raise from_validation(exc) from None
        for given in kwargs.values():
            # PostgreSQL text cannot hold NUL and no field of ours has a use for it: refuse
            # it here, naming the field, rather than fail at the database.
            path = _nul_path(given.model_dump())
            if path is not None:
                raise ApiError(422, "text may not contain NUL characters", field=path)
        result = await ep.handler(ctx, **kwargs)
        if result is None:
            return web.Response(status=ep.status if ep.status != 200 else 204)
        if isinstance(result, web.StreamResponse):
            return result
        assert response_adapter is not None, f"{ep.path} returned a body it does not declare"
        # Handlers may return ORM rows: validating them here is what maps them to the
        # declared response, so the body always matches the OpenAPI document.
        payload = response_adapter.validate_python(result, from_attributes=True)
        return web.Response(
            body=response_adapter.dump_json(payload), status=ep.status,
            content_type="application/json",
        )

    return handle

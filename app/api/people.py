"""The hospital network and its users."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sqlalchemy import ColumnElement, and_, literal, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app import audit
from app.api.routing import ADMIN, ANY_USER, STAFF, Api, Body, Ctx, Out, Query
from app.api.schemas import Email, HospitalCode, Id, Limit, Name, NewPassword, Offset
from app.appkeys import LOGIN_THROTTLE
from app.auth.passwords import hash_password
from app.db.models import Hospital, Tier, User
from app.errors import ApiError, not_found
from app.roles import PlatformRole
from app.text_search import fold

# The languages the browser app is written in (frontend/src/i18n).
Language = Literal["vi", "en"]

api = Api()


class HospitalOut(Out):
    id: int
    code: str
    name: str
    tier: Tier
    parent_id: int | None


class HospitalIn(Body):
    code: HospitalCode
    name: Name
    tier: Tier
    parent_id: Id | None = None


class HospitalQuery(Query):
    tier: Tier | None = None
    parent_id: Id | None = None
    q: str | None = Field(default=None, min_length=1, max_length=100,
                          description="words of the name or the code, in any case, with or "
                                      "without diacritics")


class UserOut(Out):
    id: int
    email: str
    name: str
    roles: list[PlatformRole]
    active: bool
    hospital: HospitalOut
    language: Language | None = Field(
        description="the app's language the user chose; null: the browser's decides")


class MePatch(Body):
    language: Language


class UserIn(Body):
    email: Email
    name: Name
    password: NewPassword
    roles: list[PlatformRole] = Field(min_length=1, max_length=3)
    hospital_id: Id


class UserPatch(Body):
    name: Name | None = None
    roles: list[PlatformRole] | None = Field(default=None, min_length=1, max_length=3)
    active: bool | None = None
    password: NewPassword | None = None


class UserQuery(Query):
    hospital_id: Id | None = None
    tier: Tier | None = None
    role: PlatformRole | None = None
    q: str | None = Field(default=None, min_length=1, max_length=100,
                          description="words of the name, in any case, with or without "
                                      "diacritics (Nguyen finds Nguyễn), or part of the e-mail")
    limit: Limit = 100
    offset: Offset = 0


class UserPage(Out):
    items: list[UserOut]
    total: int


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _words_start(key_column: InstrumentedAttribute[str], text: str) -> ColumnElement[bool]:
    """Each word of ``text`` starts a word of the folded name: "thi anh" finds "Nguyễn Thị
    Ánh", "ng" finds it too, "guyen" does not."""
    spaced = literal(" ") + key_column
    return and_(true(), *(spaced.like(f"% {_escaped(word)}%", escape="\\")
                          for word in fold(text).split()))


def _roles(roles: list[PlatformRole]) -> list[str]:
    return sorted({r.value for r in roles})


async def _hospital(session: AsyncSession, hospital_id: int, field: str) -> Hospital:
    hospital = await session.get(Hospital, hospital_id)
    if hospital is None:
        raise ApiError(422, "no such hospital", field=field)
    return hospital


@api.route("GET", "/api/hospitals", summary="List the hospital network", tag="people",
           roles=ANY_USER, query=HospitalQuery, response=list[HospitalOut])
async def list_hospitals(ctx: Ctx, query: HospitalQuery) -> list[Hospital]:
    stmt = select(Hospital).order_by(Hospital.tier, Hospital.name)
    if query.tier is not None:
        stmt = stmt.where(Hospital.tier == query.tier)
    if query.parent_id is not None:
        stmt = stmt.where(Hospital.parent_id == query.parent_id)
    if query.q is not None:
        stmt = stmt.where(or_(_words_start(Hospital.name_search, query.q),
                              Hospital.code == query.q.strip().upper()))
    async with ctx.sessions() as session:
        return list(await session.scalars(stmt))


@api.route("POST", "/api/hospitals", summary="Add a hospital to the network", tag="people",
           roles=ADMIN, body=HospitalIn, response=HospitalOut, status=201, errors=(409,))
async def create_hospital_route(ctx: Ctx, body: HospitalIn) -> Hospital:
    async with ctx.sessions.begin() as session:
        return await create_hospital(session, body, actor=ctx.me, client_addr=ctx.client_addr)


async def create_hospital(session: AsyncSession, body: HospitalIn, *, actor: User | None,
                          client_addr: str = "") -> Hospital:
    """Shared by the API and the `hoichan create-hospital` command."""
    if body.parent_id is not None:
        await _hospital(session, body.parent_id, "parent_id")
    if await session.scalar(select(Hospital.id).where(Hospital.code == body.code)):
        raise ApiError(409, f"hospital code {body.code} already exists", field="code")
    hospital = Hospital(**body.model_dump())
    session.add(hospital)
    try:
        await session.flush()
    except IntegrityError:
        # Another request added the same code between our check and our insert.
        raise ApiError(409, f"hospital code {body.code} already exists", field="code") from None
    audit.record(session, "hospital.create", actor=actor, object_type="hospital",
                 object_id=hospital.id, client_addr=client_addr,
                 detail=body.model_dump(mode="json"))
    return hospital


@api.route("GET", "/api/hospitals/{hospital_id}", summary="One hospital", tag="people",
           roles=ANY_USER, response=HospitalOut)
async def get_hospital(ctx: Ctx) -> Hospital:
    async with ctx.sessions() as session:
        hospital = await session.get(Hospital, ctx.path_id("hospital_id"))
    if hospital is None:
        raise not_found("hospital")
    return hospital


@api.route("GET", "/api/me", summary="The logged-in user", tag="people", roles=ANY_USER,
           response=UserOut)
async def me(ctx: Ctx) -> User:
    return ctx.me


@api.route("PATCH", "/api/me", summary="Save the user's own settings (the app's language)",
           tag="people", roles=ANY_USER, body=MePatch, response=UserOut)
async def patch_me(ctx: Ctx, body: MePatch) -> User:
    async with ctx.sessions.begin() as session:
        user = await session.get(User, ctx.me.id)
        if user is None:
            raise not_found("user")
        user.language = body.language
    return user


@api.route("GET", "/api/users", summary="Find users to invite", tag="people", roles=STAFF,
           query=UserQuery, response=UserPage)
async def list_users(ctx: Ctx, query: UserQuery) -> UserPage:
    stmt = select(User).join(Hospital, Hospital.id == User.hospital_id)
    if query.hospital_id is not None:
        stmt = stmt.where(User.hospital_id == query.hospital_id)
    if query.tier is not None:
        stmt = stmt.where(Hospital.tier == query.tier)
    if query.q is not None:
        # E-mails are stored lower-case (app/api/schemas.py, Email).
        stmt = stmt.where(or_(_words_start(User.name_search, query.q),
                              User.email.like(f"%{_escaped(query.q.strip().lower())}%",
                                              escape="\\")))
    async with ctx.sessions() as session:
        users = list(await session.scalars(stmt.order_by(User.name, User.id)))
    # Roles are a JSON list; filtering them in Python keeps one query for both databases.
    if query.role is not None:
        users = [u for u in users if query.role.value in u.roles]
    page = users[query.offset:query.offset + query.limit]
    return UserPage(items=[UserOut.model_validate(u) for u in page], total=len(users))


@api.route("POST", "/api/users", summary="Create a user", tag="people", roles=ADMIN,
           body=UserIn, response=UserOut, status=201, errors=(409,))
async def create_user_route(ctx: Ctx, body: UserIn) -> User:
    async with ctx.sessions.begin() as session:
        user = await create_user(session, body, actor=ctx.me, client_addr=ctx.client_addr)
    return user


async def create_user(session: AsyncSession, body: UserIn, *, actor: User | None,
                      client_addr: str = "") -> User:
    """Shared by the API and the `hoichan create-user` command."""
    hospital = await _hospital(session, body.hospital_id, "hospital_id")
    if await session.scalar(select(User.id).where(User.email == body.email)):
        raise ApiError(409, f"a user with e-mail {body.email} exists", field="email")
    user = User(email=body.email, name=body.name, roles=_roles(body.roles),
                hospital_id=hospital.id, password_hash=hash_password(body.password))
    user.hospital = hospital
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise ApiError(409, f"a user with e-mail {body.email} exists", field="email") from None
    audit.record(session, "user.create", actor=actor, object_type="user", object_id=user.id,
                 client_addr=client_addr,
                 detail={"email": user.email, "roles": user.roles, "hospital": hospital.code})
    return user


@api.route("GET", "/api/users/{user_id}", summary="One user", tag="people", roles=STAFF,
           response=UserOut)
async def get_user(ctx: Ctx) -> User:
    async with ctx.sessions() as session:
        user = await session.get(User, ctx.path_id("user_id"))
    if user is None:
        raise not_found("user")
    return user


@api.route("POST", "/api/users/{user_id}/unlock", summary="Let a locked account log in again",
           tag="people", roles=ADMIN, status=204)
async def unlock_user(ctx: Ctx) -> None:
    """Clears the account's failed logins (app/auth/throttle.py), so its owner, who called
    to say who they are, can log in now rather than in 15 minutes."""
    async with ctx.sessions.begin() as session:
        user = await session.get(User, ctx.path_id("user_id"))
        if user is None:
            raise not_found("user")
        throttle = ctx.request.app[LOGIN_THROTTLE]
        audit.record(session, "auth.unlock", actor=ctx.me, object_type="user",
                     object_id=user.id, client_addr=ctx.client_addr,
                     detail={"was_locked": await throttle.is_locked(user.email)})
        await throttle.unlock(user.email)


@api.route("PATCH", "/api/users/{user_id}", summary="Change a user's name, roles, password or "
           "active flag", tag="people", roles=ADMIN, body=UserPatch, response=UserOut)
async def patch_user(ctx: Ctx, body: UserPatch) -> User:
    """Deactivating a user stops their access tokens at once and their refresh tokens."""
    async with ctx.sessions.begin() as session:
        user = await session.get(User, ctx.path_id("user_id"))
        if user is None:
            raise not_found("user")
        if body.name is not None:
            user.name = body.name
        if body.roles is not None:
            user.roles = _roles(body.roles)
        if body.active is not None:
            user.active = body.active
        if body.password is not None:
            user.password_hash = hash_password(body.password)
        detail = body.model_dump(mode="json", exclude_none=True)
        if "password" in detail:
            detail["password"] = "changed"
        audit.record(session, "user.update", actor=ctx.me, object_type="user",
                     object_id=user.id, client_addr=ctx.client_addr, detail=detail)
    return user

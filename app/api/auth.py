"""Login, token refresh with rotation, logout."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.api.people import UserOut
from app.api.routing import ANY_USER, PUBLIC, Api, Body, Ctx, Out
from app.api.schemas import Email, Password
from app.appkeys import LOGIN_THROTTLE
from app.auth import passwords, tokens
from app.db.models import RefreshToken, User
from app.db.types import utcnow
from app.errors import ApiError, unauthorized

api = Api()


class LoginIn(Body):
    email: Email
    password: Password


class RefreshIn(Body):
    refresh_token: str


class TokenOut(Out):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    user: UserOut


async def _issue(session: AsyncSession, ctx: Ctx, user: User, family_id: str | None) -> TokenOut:
    settings = ctx.settings
    refresh = tokens.new_refresh_token()
    refresh_life = timedelta(days=settings.refresh_token_days)
    access_life = timedelta(minutes=settings.access_token_minutes)
    session.add(RefreshToken(
        id=refresh.id, family_id=family_id or refresh.id, user_id=user.id,
        token_hash=refresh.token_hash, expires_at=utcnow() + refresh_life,
    ))
    audit.record(session, "auth.token_issued", actor=user, object_type="user",
                 object_id=user.id, client_addr=ctx.client_addr,
                 detail={"refresh_token_id": refresh.id, "family": family_id or refresh.id})
    return TokenOut(
        access_token=tokens.issue_access(user.id, user.roles, settings.jwt_secret, access_life),
        expires_in=int(access_life.total_seconds()),
        refresh_token=refresh.token,
        refresh_expires_in=int(refresh_life.total_seconds()),
        user=UserOut.model_validate(user),
    )


@api.route("POST", "/api/auth/login", summary="Log in with e-mail and password", tag="auth",
           roles=PUBLIC, body=LoginIn, response=TokenOut, errors=(401, 429))
async def login(ctx: Ctx, body: LoginIn) -> TokenOut:
    """Gives a short-lived access JWT and a refresh token. Failures are audited and answer
    the same whether the account is unknown, disabled or the password wrong. After a few
    failures for an account (or many from one address) attempts must wait, growing, then
    the account is locked for 15 minutes: 429 with Retry-After, the password unread."""
    throttle = ctx.request.app[LOGIN_THROTTLE]
    refusal = await throttle.check(body.email, ctx.client_addr)
    if refusal is not None:
        async with ctx.sessions.begin() as session:
            audit.record(session, "auth.login", actor=None, actor_email=body.email,
                         outcome=audit.FAILURE,
                         object_type="user", client_addr=ctx.client_addr,
                         detail={"reason": "locked" if refusal.locked else "throttled",
                                 "retry_after_s": refusal.retry_after_s})
        raise ApiError(429, f"too many failed logins: try again in {refusal.retry_after_s} s",
                       headers={"Retry-After": str(refusal.retry_after_s)})
    async with ctx.sessions.begin() as session:
        user = await session.scalar(select(User).where(User.email == body.email))
        # Off the loop: a hash costs tens of milliseconds of CPU, and a flood of guesses
        # must not stall the rooms this process serves.
        ok = await asyncio.to_thread(
            passwords.verify_password, user.password_hash if user else None, body.password)
        if not ok or user is None or not user.active:
            reason = "unknown account" if user is None else (
                "account disabled" if ok else "wrong password")
            audit.record(session, "auth.login", actor=user, actor_email=body.email,
                         outcome=audit.FAILURE, object_type="user",
                         object_id=user.id if user else "", client_addr=ctx.client_addr,
                         detail={"reason": reason})
            if await throttle.failed(body.email, ctx.client_addr):
                audit.record(session, "auth.lockout", actor=user, actor_email=body.email,
                             outcome=audit.FAILURE, object_type="user",
                             object_id=user.id if user else "", client_addr=ctx.client_addr,
                             detail={"failures": throttle.account.lock_at,
                                     "locked_s": int(throttle.account.lockout_s)})
            failed = True
        else:
            failed = False
            if passwords.needs_rehash(user.password_hash):
                user.password_hash = passwords.hash_password(body.password)
            audit.record(session, "auth.login", actor=user, object_type="user",
                         object_id=user.id, client_addr=ctx.client_addr)
            out = await _issue(session, ctx, user, None)
    if failed:
        raise unauthorized("wrong e-mail or password")
    await throttle.succeeded(body.email)
    return out


@api.route("POST", "/api/auth/refresh", summary="Exchange a refresh token for new tokens",
           tag="auth", roles=PUBLIC, body=RefreshIn, response=TokenOut, errors=(401,))
async def refresh(ctx: Ctx, body: RefreshIn) -> TokenOut:
    """Rotates: the presented refresh token is spent. Presenting a spent token again is
    taken as theft and revokes every token of that login."""
    try:
        token_id, token_hash = tokens.split_refresh_token(body.refresh_token)
    except tokens.TokenError as exc:
        raise unauthorized(str(exc)) from None
    async with ctx.sessions.begin() as session:
        row = await session.get(RefreshToken, token_id, with_for_update=True)
        if row is None or not tokens.same_hash(row.token_hash, token_hash):
            raise unauthorized("invalid refresh token")
        user = await session.get(User, row.user_id)
        assert user is not None
        now = utcnow()
        if row.revoked_at is not None:
            await session.execute(
                update(RefreshToken)
                .where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            audit.record(session, "auth.refresh_reuse", actor=user, outcome=audit.DENIED,
                         object_type="refresh_token", object_id=row.id,
                         client_addr=ctx.client_addr, detail={"family": row.family_id})
            reused = True
        else:
            reused = False
            if row.expires_at <= now or not user.active:
                raise unauthorized("refresh token expired" if user.active
                                   else "account disabled")
            row.revoked_at = now
            out = await _issue(session, ctx, user, row.family_id)
    if reused:
        raise unauthorized("refresh token already used; please log in again")
    return out


@api.route("POST", "/api/auth/logout", summary="Revoke a refresh token", tag="auth",
           roles=ANY_USER, body=RefreshIn, status=204, errors=(401,))
async def logout(ctx: Ctx, body: RefreshIn) -> None:
    """Revokes the whole login (the token and every token rotated from it)."""
    try:
        token_id, token_hash = tokens.split_refresh_token(body.refresh_token)
    except tokens.TokenError as exc:
        raise ApiError(422, str(exc), field="refresh_token") from None
    async with ctx.sessions.begin() as session:
        row = await session.get(RefreshToken, token_id)
        if row is None or row.user_id != ctx.me.id or not tokens.same_hash(row.token_hash,
                                                                            token_hash):
            raise ApiError(422, "unknown refresh token", field="refresh_token")
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        audit.record(session, "auth.logout", actor=ctx.me, object_type="refresh_token",
                     object_id=row.id, client_addr=ctx.client_addr)

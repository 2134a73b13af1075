"""JWTs (HS256 only) for API access and room joins; opaque rotating refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

ALGORITHM = "HS256"
ISSUER = "hoichan"
ACCESS = "access"
JOIN = "join"


class TokenError(Exception):
    """The token is missing, malformed, expired, tampered with or of the wrong kind."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    roles: tuple[str, ...]
    expires_at: datetime


@dataclass(frozen=True)
class JoinClaims:
    """What the signaling server needs to admit someone to a room, without a database read."""

    user_id: int
    consultation_id: int
    room_role: str
    name: str
    hospital_code: str
    hospital_name: str
    tier: str
    expires_at: datetime


def _encode(claims: dict[str, Any], secret: str, lifetime: timedelta, now: datetime) -> str:
    payload = {
        **claims,
        "iss": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def _decode(token: str, secret: str, kind: str) -> dict[str, Any]:
    try:
        # algorithms is a fixed list: a token claiming "none" or RS256 is refused outright.
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "typ", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    if claims.get("typ") != kind:
        raise TokenError(f"not an {kind} token" if kind == ACCESS else f"not a {kind} token")
    return claims


def issue_access(user_id: int, roles: list[str], secret: str, lifetime: timedelta,
                 now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return _encode({"sub": str(user_id), "typ": ACCESS, "roles": roles}, secret, lifetime, now)


def verify_access(token: str, secret: str) -> AccessClaims:
    claims = _decode(token, secret, ACCESS)
    try:
        return AccessClaims(
            user_id=int(claims["sub"]),
            roles=tuple(claims.get("roles", ())),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except (TypeError, ValueError):
        raise TokenError("invalid token: bad subject") from None


def issue_join(claims: JoinClaims, secret: str, now: datetime) -> str:
    body = {
        "sub": str(claims.user_id),
        "typ": JOIN,
        "room": claims.consultation_id,
        "room_role": claims.room_role,
        "name": claims.name,
        "hospital": {"code": claims.hospital_code, "name": claims.hospital_name,
                     "tier": claims.tier},
    }
    return _encode(body, secret, claims.expires_at - now, now)


def verify_join(token: str, secret: str) -> JoinClaims:
    claims = _decode(token, secret, JOIN)
    try:
        hospital = claims["hospital"]
        return JoinClaims(
            user_id=int(claims["sub"]),
            consultation_id=int(claims["room"]),
            room_role=str(claims["room_role"]),
            name=str(claims["name"]),
            hospital_code=str(hospital["code"]),
            hospital_name=str(hospital["name"]),
            tier=str(hospital["tier"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except (KeyError, TypeError, ValueError):
        raise TokenError("invalid token: missing room claims") from None


@dataclass(frozen=True)
class NewRefreshToken:
    id: str
    token: str
    token_hash: str


def new_refresh_token() -> NewRefreshToken:
    """``<id>.<secret>``: the id finds the row, the secret is only ever stored hashed."""
    token_id = secrets.token_hex(16)
    secret = secrets.token_urlsafe(32)
    return NewRefreshToken(token_id, f"{token_id}.{secret}", hash_secret(secret))


def split_refresh_token(token: str) -> tuple[str, str]:
    token_id, sep, secret = token.partition(".")
    if not sep or len(token_id) != 32 or not secret:
        raise TokenError("malformed refresh token")
    return token_id, hash_secret(secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return secrets.compare_digest(a, b)

"""Time-limited TURN credentials: the TURN REST API scheme (draft-uberti-behave-turn-rest)
that coturn checks with ``use-auth-secret`` and ``static-auth-secret``.

coturn holds no user list: it recomputes the password from the username with the secret it
shares with us and refuses a username whose expiry has passed. So a credential handed out
with a join token stops opening new allocations on its own, and nothing needs revoking.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class TurnCredential:
    username: str
    credential: str
    expires_at: datetime


def turn_password(secret: str, username: str) -> str:
    """base64(HMAC-SHA1(secret, username)), as coturn derives it."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def issue_turn_credential(secret: str, user_id: int, ttl: timedelta,
                          now: datetime) -> TurnCredential:
    """Username ``<unix expiry>:<user id>``: the expiry is what coturn checks, the user id
    lets its logs name who relayed."""
    expires = int((now + ttl).timestamp())
    username = f"{expires}:{user_id}"
    return TurnCredential(username, turn_password(secret, username),
                          datetime.fromtimestamp(expires, now.tzinfo))

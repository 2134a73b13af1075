"""The one error type a client ever sees: a stable code and a human-readable message."""

from __future__ import annotations

from typing import Any

# Codes a client can act on; docs/signaling.md lists when each is sent.
AUTH_REQUIRED = "auth_required"
INVALID_TOKEN = "invalid_token"
TOKEN_EXPIRED = "token_expired"
WRONG_ROOM = "wrong_room"
ROOM_CLOSED = "room_closed"
REMOVED = "removed"
ROOM_FULL = "room_full"
NOT_JOINED = "not_joined"
IN_LOBBY = "in_lobby"
UNKNOWN_EVENT = "unknown_event"
INVALID_PAYLOAD = "invalid_payload"
PAYLOAD_TOO_LARGE = "payload_too_large"
RATE_LIMITED = "rate_limited"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
CONFLICT = "conflict"
MEDIA_ERROR = "media_error"
INVALID_SDP = "invalid_sdp"
INVALID_CANDIDATE = "invalid_candidate"
UNKNOWN_CONNECTION = "unknown_connection"
NEGOTIATION_STATE = "negotiation_state"
INTERNAL = "internal_error"


class SignalingError(Exception):
    """Refuses one client event (or a connection) without touching any room state."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}

"""Exceptions raised by the SFU API.

Every failure a caller can cause (bad SDP, wrong participant, wrong order of
calls) has its own type, so signaling can answer the client with a clear error
and carry on: none of them leaves the room in a changed state.
"""


class MediaError(Exception):
    """Base class of every error raised by :mod:`media`."""


class UnsupportedAiortcVersion(MediaError, RuntimeError):
    """The installed aiortc/aioice is not the version the hooks were written for."""


class SdpError(MediaError, ValueError):
    """An offer or answer could not be parsed or is not acceptable to the SFU."""


class IceCandidateError(MediaError, ValueError):
    """A remote ICE candidate could not be parsed or applied."""


class UnknownParticipant(MediaError, KeyError):
    """No participant with this id is in the room."""

    def __str__(self) -> str:
        # KeyError would print the repr of its argument.
        return str(self.args[0]) if self.args else ""


class DuplicateParticipant(MediaError, ValueError):
    """A participant with this id is already in the room."""


class PublishNotAllowed(MediaError, PermissionError):
    """The participant joined as subscribe-only and has no publish connection."""


class UnknownPeerConnection(MediaError, LookupError):
    """The participant has no peer connection of that kind (yet)."""


class NegotiationStateError(MediaError, RuntimeError):
    """The call does not fit the current offer/answer state of the connection."""

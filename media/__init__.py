"""Hoichan SFU: encoded RTP forwarding between aiortc peer connections.

Signaling uses :class:`Room` (one per consultation) and the types below; see
docs/media.md for the call sequence.
"""

from .config import SfuConfig
from .errors import (
    DuplicateParticipant,
    IceCandidateError,
    MediaError,
    NegotiationStateError,
    PublishNotAllowed,
    SdpError,
    UnknownParticipant,
    UnknownPeerConnection,
    UnsupportedAiortcVersion,
)
from .ice import IceCandidate, configure_host_addresses
from .participant import Participant, PeerConnectionKind, PublishedTrack, Publisher, Subscription
from .room import ConnectionStateCallback, NegotiationNeededCallback, Room

__all__ = [
    "ConnectionStateCallback",
    "DuplicateParticipant",
    "IceCandidate",
    "IceCandidateError",
    "MediaError",
    "NegotiationNeededCallback",
    "NegotiationStateError",
    "Participant",
    "PeerConnectionKind",
    "PublishNotAllowed",
    "PublishedTrack",
    "Publisher",
    "Room",
    "SdpError",
    "SfuConfig",
    "Subscription",
    "UnknownParticipant",
    "UnknownPeerConnection",
    "UnsupportedAiortcVersion",
    "configure_host_addresses",
]

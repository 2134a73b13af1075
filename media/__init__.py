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
from .participant import (
    Participant,
    PeerConnectionKind,
    PublishedTrack,
    Publisher,
    SubscribeOffer,
    Subscription,
)
from .policy import ForwardingDecision, LinkState, VideoTrack
from .room import (
    ConnectionStateCallback,
    ForwardingChangedCallback,
    LinkStateCallback,
    NegotiationNeededCallback,
    Room,
)

__all__ = [
    "ConnectionStateCallback",
    "DuplicateParticipant",
    "ForwardingChangedCallback",
    "ForwardingDecision",
    "IceCandidate",
    "IceCandidateError",
    "LinkState",
    "LinkStateCallback",
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
    "SubscribeOffer",
    "Subscription",
    "UnknownParticipant",
    "UnknownPeerConnection",
    "UnsupportedAiortcVersion",
    "VideoTrack",
    "configure_host_addresses",
]

"""Payloads of the client → server events. Anything a model does not describe is refused.

Strict models: no coercion ("true" is not a boolean), unknown fields refused, sizes bounded
per field on top of the per-event byte limit.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ParticipantId = Annotated[str, StringConstraints(pattern=r"^p-[0-9a-f]{12}$")]
# The whole event is bounded by HOICHAN_SIGNALING_MAX_EVENT_BYTES; this only keeps a
# schema-valid SDP from being absurd on its own.
Sdp = Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Empty(Payload):
    pass


class Target(Payload):
    participant_id: ParticipantId


class AutoAdmit(Payload):
    on: bool


class Mute(Payload):
    participant_id: ParticipantId
    audio: bool = True
    video: bool = False


class Remove(Payload):
    participant_id: ParticipantId
    reason: Annotated[str, StringConstraints(max_length=200)] = ""


class SetRole(Payload):
    participant_id: ParticipantId
    role: Literal["presenter", "participant", "observer"]


class GiveControl(Payload):
    #: None takes control back from whoever holds it.
    participant_id: ParticipantId | None


class LowerHand(Payload):
    #: None (or omitted) lowers the sender's own hand; another's needs the host.
    participant_id: ParticipantId | None = None


class ChatSend(Payload):
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=2000)]
    #: Echoed back in the sender's ack and the broadcast, to match an optimistic UI entry.
    client_id: Annotated[str, StringConstraints(max_length=64)] | None = None


class MediaStateIn(Payload):
    mic: bool = False
    camera: bool = False
    screen: bool = False
    speaking: bool = False


class Publish(Payload):
    sdp: Sdp


class SubscribeAnswer(Payload):
    sdp: Sdp


class Candidate(Payload):
    """A browser's ``RTCIceCandidate.toJSON()``."""

    candidate: Annotated[str, StringConstraints(max_length=1024)]
    sdpMid: Annotated[str, StringConstraints(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=1024)] | None = None
    usernameFragment: Annotated[str, StringConstraints(max_length=256)] | None = None


class Ice(Payload):
    pc: Literal["publish", "subscribe"]
    #: None ends the client's candidates for that connection.
    candidate: Candidate | None

"""The room protocol's payloads: every client → server event (anything a model does not
describe is refused), and the server → client events the browser reads its state from.

Strict models: no coercion ("true" is not a boolean), unknown fields refused, sizes bounded
per field on top of the per-event byte limit. The browser's types are generated from these
models (signaling/wire_types.py, ``make wire-types``: frontend/src/wire/protocol.ts).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

ParticipantId = Annotated[str, StringConstraints(pattern=r"^p-[0-9a-f]{12}$")]


def _sdp_text(value: object) -> object:
    # A browser's RTCSessionDescription (or its toJSON()) is the likeliest mistake: say so.
    if isinstance(value, dict):
        raise PydanticCustomError(
            "sdp_object", "must be the SDP text as a string (RTCSessionDescription.sdp), "
            "not a {type, sdp} object")
    return value


# The whole event is bounded by HOICHAN_SIGNALING_MAX_EVENT_BYTES; this only keeps a
# schema-valid SDP from being absurd on its own.
Sdp = Annotated[str, StringConstraints(min_length=1, max_length=1_000_000),
                BeforeValidator(_sdp_text)]


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
    #: None: the host takes control back himself (as ``control:take``).
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
    #: The ``version`` of the offer answered; when given, an answer to any other offer
    #: than the outstanding one is refused.
    version: Annotated[int, Field(ge=1)] | None = None


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


Uid = Annotated[str, StringConstraints(max_length=64, pattern=r"^[0-9]+(\.[0-9]+)*$")]
Coordinate = Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)]
# JSON arrays: strict models take lists, not tuples.
Pair = Annotated[list[Coordinate], Field(min_length=2, max_length=2)]
Point = Annotated[list[Coordinate], Field(min_length=3, max_length=3)]


class Viewport(Payload):
    """What one viewport shows, as the controller's viewer has it."""

    study_uid: Uid | None = None
    series_uid: Uid | None = None
    #: The image shown; clients sort a series alike, but the instance (and its frame) is
    #: what identifies it, the index only a hint.
    sop_uid: Uid | None = None
    frame: Annotated[int, Field(ge=1, le=100_000)] = 1
    image_index: Annotated[int, Field(ge=0, le=100_000)] = 0
    window_center: Coordinate | None = None
    window_width: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] | None = None
    zoom: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] = 1.0
    pan: Pair = Field(default_factory=lambda: [0.0, 0.0])
    rotation: Annotated[float, Field(ge=-360, le=360, allow_inf_nan=False)] = 0.0
    flip_h: bool = False
    flip_v: bool = False
    invert: bool = False
    cine_playing: bool = False
    cine_fps: Annotated[float, Field(ge=1, le=120, allow_inf_nan=False)] = 15.0


class Measurement(Payload):
    id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    tool: Literal["length", "angle", "roi", "arrow"]
    viewport: Annotated[int, Field(ge=0, le=1)] = 0
    #: Patient (world) coordinates in millimetres in this frame of reference, so every
    #: screen size draws them alike.
    frame_of_reference_uid: Uid | None = None
    points: list[Point] = Field(min_length=1, max_length=16)
    label: Annotated[str, StringConstraints(max_length=200)] = ""


class ViewerStateIn(Payload):
    """The whole shared view: the controller sends it after each change (throttled), the
    server keeps the latest for late joiners and fans it out."""

    viewports: list[Viewport] = Field(min_length=1, max_length=2)
    active: Annotated[int, Field(ge=0, le=1)] = 0
    measurements: list[Measurement] = Field(default_factory=list, max_length=200)


class PointerIn(Payload):
    """The laser pointer as fractions of the image's columns and rows (0-1), so it lands on
    the same anatomy however each screen fits the image; None hides it."""

    viewport: Annotated[int, Field(ge=0, le=1)] = 0
    x: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    y: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None


# Server → client. Built through these models, so what the server sends is what the browser's
# generated types say.

#: Why control changed: a handover by someone (``given``, ``taken``, ``released``), or a
#: member's arrival, departure or role moving the driver down or up the line.
ControlReason = Literal["given", "taken", "released", "left", "reconnecting", "resumed",
                        "joined", "role_changed"]


class ControlChanged(Payload):
    """``control:changed``, whenever the holder or the driver changes. Who drives is worked
    out by the server alone (signaling/viewer.py); clients read it here and in the snapshot
    (``control_holder``, ``driver``)."""

    #: Whom the host gave control to (or the host, once he took it); None: nobody holds it.
    holder: ParticipantId | None
    #: Who drives the viewer now: the only member whose ``viewer:state`` is accepted.
    driver: ParticipantId | None
    #: Who acted (None when nobody did: an arrival, a departure, a dropped socket).
    by: ParticipantId | None
    reason: ControlReason


class SharedViewer(Payload):
    """``viewer:state`` to the room (and the snapshot's ``viewer``): the driver's state as the
    server keeps it, numbered."""

    seq: Annotated[int, Field(ge=1)]
    by: ParticipantId
    state: ViewerStateIn


class PointerOut(Payload):
    """``viewer:pointer`` to the room; x and y None: hidden."""

    by: ParticipantId
    viewport: Annotated[int, Field(ge=0, le=1)]
    x: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None
    y: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None

"""The relay between SFU workers of one machine: message framing on a Unix stream socket.

A room spread over workers is received in its *home* worker; every other worker carrying
some of its subscribers holds a *mirror* fed by the home over one connection per room
(media/relay_home.py, media/relay_edge.py). Each message is a 12-byte header followed by
its payload::

    kind u8 | flags u8 | track u16 | timestamp u32 | length u32 | payload

Frames carry the encoded frame as the publisher's receiver depacketized it, with its RTP
timestamp; control messages carry JSON. Frames are never decoded, and a frame crosses
the socket once per mirror, however many subscribers the mirror feeds.
"""

import asyncio
import json
import logging
import os
import socket
import struct
from enum import IntEnum
from typing import Any, NamedTuple, cast

from aiortc import RTCRtpCodecParameters
from aiortc.rtcrtpparameters import RTCRtcpFeedback

from .errors import MediaError

logger = logging.getLogger(__name__)

HEADER = struct.Struct("!BBHII")
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
#: No encoded frame of ours comes near this; a larger length means a broken stream.
MAX_PAYLOAD = 8 * 1024 * 1024
KEYFRAME_FLAG = 1


class Kind(IntEnum):
    #: mirror → home: feed me this room (JSON ``{"room": id}``).
    ATTACH = 1
    #: home → mirror: a published track under number ``track`` (JSON, :func:`track_info`).
    TRACK = 2
    #: home → mirror: track ``track`` ended.
    END = 3
    #: home → mirror: presenter and speaker order (JSON).
    VIEW = 4
    #: home → mirror: one encoded frame of track ``track``.
    FRAME = 5
    #: mirror → home: a subscriber needs a keyframe of track ``track``.
    KEYFRAME = 6
    #: mirror → home: the mirror's outbound stream stats (JSON list), once per stats round.
    STATS = 7


class RelayProtocolError(MediaError):
    """The other worker sent something that is not a relay message."""


class Message(NamedTuple):
    # A tuple, not a dataclass: one is made for every relayed frame.
    kind: Kind
    flags: int
    track: int
    timestamp: int
    payload: bytes

    def json(self) -> Any:
        return json.loads(self.payload)


def encode(kind: Kind, payload: bytes = b"", *, track: int = 0, timestamp: int = 0,
           flags: int = 0) -> bytes:
    return HEADER.pack(kind, flags, track, timestamp, len(payload)) + payload


def encode_json(kind: Kind, value: Any, *, track: int = 0) -> bytes:
    return encode(kind, json.dumps(value, separators=(",", ":")).encode(), track=track)


def frame_header(track: int, timestamp: int, keyframe: bool, length: int) -> bytes:
    return HEADER.pack(Kind.FRAME, KEYFRAME_FLAG if keyframe else 0, track, timestamp, length)


class Reader:
    """Splits a byte stream into messages; keeps an incomplete tail for the next chunk."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        buffer = self._buffer
        buffer += data
        messages: list[Message] = []
        offset = 0
        size = len(buffer)
        view = memoryview(buffer)
        try:
            while size - offset >= HEADER.size:
                kind, flags, track, timestamp, length = HEADER.unpack_from(view, offset)
                if length > MAX_PAYLOAD:
                    raise RelayProtocolError(f"relay message of {length} bytes")
                end = offset + HEADER.size + length
                if end > size:
                    break
                try:
                    message_kind = Kind(kind)
                except ValueError:
                    raise RelayProtocolError(f"unknown relay message kind {kind}") from None
                messages.append(Message(message_kind, flags, track, timestamp,
                                        view[offset + HEADER.size:end].tobytes()))
                offset = end
        finally:
            view.release()  # a bytearray with a live view cannot shrink
            del buffer[:offset]
        return messages


def same_user(sock: Any) -> bool:
    """Whether the process at the other end of a Unix socket runs as this one's user.

    An abstract socket has no file permissions: any local process could connect and be
    sent a consultation's video, or bind a worker's name while it restarts and feed the
    mirrors. Both ends check their peer's credentials from the kernel (SO_PEERCRED).
    """
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    _pid, uid, _gid = _PEERCRED.unpack(creds)
    return bool(uid == os.getuid())


class RelayEnd(asyncio.Protocol):
    """One end of a relay connection: hands each message to :meth:`handle`; a peer that
    sends something else, or runs as another user, is dropped."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._reader = Reader()

    def handle(self, message: Message) -> None:
        raise NotImplementedError

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not same_user(transport.get_extra_info("socket")):
            logger.warning("relay: refusing %r: its peer runs as another user", self)
            transport.close()
            return
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            for message in self._reader.feed(data):
                self.handle(message)
        except (RelayProtocolError, ValueError, KeyError, TypeError) as exc:
            logger.warning("relay: dropping %r, which sent %r", self, exc)
            self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)


def track_info(publisher_id: str, track_id: str, kind: str, mid: str,
               codec: RTCRtpCodecParameters, screen_share: bool) -> dict[str, Any]:
    return {
        "publisher_id": publisher_id, "track_id": track_id, "kind": kind, "mid": mid,
        "screen_share": screen_share,
        "codec": {
            "mimeType": codec.mimeType, "clockRate": codec.clockRate,
            "channels": codec.channels, "payloadType": codec.payloadType,
            "parameters": dict(codec.parameters),
            "rtcpFeedback": [[fb.type, fb.parameter] for fb in codec.rtcpFeedback],
        },
    }


def codec_from_info(info: dict[str, Any]) -> RTCRtpCodecParameters:
    c = info["codec"]
    return RTCRtpCodecParameters(
        mimeType=c["mimeType"], clockRate=c["clockRate"], channels=c["channels"],
        payloadType=c["payloadType"], parameters=c["parameters"],
        rtcpFeedback=[RTCRtcpFeedback(type=t, parameter=p) for t, p in c["rtcpFeedback"]])

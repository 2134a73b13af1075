"""The mirror side of the relay: a room's subscribers carried by a worker other than the
room's home get its published tracks through a :class:`RoomMirror`, which feeds a local
:class:`media.room.Room` (media/relay_wire.py, media/relay_home.py).

Every published track of the home becomes a local :class:`media.forwarder.Source` fed
with the home's frames, so the mirror room's subscribers, forwarding policy and downlink
checks work as in the home's own room. What the policy needs from the publishers (who is
presenting, who spoke last) comes with the frames; keyframe requests go back to the home.
"""

import asyncio
import logging
import socket
from typing import Any

from .config import SfuConfig
from .errors import MediaError
from .forwarder import Source
from .keyframes import KeyframeRequester
from .relay_wire import (
    Kind,
    Message,
    RelayEnd,
    RelayProtocolError,
    codec_from_info,
    encode,
    encode_json,
    same_user,
)
from .room import Room

logger = logging.getLogger(__name__)


class RoomMirror(RelayEnd):
    """Feeds ``room`` (this worker's share of a room's subscribers) from its home worker."""

    def __init__(self, room: Room, room_id: int, home: str, address: str,
                 config: SfuConfig) -> None:
        super().__init__()
        self.room = room
        self.room_id = room_id
        #: The worker receiving the room's publishers.
        self.home = home
        self._address = address
        self._config = config
        self._sources: dict[int, Source] = {}
        self.closed = False

    async def connect(self) -> None:
        """Attach to the home; :class:`MediaError` if it does not listen."""
        loop = asyncio.get_running_loop()
        # Connected here, not by the loop: uvloop cuts an abstract name at its leading NUL.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, self._address)
            if not same_user(sock):
                raise OSError("its socket is held by another user")
            await loop.create_unix_connection(lambda: self, sock=sock)
        except OSError as exc:
            sock.close()
            self.closed = True
            raise MediaError(f"the room's home worker {self.home} does not answer: {exc}") \
                from exc
        self.write(encode_json(Kind.ATTACH, {"room": self.room_id}))

    def report(self, outbound: list[dict[str, Any]]) -> None:
        """Send the home this worker's outbound stream stats of the room."""
        self.write(encode_json(Kind.STATS, outbound))

    def close(self) -> None:
        """Stop mirroring: the mirrored tracks end in the local room."""
        self.closed = True
        super().close()
        self._end_all()

    def __repr__(self) -> str:
        return f"<home {self.home} of room {self.room_id}>"

    def connection_lost(self, exc: Exception | None) -> None:
        was_closed, self.closed = self.closed, True
        self._end_all()
        if not was_closed:
            # The room moves to another home, whose adoption resets this worker's members.
            logger.warning("relay: room %s: home worker %s is gone", self.room_id, self.home)

    # -- messages --------------------------------------------------------------------

    def handle(self, message: Message) -> None:
        kind = message.kind
        if kind is Kind.FRAME:
            source = self._sources.get(message.track)
            if source is not None:
                source.on_frame(source.codec, message.payload, message.timestamp)
        elif kind is Kind.TRACK:
            self._published(message.track, message.json())
        elif kind is Kind.END:
            self._ended(message.track)
        elif kind is Kind.VIEW:
            view = message.json()
            self.room.follow(view["presenter"], list(view["speakers"]))
        else:
            raise RelayProtocolError(f"a home may not send {kind.name}")

    def _published(self, number: int, info: dict[str, Any]) -> None:
        self._ended(number)

        async def request_keyframe() -> None:
            self.write(encode(Kind.KEYFRAME, track=number))

        source = Source(
            publisher_id=str(info["publisher_id"]), track_id=str(info["track_id"]),
            kind=str(info["kind"]), mid=str(info["mid"]), codec=codec_from_info(info),
            keyframes=KeyframeRequester(request_keyframe, self._config.keyframe_request_interval),
            rate_window=self._config.rate_window_seconds,
            screen_share=bool(info["screen_share"]))
        self._sources[number] = source
        self.room.source_published(source)

    def _ended(self, number: int) -> None:
        source = self._sources.pop(number, None)
        if source is not None:
            source.end()
            self.room.source_ended(source)

    def _end_all(self) -> None:
        for number in list(self._sources):
            self._ended(number)

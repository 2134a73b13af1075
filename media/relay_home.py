"""The home side of the relay: a room's publishers are received in this worker, and every
other worker carrying some of its subscribers is fed from here (media/relay_wire.py).

Each connected mirror taps the room's sources: a frame is written to the mirror's socket as
the source fans it out, before any subscriber of this worker gets it. A mirror that cannot
keep up (its socket buffer above ``high_water``) loses frames rather than holding up the
room; its videos then resume at the next keyframe, which it is sent a request for, so its
subscribers' decoders never see a broken reference chain. Keyframe requests come back
from the mirrors and reach the publisher through the source's rate-limited requester.
"""

import asyncio
import logging
import socket
from typing import Any

from .forwarder import FrameTap, Source
from .relay_wire import (
    Kind,
    Message,
    RelayEnd,
    RelayProtocolError,
    encode,
    encode_json,
    frame_header,
    track_info,
)
from .room import Room

logger = logging.getLogger(__name__)

#: Bytes a mirror's socket may hold unsent before its frames are dropped: under a second
#: of a full room's published media (1.5 MB/s measured, bench/relay.py), on top of what
#: the kernel's socket buffer holds.
HIGH_WATER = 1024 * 1024


class RelayServer:
    """Listens for mirrors on a Unix socket; feeds each the room it attaches to."""

    def __init__(self, address: str, *, high_water: int = HIGH_WATER) -> None:
        self.address = address
        self.high_water = high_water
        #: Frames not sent to a lagging mirror, since start (all mirrors, ever).
        self.frames_dropped = 0
        self._server: asyncio.AbstractServer | None = None
        self._rooms: dict[int, Room] = {}
        self._connected: set[_MirrorLink] = set()
        self._links: dict[int, set[_MirrorLink]] = {}

    async def start(self) -> None:
        """Listen; an address starting with NUL is in Linux's abstract namespace (no file
        to clean up after a killed worker)."""
        loop = asyncio.get_running_loop()
        # Bound here, not by the loop: uvloop hands a path to libuv as a C string, which
        # cuts an abstract name at its leading NUL.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.address)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._server = await loop.create_unix_server(self._connect, sock=sock)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for link in list(self._connected):
                link.close()
            await self._server.wait_closed()
            self._server = None

    def open(self, room_id: int, room: Room) -> None:
        """``room``'s publishers are received here now: feed its mirrors."""
        self._rooms[room_id] = room
        for link in self._links.get(room_id, ()):
            link.bind(room)

    def close(self, room_id: int) -> None:
        """The room's publishers are gone from here: its mirrors' tracks end. The mirrors
        stay connected, for the room may open here again."""
        self._rooms.pop(room_id, None)
        for link in self._links.get(room_id, ()):
            link.unbind()

    def mirrors(self, room_id: int) -> int:
        return len(self._links.get(room_id, ()))

    def mirror_stats(self, room_id: int) -> list[dict[str, Any]]:
        """The outbound stream stats the room's mirrors last reported."""
        return [entry for link in self._links.get(room_id, ()) for entry in link.stats]

    def connections(self) -> int:
        """Mirrors connected, in all rooms."""
        return len(self._connected)

    def _connect(self) -> "_MirrorLink":
        link = _MirrorLink(self)
        self._connected.add(link)
        return link

    def _attach(self, link: "_MirrorLink", room_id: int) -> None:
        self._links.setdefault(room_id, set()).add(link)
        room = self._rooms.get(room_id)
        if room is not None:
            link.bind(room)

    def _drop(self, link: "_MirrorLink") -> None:
        self._connected.discard(link)
        if link.room_id is not None:
            links = self._links.get(link.room_id)
            if links is not None:
                links.discard(link)
                if not links:
                    del self._links[link.room_id]
        link.unbind()


class _MirrorLink(RelayEnd):
    """One mirror's connection: a :class:`media.room.RoomListener` of the room it feeds."""

    def __init__(self, server: RelayServer) -> None:
        super().__init__()
        self._server = server
        self.room_id: int | None = None
        self._room: Room | None = None
        self._numbers: dict[Source, int] = {}
        self._by_number: dict[int, Source] = {}
        self._taps: dict[Source, FrameTap] = {}
        self._next_number = 0
        # Tracks whose frames were dropped: they resume at a keyframe.
        self._waiting: set[int] = set()
        self.stats: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"<mirror of room {self.room_id}>"

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._drop(self)

    def handle(self, message: Message) -> None:
        if message.kind is Kind.KEYFRAME:
            source = self._by_number.get(message.track)
            if source is not None and not source.ended:
                source.keyframes.request()
        elif message.kind is Kind.ATTACH and self.room_id is None:
            self.room_id = int(message.json()["room"])
            self._server._attach(self, self.room_id)
        elif message.kind is Kind.STATS:
            stats = message.json()
            if not isinstance(stats, list):
                raise RelayProtocolError("relay stats must be a list")
            self.stats = stats
        else:
            raise RelayProtocolError(f"a mirror may not send {message.kind.name}")

    # -- the room ------------------------------------------------------------------

    def bind(self, room: Room) -> None:
        self.unbind()
        self._room = room
        room.attach(self)

    def unbind(self) -> None:
        if self._room is not None:
            self._room.detach(self)
            self._room = None
        for source in list(self._numbers):
            self.source_ended(source)

    def source_published(self, source: Source) -> None:
        number = self._number()
        self._numbers[source] = number
        self._by_number[number] = source
        info = track_info(source.publisher_id, source.track_id, source.kind, source.mid,
                          source.codec, source.screen_share)
        self.write(encode_json(Kind.TRACK, info, track=number))
        tap = self._tap(number, source)
        self._taps[source] = tap
        source.add_tap(tap)

    def source_ended(self, source: Source) -> None:
        number = self._numbers.pop(source, None)
        if number is None:
            return
        del self._by_number[number]
        self._waiting.discard(number)
        source.remove_tap(self._taps.pop(source))
        self.write(encode(Kind.END, track=number))

    def view_changed(self, presenter: str | None, speakers: list[str]) -> None:
        self.write(encode_json(Kind.VIEW, {"presenter": presenter, "speakers": speakers}))

    def _number(self) -> int:
        while self._next_number in self._by_number:
            self._next_number = (self._next_number + 1) % 65536
        number = self._next_number
        self._next_number = (number + 1) % 65536
        return number

    def _tap(self, number: int, source: Source) -> FrameTap:
        transport = self._transport
        assert transport is not None
        video = source.kind == "video"
        waiting = self._waiting
        server = self._server
        high_water = server.high_water

        def tap(data: bytes, timestamp: int, keyframe: bool) -> None:
            if transport.is_closing():
                return
            if transport.get_write_buffer_size() > high_water:
                server.frames_dropped += 1
                if video:
                    waiting.add(number)
                    source.keyframes.request()
                return
            if number in waiting:
                if not keyframe:
                    server.frames_dropped += 1
                    return
                waiting.discard(number)
            transport.writelines((frame_header(number, timestamp, keyframe, len(data)), data))

        return tap

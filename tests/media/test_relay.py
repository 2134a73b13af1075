"""A room spread over two SFU rooms joined by the relay (a real Unix socket), with real
aiortc peers: the publishers in the home room, a subscriber in the mirror room."""

import asyncio
import os
import socket
import subprocess
import sys
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from media_peers import (
    ClientPublisher,
    Harness,
    bounded,
    decode_all,
    frames_since,
    is_keyframe,
)

from media import SfuConfig
from media.errors import MediaError
from media.relay_edge import RoomMirror
from media.relay_home import RelayServer, _MirrorLink
from media.relay_wire import Kind, Reader, RelayProtocolError, encode, encode_json, frame_header
from tests.waiting import wait_for


def _address() -> str:
    return f"\0hoichan-test-relay-{os.getpid()}-{time.monotonic_ns()}"


class Spread:
    """``home`` receives the publishers; ``edge`` mirrors it for its own subscribers."""

    def __init__(self, config: SfuConfig) -> None:
        self.config = config
        self.home = Harness(config)
        self.edge = Harness(config)
        self.server = RelayServer(_address())
        self.mirror = RoomMirror(self.edge.room, 7, "home", self.server.address, config)

    async def start(self) -> None:
        await self.server.start()
        self.server.open(7, self.home.room)
        await self.mirror.connect()

    async def close(self, *peers) -> None:
        for peer in peers:
            await (peer.close() if hasattr(peer, "decode") else peer.pc.close())
        self.mirror.close()
        await self.server.stop()
        await self.home.room.close()
        await self.edge.room.close()


@bounded(60)
async def test_a_mirror_carries_the_tracks_follows_the_speaker_and_asks_for_keyframes():
    s = Spread(SfuConfig(last_n=1))
    await s.start()
    viewer = s.edge.subscriber("viewer", decode=False)
    a = await s.home.publisher("a")
    # "b" publishes at home and receives in the mirror room, as a spread room places it.
    s.home.room.add_publisher("b", receives=False)
    b = ClientPublisher(s.home.room, "b")
    await b.negotiate()
    b_view = s.edge.subscriber("b", decode=False)
    cam_a, cam_b = a.camera.sender.track.id, b.camera.sender.track.id
    try:
        await wait_for(lambda: len(viewer.arrivals.get(cam_a, [])) >= 20, 15, "a via the relay")
        assert is_keyframe("VP8", viewer.arrivals[cam_a][0][1])
        assert viewer.arrivals[cam_b] == []  # last-N = 1, nobody spoke: "a" only
        # The publisher's subscribe side is in the mirror: it gets "a", never itself.
        await wait_for(lambda: len(b_view.arrivals.get(cam_a, [])) >= 10, 10, "b gets a")
        assert cam_b not in b_view.arrivals
        assert s.home.room.subscriptions("b") == []  # nothing forwarded to "b" at home
        await wait_for(lambda: sum(1 for f in viewer.encoded if f[0] == "opus") >= 50, 5,
                       "audio of both")

        # "b" speaks at home; the mirror follows the home's speaker order.
        requests = b.keyframe_requests
        b.audio.loud = True
        await wait_for(lambda: s.edge.room.active_speakers()[:1] == ["b"], 5, "mirror follows")
        await wait_for(lambda: len(viewer.arrivals.get(cam_b, [])) >= 20, 10, "b resumes")
        # The mirror's subscriber resumed on a keyframe it asked the publisher for.
        assert is_keyframe("VP8", viewer.arrivals[cam_b][0][1])
        assert b.keyframe_requests > requests
        b.audio.loud = False

        before = len(viewer.arrivals[cam_a])
        a.audio.loud = True
        await wait_for(lambda: len(frames_since(viewer.arrivals[cam_a], before)) >= 20, 10,
                       "a again")
        assert is_keyframe("VP8", frames_since(viewer.arrivals[cam_a], before)[0])
        for cam in (cam_a, cam_b):
            frames = [("VP8", data, 0) for _, data, _ in viewer.arrivals[cam]]
            assert decode_all(frames) == len(frames)

        # The mirror's outbound stats reach the home for its room's stats.
        s.mirror.report((await s.edge.room.stats())["outbound"])
        await wait_for(lambda: bool(s.server.mirror_stats(7)), 5, "stats at home")
        assert {e["subscriber_id"] for e in s.server.mirror_stats(7)} == {"viewer", "b"}
    finally:
        await s.close(a, b, viewer, b_view)


@bounded(60)
async def test_tracks_end_in_the_mirror_when_the_publisher_leaves_or_the_home_goes():
    s = Spread(SfuConfig())
    await s.start()
    viewer = s.edge.subscriber("viewer", decode=False)
    a = await s.home.publisher("a")
    b = await s.home.publisher("b")
    try:
        await wait_for(lambda: len(viewer.pc.getTransceivers()) == 4, 10, "four tracks")
        await wait_for(lambda: len(s.edge.room.subscriptions("viewer")) == 4, 10, "subscribed")
        await s.home.room.remove_participant("a")
        await wait_for(lambda: {x.publisher_id for x in s.edge.room.subscriptions("viewer")}
                       == {"b"}, 10, "a's tracks end in the mirror")
        # The home's room closes (its last publisher left): the mirror keeps its link.
        s.server.close(7)
        await wait_for(lambda: s.edge.room.subscriptions("viewer") == [], 10, "all end")
        assert s.server.mirrors(7) == 1
        # It opens again: the mirror is fed again.
        s.server.open(7, s.home.room)
        await wait_for(lambda: len(s.edge.room.subscriptions("viewer")) == 2, 10, "b again")
        # The home worker dies: the mirror's tracks end.
        await s.server.stop()
        await wait_for(lambda: s.mirror.closed, 5, "mirror sees the home go")
        await wait_for(lambda: s.edge.room.subscriptions("viewer") == [], 5, "tracks end")
    finally:
        await s.close(a, b, viewer)


async def test_a_mirror_of_a_home_that_does_not_listen_fails_clearly():
    h = Harness(SfuConfig())
    mirror = RoomMirror(h.room, 1, "w9", _address(), SfuConfig())
    with pytest.raises(MediaError, match="w9 does not answer"):
        await mirror.connect()
    assert mirror.closed


class _Buffered(asyncio.Transport):
    """A transport whose socket buffer is as full as the test says."""

    def __init__(self) -> None:
        # The relay checks its peer's user on the socket: this process's own, here.
        self.ends = socket.socketpair(socket.AF_UNIX)
        super().__init__({"socket": self.ends[0]})
        self.buffered = 0
        self.written: list[bytes] = []

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def writelines(self, parts) -> None:
        self.written.append(b"".join(parts))


async def test_a_mirror_that_lags_loses_frames_and_resumes_at_a_keyframe():
    h = Harness(SfuConfig())
    h.room.add_publisher("a")
    publisher = ClientPublisher(h.room, "a")
    await publisher.negotiate()
    try:
        await wait_for(lambda: len(h.room.published_tracks()) == 2, 5, "published")
        server = RelayServer(_address(), high_water=1000)
        link = _MirrorLink(server)
        transport = _Buffered()
        link.connection_made(transport)  # type: ignore[arg-type]
        link.bind(h.room)
        video = next(src for src in h.room._sources if src.kind == "video")
        frames = lambda: [m for m in Reader().feed(b"".join(transport.written))  # noqa: E731
                          if m.kind is Kind.FRAME and m.track == link._numbers[video]]
        video.on_frame(video.codec, b"\x01delta", 10)
        assert len(frames()) == 1
        transport.buffered = 5000  # the mirror stops reading
        requests = video.keyframes.requests_received
        video.on_frame(video.codec, b"\x01delta", 20)
        assert len(frames()) == 1 and server.frames_dropped == 1
        assert video.keyframes.requests_received == requests + 1
        transport.buffered = 0  # it reads again: deltas wait for the keyframe
        video.on_frame(video.codec, b"\x01delta", 30)
        video.on_frame(video.codec, b"\x00key", 40)
        video.on_frame(video.codec, b"\x01delta", 50)
        sent = frames()
        assert [(m.timestamp, m.flags) for m in sent] == [(10, 0), (40, 1), (50, 0)]
        assert sent[1].payload == b"\x00key"
        link.unbind()
        assert [m.kind for m in Reader().feed(b"".join(transport.written))].count(Kind.END) == 2
    finally:
        await h.close(publisher)


# A process of another user on the machine: connects to a relay socket, asks for room 7
# and prints how many bytes it got before the end; or holds a worker's relay name.
INTRUDER = """
import os, socket, sys, time
os.setuid(65534)
address = bytes.fromhex(os.environ["RELAY"]).decode()
s = socket.socket(socket.AF_UNIX)
if sys.argv[1] == "connect":
    s.connect(address)
    s.settimeout(5)
    got = 0
    try:
        s.sendall(bytes.fromhex(os.environ["ATTACH"]))
        while chunk := s.recv(65536):
            got += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed by the relay
    print(got)
else:
    s.bind(address)
    s.listen()
    print("bound", flush=True)
    time.sleep(10)  # holds the name while the test tries it; killed when done
"""


def _intruder(mode: str, address: str) -> subprocess.Popen[str]:
    if os.getuid() != 0:
        pytest.skip("needs root to run a process as another user")
    env = {**os.environ, "RELAY": address.encode().hex(),
           "ATTACH": encode_json(Kind.ATTACH, {"room": 7}).hex()}
    return subprocess.Popen([sys.executable, "-c", INTRUDER, mode], env=env,
                            stdout=subprocess.PIPE, text=True)


@bounded(30)
async def test_another_user_can_neither_read_a_room_nor_pose_as_its_home():
    s = Spread(SfuConfig())
    await s.start()
    a = await s.home.publisher("a")
    try:
        await wait_for(lambda: len(s.home.room.published_tracks()) == 2, 10, "published")
        intruder = _intruder("connect", s.server.address)
        out, _ = await asyncio.to_thread(intruder.communicate, timeout=10)
        assert out.strip() == "0"  # closed at once: not one track, not one frame
        assert s.server.mirrors(7) == 1  # only our own mirror

        taken = _address()
        squatter = _intruder("bind", taken)
        try:
            assert squatter.stdout is not None
            assert await asyncio.to_thread(squatter.stdout.readline) == "bound\n"
            mirror = RoomMirror(s.edge.room, 7, "w9", taken, SfuConfig())
            with pytest.raises(MediaError, match="another user"):
                await mirror.connect()
        finally:
            squatter.kill()
            squatter.wait()
    finally:
        await s.close(a)


@given(st.lists(st.binary(max_size=300), max_size=12), st.integers(1, 64))
def test_the_reader_rebuilds_messages_from_any_split(payloads, chunk):
    stream = b"".join(encode(Kind.FRAME, p, track=i, timestamp=i * 3000)
                      for i, p in enumerate(payloads))
    reader = Reader()
    got = []
    for start in range(0, len(stream), chunk):
        got += reader.feed(stream[start:start + chunk])
    assert [(m.track, m.timestamp, m.payload) for m in got] == \
        [(i, i * 3000, p) for i, p in enumerate(payloads)]


def test_the_reader_refuses_what_is_no_relay_message():
    with pytest.raises(RelayProtocolError, match="kind 99"):
        Reader().feed(b"\x63" + b"\x00" * 11)
    with pytest.raises(RelayProtocolError, match="bytes"):
        Reader().feed(frame_header(1, 0, False, 1 << 30))
    assert Reader().feed(encode_json(Kind.VIEW, {"presenter": None})[:-1]) == []

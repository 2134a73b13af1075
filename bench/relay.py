"""The relay between two SFU workers alone: what carrying a room's published tracks from
its home worker to a mirror in another worker costs, with no WebRTC peer anywhere.

Two processes on this machine, as two SFU workers of one room:

- *home*: a ``media.Room`` with no participants, whose published tracks are faked: a
  ``media.forwarder.Source`` per track, published with ``room.source_published`` and fed
  with ``source.on_frame`` as a publisher's receiver would feed it. The room is opened on a
  ``media.relay_home.RelayServer`` (a Unix socket in Linux's abstract namespace: no file,
  nothing else bound). By default 11 cameras (VP8-like frames at 30 fps: a ~30 KB keyframe
  every 2 s, ~4 KB deltas, keyframes staggered over the tracks) and 11 microphones (Opus-
  sized 100-byte frames at 50 fps): the 11 publishers of bench/room_scale.py's full room,
  about 880 frames and 1.5 MB a second.
- *mirror*: a ``media.relay_edge.RoomMirror`` into its own ``media.Room``, with a tap on
  every mirrored source that counts the frames and reads the send time the home wrote in
  each frame's last 8 bytes (CLOCK_MONOTONIC, which both processes share). The mirror
  room has no subscribers: nothing is forwarded further.

First the home sends for ``--baseline`` seconds with no mirror attached (its cost without
the relay), then for ``--seconds`` with the mirror. Printed: frames/s and MB/s relayed,
the home-to-mirror latency p50 / p99 / max, CPU seconds (user + system, ``os.times``) per
1000 relayed frames in each process, and the frames the home dropped because the mirror
lagged (``RelayServer.frames_dropped``). ``--max`` sends the same mix of frames as fast as
the home can instead of in real time, to find the ceiling in frames/s.

    .venv/bin/python bench/relay.py [--seconds 10] [--max] [--videos 11] [--audios 11]
        [--baseline 3] [--loop asyncio|uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from aiortc import RTCRtpCodecParameters

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.sfu_forwarding import add_loop_option  # noqa: E402
from media import Room, SfuConfig, event_loop  # noqa: E402
from media.event_loop import LoopName  # noqa: E402
from media.forwarder import Source  # noqa: E402
from media.keyframes import KeyframeRequester  # noqa: E402
from media.relay_edge import RoomMirror  # noqa: E402
from media.relay_home import RelayServer  # noqa: E402

ROOM_ID = 1
STAMP = struct.Struct("<d")  # CLOCK_MONOTONIC send time, the last bytes of every frame
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2,
                             payloadType=111)
VIDEO_FPS, AUDIO_FPS = 30, 50
GOP = 2 * VIDEO_FPS  # a keyframe every 2 s
KEYFRAME_BYTES, DELTA_BYTES, AUDIO_BYTES = 30_000, 4_000, 100
#: The schedule repeats every GOP: one second's worth would put every keyframe at once.
CYCLE_SECONDS = GOP / VIDEO_FPS
AUDIO_PER_CYCLE = round(CYCLE_SECONDS * AUDIO_FPS)
#: In ``--max`` mode the home yields to its loop after this many frames, so the socket
#: is written while it sends (as real frames, arriving from the network, would let it).
MAX_BATCH = 22


# ------------------------------------------------------------------ processes


def _process(conn: Connection, kind: str, loop_name: LoopName, options: dict[str, Any]) -> None:
    target: Any = HomeSide(**options) if kind == "home" else MirrorSide(**options)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        while True:
            name, args = await loop.run_in_executor(None, conn.recv)
            conn.send(await getattr(target, name)(*args))
            if name == "close":
                return

    event_loop.run(serve(), loop_name)


class Worker:
    """A spawned process running ``HomeSide`` or ``MirrorSide``; calls go over a pipe."""

    def __init__(self, kind: str, loop_name: LoopName, **options: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_process, args=(child, kind, loop_name, options),
                                   daemon=True)
        self.process.start()

    async def call(self, name: str, *args: Any) -> Any:
        self._conn.send((name, args))
        return await asyncio.get_running_loop().run_in_executor(None, self._conn.recv)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.call("close"), 10)
        finally:
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


# ------------------------------------------------------------------ home


async def no_keyframe() -> None:
    """The fake publishers ignore keyframe requests: they send one every 2 s anyway."""


def schedule(videos: int, audios: int) -> list[tuple[float, int, int]]:
    """One cycle's frames in send order: (offset in the cycle in seconds, track, frame
    number in the cycle). Tracks are phase-shifted like independent publishers."""
    events: list[tuple[float, int, int]] = []
    for track in range(videos):
        phase = track / max(1, videos)
        events += [((k + phase) / VIDEO_FPS, track, k) for k in range(GOP)]
    for i in range(audios):
        phase = i / max(1, audios)
        events += [((k + phase) / AUDIO_FPS, videos + i, k) for k in range(AUDIO_PER_CYCLE)]
    return sorted(events)


class HomeSide:
    """The room's home worker: fake published tracks, relayed to whoever attaches."""

    def __init__(self, address: str, videos: int, audios: int) -> None:
        self.address, self.videos, self.audios = address, videos, audios
        self.room = Room("bench-relay", SfuConfig())
        self.server = RelayServer(address)
        self.sources: list[Source] = []
        self.events = schedule(videos, audios)
        # Frame bodies made once: the per-frame work is only appending the stamp.
        self.bodies = {size: b"\x10" + os.urandom(size - 1 - STAMP.size)
                       for size in (KEYFRAME_BYTES, DELTA_BYTES, AUDIO_BYTES)}
        # VP8's frame tag: bit 0 clear is a keyframe, set is a delta (RFC 6386 9.1).
        self.bodies[DELTA_BYTES] = b"\x11" + self.bodies[DELTA_BYTES][1:]

    async def start(self) -> None:
        await self.server.start()
        self.server.open(ROOM_ID, self.room)
        config = self.room.config
        for track in range(self.videos + self.audios):
            video = track < self.videos
            source = Source(
                publisher_id=f"p{track % max(1, self.videos)}",
                track_id=f"t{track}", kind="video" if video else "audio",
                mid="0" if video else "1", codec=VP8 if video else OPUS,
                keyframes=KeyframeRequester(no_keyframe, config.keyframe_request_interval),
                rate_window=config.rate_window_seconds)
            self.sources.append(source)
            self.room.source_published(source)

    async def mirrors(self) -> int:
        return self.server.mirrors(ROOM_ID)

    def frame(self, track: int, number: int) -> bytes:
        if track >= self.videos:
            size = AUDIO_BYTES
        else:
            # Keyframes staggered over the tracks, as independent publishers' are.
            size = KEYFRAME_BYTES if (number + 5 * track) % GOP == 0 else DELTA_BYTES
        return self.bodies[size] + STAMP.pack(time.monotonic())

    async def run(self, seconds: float, as_fast: bool) -> dict[str, float]:
        """Send for ``seconds``: on the schedule in real time, or as fast as possible."""
        sources, events = self.sources, self.events
        cycle, sent, sent_bytes = 0, 0, 0
        dropped0, cpu0 = self.server.frames_dropped, cpu_seconds()
        start = time.monotonic()
        end = start + seconds
        while time.monotonic() < end:
            cycle_start = start + cycle * CYCLE_SECONDS
            for offset, track, number in events:
                if as_fast:
                    if sent % MAX_BATCH == 0:
                        await asyncio.sleep(0)
                else:
                    delay = cycle_start + offset - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if time.monotonic() >= end:
                    break
                source = sources[track]
                data = self.frame(track, number)
                # RTP timestamps go on across cycles, as a publisher's do.
                if track < self.videos:
                    timestamp = (cycle * GOP + number) * (90000 // VIDEO_FPS)
                else:
                    timestamp = (cycle * AUDIO_PER_CYCLE + number) * (48000 // AUDIO_FPS)
                source.on_frame(source.codec, data, timestamp & 0xFFFFFFFF)
                sent += 1
                sent_bytes += len(data)
            cycle += 1
        wall = time.monotonic() - start
        return {"sent": sent, "bytes": sent_bytes, "wall": wall, "cpu": cpu_seconds() - cpu0,
                "dropped": self.server.frames_dropped - dropped0}

    async def close(self) -> None:
        for source in self.sources:
            source.end()
            self.room.source_ended(source)
        await self.server.stop()
        await self.room.close()


# ------------------------------------------------------------------ mirror


class MirrorSide:
    """Another worker with a mirror of the room: counts the frames reaching its sources."""

    def __init__(self, address: str) -> None:
        self.room = Room("bench-relay-mirror", SfuConfig())
        self.mirror = RoomMirror(self.room, ROOM_ID, "home", address, self.room.config)
        self.delays: list[float] = []
        self.frames = self.bytes = 0
        self.first = self.last = 0.0
        self.cpu0 = self.started = 0.0
        # Every source the mirror publishes in its room gets the counting tap.
        published = self.room.source_published

        def tapped(source: Source) -> None:
            published(source)
            source.add_tap(self.tap)

        self.room.source_published = tapped  # type: ignore[method-assign]

    def tap(self, data: bytes, timestamp: int, keyframe: bool) -> None:
        now = time.monotonic()
        self.delays.append(now - STAMP.unpack_from(data, len(data) - STAMP.size)[0])
        if not self.frames:
            self.first = now
        self.last = now
        self.frames += 1
        self.bytes += len(data)

    async def connect(self) -> None:
        await self.mirror.connect()

    async def tracks(self) -> int:
        return len(self.room.policy_sources())

    async def start(self) -> None:
        self.delays, self.frames, self.bytes = [], 0, 0
        self.cpu0, self.started = cpu_seconds(), time.monotonic()

    async def received(self) -> int:
        return self.frames

    async def stop(self) -> dict[str, Any]:
        return {"frames": self.frames, "bytes": self.bytes, "span": self.last - self.first,
                "cpu": cpu_seconds() - self.cpu0, "wall": time.monotonic() - self.started,
                "delays": np.array(self.delays)}

    async def close(self) -> None:
        self.mirror.close()
        await self.room.close()


# ------------------------------------------------------------------ run


async def wait_until(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


async def drained(mirror: Worker, sent: int, dropped: int, timeout: float = 5.0) -> None:
    """Until every frame the home did not drop has reached the mirror, or arrivals stop."""
    deadline, last = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        received = await mirror.call("received")
        if received >= sent - dropped or received == last:
            return
        last = received
        await asyncio.sleep(0.2)


def per_thousand(cpu: float, frames: int) -> float:
    return 1000 * cpu / frames if frames else float("nan")


def report(args: argparse.Namespace, baseline: dict[str, float] | None,
           home: dict[str, float], mirror: dict[str, Any]) -> None:
    delays_ms = mirror["delays"] * 1000
    pct = (lambda q: float(np.percentile(delays_ms, q))) if len(delays_ms) else (lambda q: 0.0)
    span = mirror["span"] or float("nan")
    print(f"\nrelay, {args.videos} videos + {args.audios} audios, "
          f"{'as fast as possible' if args.max else 'real time'}, {home['wall']:.1f} s, "
          f"loop {args.loop}, load average {os.getloadavg()[0]:.2f}")
    print("| | value |")
    print("|---|---|")
    print(f"| frames sent by the home | {home['sent']:,.0f} ({home['sent'] / home['wall']:,.0f}/s, "
          f"{home['bytes'] / home['wall'] / 1e6:.2f} MB/s) |")
    print(f"| frames relayed to the mirror | {mirror['frames']:,} "
          f"({mirror['frames'] / span:,.0f}/s, {mirror['bytes'] / span / 1e6:.2f} MB/s) |")
    print(f"| frames dropped by lag (home) | {home['dropped']:,.0f} |")
    print(f"| latency home -> mirror p50 / p99 / max | {pct(50):.2f} / {pct(99):.2f} / "
          f"{(float(delays_ms.max()) if len(delays_ms) else 0.0):.2f} ms |")
    home_cost = per_thousand(home["cpu"], mirror["frames"])
    print(f"| home CPU per 1000 relayed frames | {home_cost:.4f} s "
          f"({home['cpu'] / home['wall']:.2f} cores) |")
    if baseline is not None:
        # Making the frames and the sources' own work, which a worker has without a mirror.
        alone = per_thousand(baseline["cpu"], int(baseline["sent"]))
        print(f"| home CPU per 1000 frames sent, no mirror attached | {alone:.4f} s "
              f"({baseline['cpu'] / baseline['wall']:.2f} cores) |")
        print(f"| home CPU the relay adds per 1000 relayed frames | {home_cost - alone:.4f} s |")
    print(f"| mirror CPU per 1000 relayed frames | "
          f"{per_thousand(mirror['cpu'], mirror['frames']):.4f} s "
          f"({mirror['cpu'] / mirror['wall']:.2f} cores) |")


async def run(args: argparse.Namespace) -> None:
    address = f"\0bench-relay-{os.getpid()}"
    home = Worker("home", args.loop, address=address, videos=args.videos, audios=args.audios)
    mirror: Worker | None = None
    try:
        await home.call("start")
        baseline = None
        if args.baseline > 0:
            # The home's own cost: making frames and the sources' fan-out, with no relay.
            baseline = await home.call("run", args.baseline, args.max)
        mirror = Worker("mirror", args.loop, address=address)
        await mirror.call("connect")
        await wait_until(lambda: home.call("mirrors"), 10, "the mirror did not attach")
        tracks = args.videos + args.audios
        await wait_until(lambda: _has(mirror, tracks), 10, "the mirror lacks tracks")
        await mirror.call("start")
        sent = await home.call("run", args.seconds, args.max)
        await drained(mirror, int(sent["sent"]), int(sent["dropped"]))
        received = await mirror.call("stop")
        report(args, baseline, sent, received)
    finally:
        for worker in (mirror, home):
            if worker is not None:
                await worker.close()


async def _has(mirror: Worker, tracks: int) -> bool:
    return bool(await mirror.call("tracks") >= tracks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max", action="store_true",
                        help="send as fast as possible: the relay's ceiling in frames/s")
    parser.add_argument("--videos", type=int, default=11)
    parser.add_argument("--audios", type=int, default=11)
    parser.add_argument("--baseline", type=float, default=3.0,
                        help="seconds the home sends with no mirror first (0: skip)")
    add_loop_option(parser, "both processes' event loop")
    args = parser.parse_args()
    # Bounded: setup, the baseline, the run and the drain, with room to spare.
    timeout = args.baseline + args.seconds + 60
    asyncio.run(asyncio.wait_for(run(args), timeout))


if __name__ == "__main__":
    main()

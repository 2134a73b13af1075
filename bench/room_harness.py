"""What the room benchmarks run a room with: the server and peer processes (``Worker``),
the SFU's side (one process, or the home and the mirror of a spread room), replayed
publishers and receive-only peers, and the measurement over a steady-state window
(``measure``). bench/room_scale.py runs its modes with it, bench/sfu_janus.py Janus's
VideoRoom."""

from __future__ import annotations

import asyncio
import fractions
import multiprocessing
import os
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any, Literal

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.sfu_forwarding import (  # noqa: E402
    GOP,
    encode_loop,
    forward_everything,
    udp_counters,
)
from media import Room, SfuConfig, aiortc_hooks, event_loop  # noqa: E402
from media.event_loop import LoopName  # noqa: E402
from media.ice import configure_host_addresses, rtc_configuration  # noqa: E402
from media.relay_edge import RoomMirror  # noqa: E402
from media.relay_home import RelayServer  # noqa: E402

FPS = 30
VIDEO_TB = fractions.Fraction(1, 90000)
AUDIO_TB = fractions.Fraction(1, 48000)
STAMP = struct.Struct("<d")  # CLOCK_MONOTONIC send time, appended to each video frame
#: The replayed encodings: full (a presenter's cap is 1.5 Mbit/s) and a grid tile's cap.
VIDEO_BITRATES = (1_300_000, 400_000)
#: RFC 6464 levels the replayed Opus carries (-dBov): speech, and near silence.
SPEAKING_DBOV, SILENT_DBOV = -20, -120
#: The spread modes' room number on the relay (one room per run).
RELAY_ROOM = 1
#: A server process's part: the whole room, or the home or the mirror of a spread room.
ServerRole = Literal["single", "home", "mirror"]


def base_mode(mode: str) -> str:
    """``spread-all`` -> ``all``: a spread mode forwards what its one-process mode does."""
    return mode.removeprefix("spread-")


# ------------------------------------------------------------------ processes


def _worker(conn: Connection, kind: str, loop_name: LoopName, options: dict[str, Any]) -> None:
    configure_host_addresses([options.pop("ice_address", "127.0.0.1")])
    target: Any = SfuSide(**options) if kind == "sfu" else PeerSide(**options)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        while True:
            name, args = await loop.run_in_executor(None, conn.recv)
            result = await getattr(target, name)(*args)
            conn.send(result)
            if name == "close":
                return

    event_loop.run(serve(), loop_name)


class Worker:
    """A process running ``SfuSide`` or ``PeerSide``; calls are forwarded over a pipe."""

    def __init__(self, kind: str, loop_name: LoopName = "asyncio", **options: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._lock = asyncio.Lock()
        self.process = ctx.Process(target=_worker, args=(child, kind, loop_name, options),
                                   daemon=True)
        self.process.start()

    async def call(self, name: str, *args: Any) -> Any:
        async with self._lock:
            self._conn.send((name, args))
            return await asyncio.get_running_loop().run_in_executor(None, self._conn.recv)

    async def close(self) -> None:
        await asyncio.wait_for(self.call("close"), 20)
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


#: One subscribed stream as the server forwards it: (subscriber id, kind, track id).
StreamKey = tuple[str, str, str]
#: The server's counters at one instant (plain values: they cross the process pipe):
#: "cpu" and "kernel" seconds, "time" (monotonic), "packets" sent so far (-1: not
#: known), "forwarding": per subscribed stream (forwarded now, times paused so far), or
#: None when the server forwards everything.
ServerSample = dict[str, Any]


def server_sample(packets: int,
                  forwarding: dict[StreamKey, tuple[bool, int]] | None = None,
                  relay_dropped: int = 0) -> ServerSample:
    """This process's CPU now, with the given counters."""
    cpu = os.times()
    return {"cpu": cpu.user + cpu.system, "kernel": cpu.system, "time": time.monotonic(),
            "packets": packets, "forwarding": forwarding, "relay_dropped": relay_dropped}


class SfuSide:
    """The server: ``media.Room`` (modes all, policy, and either half of a spread mode) or
    aiortc peers joined by ``MediaRelay``."""

    def __init__(self, mode: str, room_size: int, role: ServerRole = "single",
                 relay_address: str = "") -> None:
        self.room: Room | None = None
        self.config = forward_everything(room_size) if base_mode(mode) == "all" else SfuConfig()
        if base_mode(mode) in ("all", "policy"):
            self.room = Room("bench", self.config)
        self.role, self.relay_address = role, relay_address
        self.relay_server: RelayServer | None = None
        self.mirror: RoomMirror | None = None
        self.relay = MediaRelay()
        self.published: dict[str, list[MediaStreamTrack]] = {}
        self.pcs: dict[str, RTCPeerConnection] = {}

    async def start_relay(self) -> None:
        """Home: listen for the mirror. Mirror: attach to the home (which listens by now)."""
        assert self.room is not None
        if self.role == "home":
            self.relay_server = RelayServer(self.relay_address)
            await self.relay_server.start()
            self.relay_server.open(RELAY_ROOM, self.room)
        elif self.role == "mirror":
            self.mirror = RoomMirror(self.room, RELAY_ROOM, "home", self.relay_address,
                                     self.config)
            await self.mirror.connect()

    async def add(self, pid: str, publishes: bool, receives: bool = True) -> None:
        """Join ``pid``; a publisher with ``receives`` off only publishes here (its
        subscribe connection is in the mirror, where it joins as an observer)."""
        if self.room is not None:
            if publishes:
                self.room.add_publisher(pid, receives=receives)
            else:
                self.room.add_observer(pid)

    async def sources(self) -> int:
        """Published tracks the room has (a mirror's arrive through the relay)."""
        return len(self.room.policy_sources()) if self.room is not None else 0

    async def set_presenter(self, pid: str) -> None:
        assert self.room is not None
        self.room.set_presenter(pid)

    async def publish(self, pid: str, offer: str) -> str:
        if self.room is not None:
            return await self.room.publish(pid, offer)
        pc = RTCPeerConnection(rtc_configuration(()))
        self.pcs["pub-" + pid] = pc
        tracks: list[MediaStreamTrack] = []
        pc.on("track", tracks.append)
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        self.published[pid] = tracks
        return pc.localDescription.sdp

    async def subscribe_offer(self, pid: str) -> str:
        if self.room is not None:
            return await self.room.create_subscribe_offer(pid)
        pc = RTCPeerConnection(rtc_configuration(()))
        self.pcs["sub-" + pid] = pc
        for owner, tracks in self.published.items():
            if owner != pid:
                for track in tracks:
                    # Each subscriber gets its own encoder: what MediaRelay costs.
                    pc.addTrack(self.relay.subscribe(track))
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp

    async def subscribe_answer(self, pid: str, answer: str) -> None:
        if self.room is not None:
            await self.room.accept_subscribe_answer(pid, answer)
            return
        await self.pcs["sub-" + pid].setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def sample(self) -> ServerSample:
        if self.room is not None:
            outbound = (await self.room.stats())["outbound"]
            dropped = self.relay_server.frames_dropped if self.relay_server else 0
            return server_sample(
                sum(int(o["packets"]) for o in outbound),
                {(str(o["subscriber_id"]), str(o["kind"]), str(o["track_id"])):
                 (bool(o["forwarding"]), int(o["pauses"])) for o in outbound},
                dropped)
        packets = 0
        for key, pc in self.pcs.items():
            if key.startswith("sub-"):
                for sender in pc.getSenders():
                    for s in (await sender.getStats()).values():
                        packets += getattr(s, "packetsSent", 0) or 0
        return server_sample(packets)

    async def close(self) -> None:
        if self.mirror is not None:
            self.mirror.close()
        if self.relay_server is not None:
            await self.relay_server.stop()
        if self.room is not None:
            await self.room.close()
        for pc in self.pcs.values():
            await pc.close()


def spread_sample(home: ServerSample, mirror: ServerSample) -> ServerSample:
    """The two processes of a spread room as one server; "parts" keeps each one's CPU.
    Their subscribers are disjoint, so their streams simply add up."""
    forwarding = None
    if home["forwarding"] is not None and mirror["forwarding"] is not None:
        forwarding = {**home["forwarding"], **mirror["forwarding"]}
    return {"cpu": home["cpu"] + mirror["cpu"], "kernel": home["kernel"] + mirror["kernel"],
            "time": home["time"], "packets": home["packets"] + mirror["packets"],
            "forwarding": forwarding, "relay_dropped": home["relay_dropped"],
            "parts": [home["cpu"], mirror["cpu"]]}


class ReplayVideo(MediaStreamTrack):
    """Pre-encoded VP8 at 30 fps. Like a browser it obeys the REMB it receives: at each
    keyframe it switches to the highest encoding within the last REMB (the encodings share
    their keyframe positions, so the switch is clean)."""

    kind = "video"

    def __init__(self, encodings: dict[int, list[bytes]], stamp: bool) -> None:
        super().__init__()
        self._encodings, self._stamp, self._index = encodings, stamp, 0
        self._bitrate = self._target = max(encodings)
        self._start = time.monotonic()

    def on_remb(self, bitrate: int, ssrcs: list[int]) -> None:
        self._target = bitrate

    async def recv(self) -> av.Packet:
        due = self._start + self._index / FPS
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        if self._index % GOP == 0:
            fitting = [b for b in self._encodings if b <= self._target]
            self._bitrate = max(fitting) if fitting else min(self._encodings)
        frames = self._encodings[self._bitrate]
        data = frames[self._index % len(frames)]
        if self._stamp:
            # Trailing bytes ride along undecoded: subscribers read them, nobody decodes.
            data += STAMP.pack(time.monotonic())
        packet = av.Packet(data)
        packet.pts, packet.time_base = self._index * (90000 // FPS), VIDEO_TB
        self._index += 1
        return packet


class ReplayAudio(MediaStreamTrack):
    """Pre-encoded Opus, 20 ms packets. ``speaks(now)`` says whether the publisher is
    speaking: the level its packets carry (see :func:`send_audio_levels`)."""

    kind = "audio"

    def __init__(self, packets: list[bytes], speaks: Callable[[float], bool]) -> None:
        super().__init__()
        self._packets, self._index, self._speaks = packets, 0, speaks
        self._start = time.monotonic()

    def level_dbov(self) -> int:
        return SPEAKING_DBOV if self._speaks(time.time()) else SILENT_DBOV

    async def recv(self) -> av.Packet:
        due = self._start + self._index * 0.02
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        packet = av.Packet(self._packets[self._index % len(self._packets)])
        packet.pts, packet.time_base = self._index * 960, AUDIO_TB
        self._index += 1
        return packet


def send_audio_levels(sender: RTCRtpSender, track: ReplayAudio) -> None:
    """Give a replaying sender's packets the audio level extension.

    aiortc only measures a level when it encodes an ``AudioFrame``; for pre-encoded packets
    ``_next_encoded_frame`` (rtcrtpsender.py 294) leaves ``audio_level`` None and
    ``_run_rtp`` writes no extension. Load generator only: the SFU never sends audio levels.
    """
    next_frame = sender._next_encoded_frame

    async def with_level(codec: Any) -> Any:
        frame = await next_frame(codec)
        if frame is not None:
            frame.audio_level = track.level_dbov()
        return frame

    sender._next_encoded_frame = with_level  # type: ignore[method-assign]


def encode_opus(seconds: float = 3.0) -> list[bytes]:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format = 48000, "stereo", "s16"
    codec.bit_rate = 32000
    t = np.arange(int(48000 * seconds)) / 48000
    tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    packets: list[bytes] = []
    for i in range(0, len(tone) - 960, 960):
        frame = av.AudioFrame.from_ndarray(np.repeat(tone[i:i + 960], 2)[None, :],
                                           format="s16", layout="stereo")
        frame.sample_rate, frame.pts = 48000, i
        packets += [bytes(p) for p in codec.encode(frame)]
    return packets


def speaking_turns(speakers: list[str], period: float) -> Callable[[str], Callable[[float], bool]]:
    """Publishers in ``speakers`` take turns of ``period`` seconds, on the wall clock
    (shared by the peer processes); anyone else never speaks."""

    def speaks(pid: str) -> Callable[[float], bool]:
        if pid not in speakers:
            return lambda now: False
        turn = speakers.index(pid)
        return lambda now: int(now / period) % len(speakers) == turn

    return speaks


class PeerSide:
    """Some of the room's clients: publishers replaying encoded media, and subscribers that
    count frames and read the send stamps without decoding anything."""

    def __init__(self, stamp: bool, honour_remb: bool, speakers: list[str],
                 speaker_period: float) -> None:
        self.stamp = stamp
        # Without REMB only the full encoding is ever sent: the same load for every server.
        bitrates = VIDEO_BITRATES if honour_remb else VIDEO_BITRATES[:1]
        self.video = {bitrate: encode_loop(bitrate) for bitrate in bitrates}
        self.audio = encode_opus()
        self.speaks = speaking_turns(speakers, speaker_period)
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.frames: dict[StreamKey, int] = {}
        self.delays: list[float] = []

    async def publish_offer(self, pid: str) -> str:
        pc = RTCPeerConnection(rtc_configuration(()))
        self.pcs["pub-" + pid] = pc
        video = ReplayVideo(self.video, self.stamp)
        audio = ReplayAudio(self.audio, self.speaks(pid))
        # With a single encoding (modes other than policy) the REMB changes nothing.
        aiortc_hooks.on_remb(pc.addTransceiver(video, direction="sendonly").sender, video.on_remb)
        send_audio_levels(pc.addTransceiver(audio, direction="sendonly").sender, audio)
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp

    async def publish_answer(self, pid: str, answer: str) -> None:
        await self.pcs["pub-" + pid].setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def subscribe(self, pid: str, offer: str) -> str:
        pc = RTCPeerConnection(rtc_configuration(()))
        self.pcs["sub-" + pid] = pc

        def on_track(track: MediaStreamTrack) -> None:
            receiver = next(t.receiver for t in pc.getTransceivers()
                            if t.receiver.track is track)
            # The SFU names each track after the publisher's own (a=msid): the key of its stats.
            key = (pid, track.kind, track.id)
            self.frames[key] = 0

            def on_frame(codec: Any, data: bytes, timestamp: int) -> None:
                self.frames[key] += 1
                if track.kind == "video" and self.stamp and len(data) > STAMP.size:
                    sent = STAMP.unpack_from(data, len(data) - STAMP.size)[0]
                    self.delays.append(time.monotonic() - sent)

            aiortc_hooks.attach_frame_sink(receiver, on_frame, lambda: None)

        pc.on("track", on_track)
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def sample(self) -> tuple[dict[StreamKey, int], list[float]]:
        delays, self.delays = self.delays, []
        return dict(self.frames), delays

    async def close(self) -> None:
        for pc in self.pcs.values():
            await pc.close()


# ------------------------------------------------------------------ runs


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def direct_delay(seconds: float) -> tuple[float, float]:
    """Send-to-receive time of a direct connection, the baseline the SFU's delay adds to."""
    peers = Worker("peer", **peer_options("direct", 1, 1.0))
    try:
        offer = await peers.call("publish_offer", "direct")
        answer = await peers.call("subscribe", "direct", offer)
        await peers.call("publish_answer", "direct", answer)
        await asyncio.sleep(2)
        await peers.call("sample")
        await asyncio.sleep(seconds)
        _, delays = await peers.call("sample")
        return percentile(delays, 50), percentile(delays, 95)
    finally:
        await peers.close()


def streams_per_subscriber(forwarded: set[StreamKey]) -> dict[str, tuple[int, int]]:
    """Subscriber id -> (videos, audios) forwarded to it."""
    counts: dict[str, list[int]] = {}
    for subscriber, kind, _ in forwarded:
        counts.setdefault(subscriber, [0, 0])[kind == "audio"] += 1
    return {s: (v, a) for s, (v, a) in counts.items()}


async def measure(peers: list[Worker], publishers: int, observers: int, seconds: float,
                  server: Callable[[], Awaitable[ServerSample]]) -> dict[str, Any]:
    """Steady-state figures over ``seconds`` of the room's subscribed streams."""
    for p in peers:
        await p.call("sample")
    udp0 = udp_counters()
    s0 = await server()
    frames0: dict[StreamKey, int] = {}
    for p in peers:
        frames0.update((await p.call("sample"))[0])
    await asyncio.sleep(seconds)
    s1 = await server()
    udp1 = udp_counters()
    frames1: dict[StreamKey, int] = {}
    delays: list[float] = []
    for p in peers:
        frames, d = await p.call("sample")
        frames1.update(frames)
        delays += d
    wall = s1["time"] - s0["time"]
    subscribed = set(frames1)
    f0, f1 = s0["forwarding"], s1["forwarding"]
    if f0 is None or f1 is None:
        steady, switched, paused = subscribed, set(), set()
        forwarded_streams = float(len(subscribed))
        forwarded_at_end = subscribed
    else:
        both = set(f0) & set(f1)
        steady = {k for k in both if f0[k][0] and f1[k][0] and f0[k][1] == f1[k][1]}
        paused = {k for k in both if not f0[k][0] and not f1[k][0] and f0[k][1] == f1[k][1]}
        switched = both - steady - paused
        # Streams forwarded at the start and at the end, averaged: the switched ones count half.
        forwarded_streams = (sum(v[0] for v in f0.values()) + sum(v[0] for v in f1.values())) / 2
        forwarded_at_end = {k for k, v in f1.items() if v[0]}
    video_fps = [(frames1[k] - frames0.get(k, 0)) / wall
                 for k in steady if k[1] == "video" and k in frames1]
    per_subscriber = streams_per_subscriber(forwarded_at_end)
    cores = (s1["cpu"] - s0["cpu"]) / wall
    # Spread modes: each process's cores (home, mirror); empty for one process.
    part_cores = [(b - a) / wall
                  for a, b in zip(s0.get("parts", []), s1.get("parts", []), strict=False)]
    return {
        "publishers": publishers, "observers": observers,
        "subscribed": len(subscribed), "forwarded": forwarded_streams,
        "switched": sum(1 for k in switched if k[1] == "video"),
        "paused": sum(1 for k in paused if k[1] == "video"),
        "per_subscriber": sorted(set(per_subscriber.values())),
        "cores": cores, "part_cores": part_cores,
        "relay_dropped": s1.get("relay_dropped", 0) - s0.get("relay_dropped", 0),
        "kernel_share": (s1["kernel"] - s0["kernel"]) / max(1e-9, s1["cpu"] - s0["cpu"]),
        "per_stream": cores / max(1.0, forwarded_streams),
        "packets_per_s": (s1["packets"] - s0["packets"]) / wall if s1["packets"] >= 0
        else float("nan"),
        "fps_min": min(video_fps, default=0.0),
        "fps_mean": sum(video_fps) / len(video_fps) if video_fps else 0.0,
        "delay_p50": percentile(delays, 50), "delay_p95": percentile(delays, 95),
        "udp_errors": (udp1["InErrors"] - udp0["InErrors"])
        + (udp1["RcvbufErrors"] - udp0["RcvbufErrors"]),
    }


def peer_options(mode: str, publishers: int, speaker_period: float) -> dict[str, Any]:
    """What a peer process replays for ``mode``: the first publisher presents, the others
    take turns speaking; only in policy mode do publishers follow the SFU's REMB caps."""
    return {"stamp": mode != "relay",  # re-encoding loses the stamps
            "honour_remb": base_mode(mode) == "policy",
            "speakers": [f"p{i}" for i in range(1, publishers)],
            "speaker_period": speaker_period}


_relay_runs = 0

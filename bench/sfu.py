"""A 1-4-4-2 consultation room through the SFU: encoded passthrough against MediaRelay.

11 publishers (640x480 VP8 at 30 fps + Opus, frames encoded once up front and replayed) and
10 receive-only observers; every publisher also receives every other publisher. The SFU runs
in its own process; the peers run in ``--peer-processes`` other processes. For each mode the
script prints, over ``--seconds`` of steady state:

- SFU CPU (seconds per second, i.e. cores) and per forwarded stream,
- forwarded RTP packets per second,
- video frames per second received per stream (min / mean) — below 30 means overloaded,
- added forwarding delay p50 / p95: the send-to-receive time of each video frame through the
  server minus the same time on a direct publisher-to-subscriber connection measured in the
  same run (not for relay: re-encoding loses the frame stamps),
- kernel UDP receive drops (/proc/net/snmp) during the run.

The same room also goes through Janus's VideoRoom (Debian's ``janus``; bench/sfu_janus.py),
and our CPU per stream is printed over Janus's. Passthrough forwards everything (last-N above the room size) so both modes carry the same
streams. On two cores the full room saturates the machine; ``--publishers``/``--observers``
give smaller rooms whose per-stream figures are not distorted by the load generators.

    .venv/bin/python bench/sfu.py [--publishers 11] [--observers 10] [--seconds 10]
                                  [--modes passthrough,relay,janus] [--peer-processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import multiprocessing
import os
import shlex
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.sfu_forwarding import encode_loop, udp_counters  # noqa: E402
from media import Room, SfuConfig, aiortc_hooks  # noqa: E402
from media.ice import configure_host_addresses, rtc_configuration  # noqa: E402

FPS = 30
VIDEO_TB = fractions.Fraction(1, 90000)
AUDIO_TB = fractions.Fraction(1, 48000)
JANUS_BINARY = "/usr/bin/janus"
STAMP = struct.Struct("<d")  # CLOCK_MONOTONIC send time, appended to each video frame


# ------------------------------------------------------------------ processes


def _worker(conn: Connection, kind: str, options: dict[str, Any]) -> None:
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

    asyncio.run(serve())


class Worker:
    """A process running ``SfuSide`` or ``PeerSide``; calls are forwarded over a pipe."""

    def __init__(self, kind: str, **options: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._lock = asyncio.Lock()
        self.process = ctx.Process(target=_worker, args=(child, kind, options), daemon=True)
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


class SfuSide:
    """The server: ``media.Room`` (passthrough) or aiortc peers joined by ``MediaRelay``."""

    def __init__(self, mode: str, room_size: int) -> None:
        self.mode = mode
        # Forward every stream, whatever the speakers and the links report, so both modes
        # carry the same load.
        config = SfuConfig(last_n=room_size, degrade_remb_ratio=0.0, degrade_loss=1.01,
                           degrade_rtt_s=1e9)
        self.room = Room("bench", config) if mode == "passthrough" else None
        self.relay = MediaRelay()
        self.published: dict[str, list[MediaStreamTrack]] = {}
        self.pcs: dict[str, RTCPeerConnection] = {}

    async def add(self, pid: str, publishes: bool) -> None:
        if self.room is not None:
            (self.room.add_publisher if publishes else self.room.add_observer)(pid)

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

    async def sample(self) -> tuple[float, float, int]:
        if self.room is not None:
            stats = await self.room.stats()
            packets = sum(int(o["packets"]) for o in stats["outbound"])
        else:
            packets = 0
            for key, pc in self.pcs.items():
                if key.startswith("sub-"):
                    for sender in pc.getSenders():
                        for s in (await sender.getStats()).values():
                            packets += getattr(s, "packetsSent", 0) or 0
        return time.process_time(), time.monotonic(), packets

    async def close(self) -> None:
        if self.room is not None:
            await self.room.close()
        for pc in self.pcs.values():
            await pc.close()


class ReplayVideo(MediaStreamTrack):
    kind = "video"

    def __init__(self, frames: list[bytes], stamp: bool) -> None:
        super().__init__()
        self._frames, self._stamp, self._index = frames, stamp, 0
        self._start = time.monotonic()

    async def recv(self) -> av.Packet:
        due = self._start + self._index / FPS
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        data = self._frames[self._index % len(self._frames)]
        if self._stamp:
            # Trailing bytes ride along undecoded: subscribers read them, nobody decodes.
            data += STAMP.pack(time.monotonic())
        packet = av.Packet(data)
        packet.pts, packet.time_base = self._index * (90000 // FPS), VIDEO_TB
        self._index += 1
        return packet


class ReplayAudio(MediaStreamTrack):
    kind = "audio"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self._packets, self._index = packets, 0
        self._start = time.monotonic()

    async def recv(self) -> av.Packet:
        due = self._start + self._index * 0.02
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        packet = av.Packet(self._packets[self._index % len(self._packets)])
        packet.pts, packet.time_base = self._index * 960, AUDIO_TB
        self._index += 1
        return packet


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


class PeerSide:
    """Some of the room's clients: publishers replaying encoded media, and subscribers that
    count frames and read the send stamps without decoding anything."""

    def __init__(self, stamp: bool) -> None:
        self.stamp = stamp
        self.video = encode_loop()
        self.audio = encode_opus()
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.frames: dict[str, int] = {}
        self.delays: list[float] = []

    async def publish_offer(self, pid: str) -> str:
        pc = RTCPeerConnection(rtc_configuration(()))
        self.pcs["pub-" + pid] = pc
        pc.addTransceiver(ReplayVideo(self.video, self.stamp), direction="sendonly")
        pc.addTransceiver(ReplayAudio(self.audio), direction="sendonly")
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
            key = f"{pid}/{track.kind}/{track.id}"
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

    async def sample(self) -> tuple[dict[str, int], list[float]]:
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
    peers = Worker("peer", stamp=True)
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


ServerSample = Callable[[], Awaitable[tuple[float, float, int]]]


async def measure(peers: list[Worker], publishers: int, observers: int, seconds: float,
                  server: ServerSample) -> dict[str, Any]:
    """Steady-state figures over ``seconds``: ``server()`` gives the server's (CPU seconds,
    monotonic time, packets sent so far)."""
    for p in peers:
        await p.call("sample")
    udp0 = udp_counters()
    cpu0, t0, packets0 = await server()
    frames0: dict[str, int] = {}
    for p in peers:
        frames0.update((await p.call("sample"))[0])
    await asyncio.sleep(seconds)
    cpu1, t1, packets1 = await server()
    udp1 = udp_counters()
    frames1: dict[str, int] = {}
    delays: list[float] = []
    for p in peers:
        frames, d = await p.call("sample")
        frames1.update(frames)
        delays += d
    wall = t1 - t0
    video_fps = [(frames1[k] - frames0.get(k, 0)) / wall for k in frames1 if "/video/" in k]
    streams = 2 * publishers * (publishers - 1 + observers)
    cores = (cpu1 - cpu0) / wall
    return {
        "publishers": publishers, "observers": observers,
        "streams": streams, "received_streams": len(frames1), "cores": cores,
        "per_stream": cores / streams,
        "packets_per_s": (packets1 - packets0) / wall if packets1 >= 0 else float("nan"),
        "fps_min": min(video_fps, default=0.0),
        "fps_mean": sum(video_fps) / len(video_fps) if video_fps else 0.0,
        "delay_p50": percentile(delays, 50), "delay_p95": percentile(delays, 95),
        "udp_drops": (udp1["InErrors"] - udp0["InErrors"])
        + (udp1["RcvbufErrors"] - udp0["RcvbufErrors"]),
    }


async def run_room(mode: str, publishers: int, observers: int, seconds: float,
                   peer_processes: int) -> dict[str, Any]:
    stamp = mode == "passthrough"
    sfu = Worker("sfu", mode=mode, room_size=publishers + observers)
    peers = [Worker("peer", stamp=stamp) for _ in range(peer_processes)]
    pub_ids = [f"p{i}" for i in range(publishers)]
    obs_ids = [f"o{i}" for i in range(observers)]
    home = {pid: peers[i % len(peers)] for i, pid in enumerate(pub_ids + obs_ids)}
    try:
        for pid in pub_ids + obs_ids:
            await sfu.call("add", pid, pid in pub_ids)
        for pid in pub_ids:
            offer = await home[pid].call("publish_offer", pid)
            await home[pid].call("publish_answer", pid, await sfu.call("publish", pid, offer))
        await asyncio.sleep(1)
        for pid in pub_ids + obs_ids:
            offer = await sfu.call("subscribe_offer", pid)
            await sfu.call("subscribe_answer", pid, await home[pid].call("subscribe", pid, offer))
        await asyncio.sleep(4)
        return {"mode": mode, **await measure(peers, publishers, observers, seconds,
                                              lambda: sfu.call("sample"))}
    finally:
        for worker in [sfu, *peers]:
            await worker.close()


def print_table(rows: list[dict[str, Any]], direct: tuple[float, float]) -> None:
    print(f"\ndirect publisher->subscriber send-to-receive: p50 {direct[0] * 1000:.1f} ms, "
          f"p95 {direct[1] * 1000:.1f} ms (subtracted below)")
    print("| mode | publishers + observers | forwarded streams (received) | SFU cores | "
          "CPU s/s per stream | packets/s | video fps min / mean | added delay p50 / p95 ms "
          "| UDP drops |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        delay = "-" if r["mode"] == "relay" else (
            f"{(r['delay_p50'] - direct[0]) * 1000:.1f} / {(r['delay_p95'] - direct[1]) * 1000:.1f}")
        print(f"| {r['mode']} | {r['publishers']} + {r['observers']} | {r['streams']} "
              f"({r['received_streams']}) | {r['cores']:.2f} | {r['per_stream'] * 1000:.2f} ms "
              f"| {r['packets_per_s']:.0f} | {r['fps_min']:.1f} / {r['fps_mean']:.1f} | {delay} "
              f"| {r['udp_drops']} |")
    by_size: dict[tuple[int, int], dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_size.setdefault((r["publishers"], r["observers"]), {})[r["mode"]] = r
    for (pubs, obs), modes in by_size.items():
        if {"passthrough", "relay"} <= set(modes):
            ratio = modes["passthrough"]["per_stream"] / modes["relay"]["per_stream"]
            print(f"{pubs}+{obs}: passthrough/relay CPU per stream = {ratio:.3f} "
                  f"(relay fps mean {modes['relay']['fps_mean']:.1f}: below 30 means the "
                  "relay could not keep up, so its true cost is higher still)")
        if {"passthrough", "janus"} <= set(modes):
            ratio = modes["passthrough"]["per_stream"] / modes["janus"]["per_stream"]
            print(f"{pubs}+{obs}: our CPU per stream / Janus's = {ratio:.2f}")
    print("rows whose video fps mean is under 27 were CPU-bound on this machine")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publishers", type=int, default=11)
    parser.add_argument("--observers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--modes", default="passthrough,relay,janus",
                        help="passthrough (our SFU), relay (aiortc MediaRelay), janus")
    parser.add_argument("--peer-processes", type=int, default=2)
    parser.add_argument("--small", default="4,2",
                        help="also run this publishers,observers room ('' to skip)")
    args = parser.parse_args()
    modes = args.modes.split(",")
    if "janus" in modes and not os.path.exists(JANUS_BINARY):
        print(f"{JANUS_BINARY} not found (apt-get install janus): running without Janus")
        modes.remove("janus")
    if "janus" in modes:
        from bench.sfu_janus import NETNS_ADDRESS, NETNS_ENV, NETNS_SETUP
        if not os.environ.get(NETNS_ENV):
            # Re-run inside a private network namespace (needs root): see sfu_janus.py.
            command = " ".join([NETNS_SETUP, "&&", "exec", "env", f"{NETNS_ENV}={NETNS_ADDRESS}",
                                *map(shlex.quote, [sys.executable, *sys.argv])])
            os.execvp("unshare", ["unshare", "-n", "sh", "-c", command])
    sizes = [(args.publishers, args.observers)]
    if args.small:
        small = tuple(int(x) for x in args.small.split(","))
        sizes.insert(0, (small[0], small[1]))
    direct = await direct_delay(args.seconds)
    rows = []
    for pubs, obs in sizes:
        for mode in modes:
            print(f"running {mode} with {pubs} publishers + {obs} observers ...", flush=True)
            if mode == "janus":
                from bench.sfu_janus import run_janus_room
                run = run_janus_room(pubs, obs, args.seconds, args.peer_processes)
            else:
                run = run_room(mode, pubs, obs, args.seconds, args.peer_processes)
            rows.append(await asyncio.wait_for(run, 300))
    print_table(rows, direct)


if __name__ == "__main__":
    asyncio.run(main())

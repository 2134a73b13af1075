"""SFU forwarding cost: one VP8 publisher -> SFU -> N subscribers, N = 1, 2, 4, 8.

The SFU (media.Room) runs in its own process so its CPU time is measured apart
from the peers'. The publisher replays VP8 frames encoded once up front (its
track's recv() returns av.Packet), and subscribers count encoded frames with
the media frame sink instead of decoding, so the load generators stay light.

Prints, per N: SFU CPU % of one core, forwarded RTP packets/s, video fps per
subscriber, and the kernel's UDP drop counters (/proc/net/snmp) over the run.

    .venv/bin/python bench/sfu_forwarding.py [--seconds 8] [--warmup 3] [--counts 1,2,4,8]
"""

import argparse
import asyncio
import fractions
import multiprocessing
import os
import sys
import time
from multiprocessing.connection import Connection

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from media import Room, aiortc_hooks  # noqa: E402
from media.ice import configure_host_addresses, rtc_configuration  # noqa: E402

WIDTH, HEIGHT, FPS, BITRATE = 640, 480, 30, 1_300_000
LOOP_FRAMES, GOP = 150, 60
TIME_BASE = fractions.Fraction(1, 90000)


# ---------------------------------------------------------------- SFU process


def sfu_process(conn: Connection) -> None:
    configure_host_addresses(["127.0.0.1"])
    asyncio.run(_serve(conn))


async def _serve(conn: Connection) -> None:
    room = Room("bench")
    loop = asyncio.get_running_loop()
    while True:
        command, *args = await loop.run_in_executor(None, conn.recv)
        if command == "quit":
            await room.close()
            conn.send(None)
            return
        if command == "add_publisher":
            room.add_publisher(args[0])
            result = None
        elif command == "add_observer":
            room.add_observer(args[0])
            result = None
        elif command == "publish":
            result = await room.publish(*args)
        elif command == "subscribe_offer":
            result = await room.create_subscribe_offer(args[0])
        elif command == "subscribe_answer":
            result = await room.accept_subscribe_answer(*args)
        elif command == "sample":
            stats = await room.stats()
            packets = sum(int(o["packets"]) for o in stats["outbound"])
            result = (time.process_time(), time.monotonic(), packets)
        else:
            raise ValueError(command)
        conn.send(result)


class SfuClient:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=sfu_process, args=(child,), daemon=True)
        self._process.start()

    async def call(self, *command: object) -> object:
        self._conn.send(command)
        return await asyncio.get_running_loop().run_in_executor(None, self._conn.recv)

    async def stop(self) -> None:
        await self.call("quit")
        self._process.join(10)


# ---------------------------------------------------------------- peers


def encode_loop() -> list[bytes]:
    """VP8 frames of a moving pattern, encoded once; frame 0 is a keyframe."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.bit_rate, codec.gop_size = BITRATE, GOP
    codec.time_base = fractions.Fraction(1, FPS)
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 255, (HEIGHT, WIDTH, 3), np.uint8)
    frames = []
    for i in range(LOOP_FRAMES):
        img = np.roll(noise, i * 8, axis=1)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        frames += [bytes(p) for p in codec.encode(frame)]
    frames += [bytes(p) for p in codec.encode(None)]
    return frames[:LOOP_FRAMES]


class ReplayTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, frames: list[bytes]) -> None:
        super().__init__()
        self._frames = frames
        self._index = 0
        self._start = time.monotonic()

    async def recv(self) -> av.Packet:
        due = self._start + self._index / FPS
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        packet = av.Packet(self._frames[self._index % len(self._frames)])
        packet.pts = self._index * (90000 // FPS)
        packet.time_base = TIME_BASE
        self._index += 1
        return packet


class CountingSubscriber:
    def __init__(self) -> None:
        self.pc = RTCPeerConnection(rtc_configuration(()))
        self.frames = 0
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
        aiortc_hooks.attach_frame_sink(receiver, self._count, lambda: None)

    def _count(self, codec: object, data: bytes, timestamp: int) -> None:
        self.frames += 1


def udp_counters() -> dict[str, int]:
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return {k: int(v) for k, v in zip(rows[0][1:], rows[1][1:])}


async def run_one(n: int, frames: list[bytes], warmup: float, seconds: float) -> dict[str, float]:
    sfu = SfuClient()
    publisher = RTCPeerConnection(rtc_configuration(()))
    subscribers = [CountingSubscriber() for _ in range(n)]
    try:
        await sfu.call("add_publisher", "pub")
        for i in range(n):
            await sfu.call("add_observer", f"sub{i}")
        publisher.addTransceiver(ReplayTrack(frames), direction="sendonly")
        await publisher.setLocalDescription(await publisher.createOffer())
        answer = await sfu.call("publish", "pub", publisher.localDescription.sdp)
        await publisher.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        for i, sub in enumerate(subscribers):
            offer = await sfu.call("subscribe_offer", f"sub{i}")
            await sub.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await sub.pc.setLocalDescription(await sub.pc.createAnswer())
            await sfu.call("subscribe_answer", f"sub{i}", sub.pc.localDescription.sdp)
        await asyncio.sleep(warmup)

        cpu0, t0, packets0 = await sfu.call("sample")
        frames0 = [s.frames for s in subscribers]
        udp0 = udp_counters()
        await asyncio.sleep(seconds)
        cpu1, t1, packets1 = await sfu.call("sample")
        udp1 = udp_counters()
        wall = t1 - t0
        fps = [(s.frames - f0) / wall for s, f0 in zip(subscribers, frames0)]
        return {
            "n": n,
            "cpu_pct": 100 * (cpu1 - cpu0) / wall,
            "packets_per_s": (packets1 - packets0) / wall,
            "fps_min": min(fps),
            "fps_mean": sum(fps) / len(fps),
            "udp_in_errors": udp1["InErrors"] - udp0["InErrors"],
            "udp_rcvbuf_errors": udp1["RcvbufErrors"] - udp0["RcvbufErrors"],
        }
    finally:
        for sub in subscribers:
            await sub.pc.close()
        await publisher.close()
        await sfu.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per N")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured time per N")
    parser.add_argument("--counts", default="1,2,4,8")
    args = parser.parse_args()
    configure_host_addresses(["127.0.0.1"])

    started = time.monotonic()
    frames = encode_loop()
    mean_size = sum(map(len, frames)) / len(frames)
    print(
        f"publisher: VP8 {WIDTH}x{HEIGHT} @ {FPS} fps, {len(frames)} frames pre-encoded in "
        f"{time.monotonic() - started:.1f} s, mean {mean_size * 8 * FPS / 1e6:.2f} Mbit/s; "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'N':>3} {'SFU CPU %':>10} {'fwd pkt/s':>10} {'fps min':>8} {'fps mean':>9} {'UDP InErr':>10} {'RcvbufErr':>10}")
    for n in (int(x) for x in args.counts.split(",")):
        r = await run_one(n, frames, args.warmup, args.seconds)
        print(
            f"{r['n']:>3} {r['cpu_pct']:>10.1f} {r['packets_per_s']:>10.0f} {r['fps_min']:>8.1f} "
            f"{r['fps_mean']:>9.1f} {r['udp_in_errors']:>10} {r['udp_rcvbuf_errors']:>10}",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())

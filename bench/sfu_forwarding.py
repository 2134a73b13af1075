"""SFU forwarding cost: one VP8 publisher -> SFU -> N subscribers, N = 1, 2, 4, 8.

The SFU (media.Room) runs in its own process so its CPU time is measured apart
from the peers'. The publisher replays VP8 frames encoded once up front (its
track's recv() returns av.Packet), and subscribers count encoded frames with
the media frame sink instead of decoding, so the load generators stay light.

Prints, per N: SFU CPU % of one core, forwarded RTP packets/s, SFU CPU per forwarded
packet, video fps per subscriber, and the kernel's UDP drop counters (/proc/net/snmp) over
the run. The forwarding policy's downlink checks are off (``forward_everything``): the
bench measures forwarding, and an aiortc subscriber's REMB estimate of this bursty replay
would otherwise pause the video part of the time.

``--loop uvloop`` runs the SFU process on uvloop (``media.event_loop``); ``--profile
DIR`` writes a cProfile of the SFU's event loop thread over each measured window
(``DIR/forwarding-N.prof``; it slows the SFU, so CPU figures of that run are not kept).
``--callgrind DIR`` runs the SFU process under valgrind's callgrind and prints the
instructions it executed in each measured window (user space only): the steadiest measure
on a shared machine. valgrind slows the SFU about fiftyfold, so keep N small (1 and 3 kept
30 fps here) and compare the difference between two N.

    .venv/bin/python bench/sfu_forwarding.py [--seconds 8] [--warmup 3] [--counts 1,2,4,8]
                                             [--loop asyncio|uvloop] [--profile DIR]
                                             [--callgrind DIR] [--bitrate 1300000]
"""

import argparse
import asyncio
import cProfile
import fractions
import glob
import multiprocessing
import os
import subprocess
import sys
import time
from multiprocessing.connection import Connection

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from media import Room, SfuConfig, aiortc_hooks, event_loop  # noqa: E402
from media.event_loop import LoopName  # noqa: E402
from media.ice import configure_host_addresses, rtc_configuration  # noqa: E402

WIDTH, HEIGHT, FPS, BITRATE = 640, 480, 30, 1_300_000
LOOP_FRAMES, GOP = 150, 60
TIME_BASE = fractions.Fraction(1, 90000)


# ---------------------------------------------------------------- SFU process


def add_loop_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--loop asyncio|uvloop``, by default what media.event_loop picks."""
    parser.add_argument("--loop", choices=event_loop.LOOP_NAMES,
                        default=event_loop.default_name(), help=what)


def forward_everything(room_size: int) -> SfuConfig:
    """The policy's defaults, except that every subscribed video is forwarded whatever the
    speakers and the downlink checks say."""
    return SfuConfig(last_n=room_size, degrade_remb_ratio=0.0, degrade_loss=1.01,
                     degrade_rtt_s=1e9)


def sfu_process(conn: Connection, loop_name: LoopName) -> None:
    configure_host_addresses(["127.0.0.1"])
    event_loop.run(_serve(conn), loop_name)


async def _serve(conn: Connection) -> None:
    room = Room("bench", forward_everything(1))
    loop = asyncio.get_running_loop()
    profile: cProfile.Profile | None = None
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
            cpu = os.times()
            result = (cpu.user + cpu.system, time.monotonic(), packets, cpu.system)
        elif command == "profile_start":
            profile = cProfile.Profile()
            profile.enable()
            result = None
        elif command == "profile_stop":
            assert profile is not None
            profile.disable()
            profile.dump_stats(args[0])
            result = None
        else:
            raise ValueError(command)
        conn.send(result)


class Callgrind:
    """Counts the instructions the SFU process executes between ``zero`` and ``total``."""

    def __init__(self, folder: str) -> None:
        self.folder = os.path.abspath(folder)
        self.executable = os.path.join(self.folder, "python-callgrind")
        with open(self.executable, "w") as f:
            f.write(f"#!/bin/sh\nexec valgrind --tool=callgrind "
                    f"--callgrind-out-file={self.folder}/callgrind.%p {sys.executable} \"$@\" "
                    f"2>>{self.folder}/valgrind.log\n")
        os.chmod(self.executable, 0o755)

    def zero(self, pid: int) -> None:
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)

    def total(self, pid: int) -> int:
        for old in glob.glob(f"{self.folder}/callgrind.{pid}.*"):
            os.remove(old)
        subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
        for _ in range(50):  # the dump is written by the valgrind process itself
            dumps = glob.glob(f"{self.folder}/callgrind.{pid}.*")
            if dumps:
                break
            time.sleep(0.1)
        total = 0
        for path in dumps:
            with open(path) as f:
                total += next(int(line.split()[1]) for line in f
                              if line.startswith(("summary:", "totals:")))
        return total


class SfuClient:
    def __init__(self, loop_name: LoopName, executable: str | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        if executable is not None:
            ctx.set_executable(executable)
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=sfu_process, args=(child, loop_name), daemon=True)
        self._process.start()
        assert self._process.pid is not None
        self.pid: int = self._process.pid

    async def call(self, *command: object) -> object:
        self._conn.send(command)
        return await asyncio.get_running_loop().run_in_executor(None, self._conn.recv)

    async def stop(self) -> None:
        await self.call("quit")
        self._process.join(10)


# ---------------------------------------------------------------- peers


def encode_loop(bitrate: int = BITRATE) -> list[bytes]:
    """VP8 frames of a moving pattern with fresh noise in every frame, encoded once;
    keyframes at 0, GOP, 2 GOP... About 4 kB per delta frame at 1.3 Mbit/s (5-6 RTP
    packets), like a camera. libvpx's "good" deadline on one thread gives the same bytes
    on every run (its realtime mode adapts to the machine's load), so runs compare."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.bit_rate, codec.gop_size = bitrate, GOP
    codec.time_base = fractions.Fraction(1, FPS)
    codec.options = {"deadline": "good", "cpu-used": "5", "lag-in-frames": "0", "threads": "1"}
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    plane = 127 + 60 * np.sin(x / 23.0) * np.cos(y / 17.0)
    pattern = np.stack([plane, np.roll(plane, 40, 0), np.roll(plane, 80, 1)], -1)
    frames = []
    for i in range(LOOP_FRAMES):
        img = np.roll(pattern, i * 4, axis=1) + rng.integers(-6, 7, pattern.shape)
        frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
        frame = frame.reformat(format="yuv420p")
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
    return {k: int(v) for k, v in zip(rows[0][1:], rows[1][1:], strict=True)}


async def run_one(n: int, frames: list[bytes], warmup: float, seconds: float,
                  loop_name: LoopName, profile: str | None,
                  callgrind: Callgrind | None) -> dict[str, float]:
    sfu = SfuClient(loop_name, callgrind.executable if callgrind else None)
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

        if profile is not None:
            await sfu.call("profile_start")
        if callgrind is not None:
            callgrind.zero(sfu.pid)
        cpu0, t0, packets0, sys0 = await sfu.call("sample")
        frames0 = [s.frames for s in subscribers]
        udp0 = udp_counters()
        await asyncio.sleep(seconds)
        cpu1, t1, packets1, sys1 = await sfu.call("sample")
        if profile is not None:
            await sfu.call("profile_stop", os.path.join(profile, f"forwarding-{n}.prof"))
        instructions = callgrind.total(sfu.pid) if callgrind is not None else 0
        udp1 = udp_counters()
        wall = t1 - t0
        fps = [(s.frames - f0) / wall for s, f0 in zip(subscribers, frames0, strict=True)]
        return {
            "n": n,
            "cpu_pct": 100 * (cpu1 - cpu0) / wall,
            # The kernel's share: mostly the UDP sends (loopback delivers in the sender's time).
            "sys_share": (sys1 - sys0) / max(1e-9, cpu1 - cpu0),
            "packets_per_s": (packets1 - packets0) / wall,
            "us_per_packet": 1e6 * (cpu1 - cpu0) / max(1, packets1 - packets0),
            "instructions": instructions,
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
    parser.add_argument("--bitrate", type=int, default=BITRATE,
                        help="the publisher's encoding (a grid tile's REMB cap is 400000)")
    add_loop_option(parser, "the SFU process's event loop")
    parser.add_argument("--profile", metavar="DIR", help="write cProfile files of the SFU here")
    parser.add_argument("--callgrind", metavar="DIR",
                        help="count the SFU's instructions with valgrind (files go here)")
    args = parser.parse_args()
    configure_host_addresses(["127.0.0.1"])

    started = time.monotonic()
    frames = encode_loop(args.bitrate)
    mean_size = sum(map(len, frames)) / len(frames)
    print(
        f"publisher: VP8 {WIDTH}x{HEIGHT} @ {FPS} fps, {len(frames)} frames pre-encoded in "
        f"{time.monotonic() - started:.1f} s, mean {mean_size * 8 * FPS / 1e6:.2f} Mbit/s; "
        f"{os.cpu_count()} CPUs"
    )
    callgrind = Callgrind(args.callgrind) if args.callgrind else None
    slowed = " (profiled)" if args.profile else " (under valgrind)" if callgrind else ""
    print(f"SFU loop: {args.loop}{slowed}")
    print(f"{'N':>3} {'SFU CPU %':>10} {'kernel':>7} {'fwd pkt/s':>10} {'us/pkt':>7} "
          f"{'fps min':>8} {'fps mean':>9} {'UDP InErr':>10} {'RcvbufErr':>10}"
          + (f" {'instructions':>13}" if callgrind else ""))
    for n in (int(x) for x in args.counts.split(",")):
        r = await run_one(n, frames, args.warmup, args.seconds, args.loop, args.profile,
                          callgrind)
        print(
            f"{r['n']:>3} {r['cpu_pct']:>10.1f} {r['sys_share']:>7.0%} "
            f"{r['packets_per_s']:>10.0f} {r['us_per_packet']:>7.1f} {r['fps_min']:>8.1f} "
            f"{r['fps_mean']:>9.1f} {r['udp_in_errors']:>10} {r['udp_rcvbuf_errors']:>10}"
            + (f" {r['instructions']:>13,}" if callgrind else ""),
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())

"""A 1-4-4-2 consultation room plus observers through the SFU, with and without its
forwarding policy, and through Janus's VideoRoom for comparison.

11 publishers (640x480 VP8 at 30 fps + Opus, encoded once up front and replayed: the load
generators do not encode) and 10 receive-only observers; every publisher also receives
every other publisher. The server runs in its own process (two in the spread modes); the
peers run in ``--peer-processes`` other processes. Modes:

- ``all``: our SFU (``media.Room``) forwarding every subscribed stream (last-N above the
  room size, downlink checks off), the same load Janus gets;
- ``policy``: our SFU with the forwarding policy at its defaults (``SfuConfig()``): the
  first publisher is the presenter, the others take turns speaking (the replayed Opus
  carries RFC 6464 audio levels), so each subscriber gets the presenter and the last-N
  speakers' cameras and the rest is paused; publishers honour the SFU's REMB caps by
  replaying a 400 kbit/s encoding of the same video when capped below 1.3 Mbit/s;
- ``janus``: Janus's VideoRoom (Debian's ``janus``; bench/sfu_janus.py), everything
  forwarded;
- ``relay`` (not run by default): aiortc peers joined by ``MediaRelay``, i.e. decode once
  and re-encode per subscriber: the reference for what passthrough saves;
- ``spread-all``, ``spread-policy`` (not run by default): ``all`` / ``policy`` with the room
  over two server processes, as SFU workers spread it: the *home* process receives every
  publisher (``media.relay_home.RelayServer``) and carries half of the subscribe
  connections; the *mirror* process carries the other half (every second member,
  publishers and observers alike), fed through the relay (``media.relay_edge.RoomMirror``,
  a Unix socket in the abstract namespace). The presenter is set at home; the mirror
  follows the home's presenter and speakers.

For each mode, over ``--seconds`` of steady state: server CPU (cores, and the kernel's
share; in the spread modes the sum of both processes, and each apart, with the frames the
relay dropped for a lagging mirror), CPU per forwarded stream, forwarded RTP packets/s
(both processes' in the spread modes), frames delivered per second on every forwarded
video stream (min / mean; the publishers replay at 30), added delay, the kernel's UDP
receive errors (/proc/net/snmp), and how many streams each subscriber got.
In ``policy`` mode only streams the policy forwarded for the whole window count for the
frame rates; streams paused or switched during it are reported apart. On two cores the
full room saturates the machine (the 21 peers are on the same cores); ``--small`` runs a
smaller room first whose per-stream figures are not distorted by the load generators.

    .venv/bin/python bench/room_scale.py [--publishers 11] [--observers 10] [--seconds 10]
        [--modes all,policy,janus,relay,spread-all,spread-policy] [--small 4,2]
        [--peer-processes 2] [--speaker-period 5] [--loop asyncio|uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.room_harness import (
    ServerSample,
    Worker,
    base_mode,
    direct_delay,
    measure,
    peer_options,
    spread_sample,
)
from bench.sfu_forwarding import (  # noqa: E402
    add_loop_option,
)
from bench.sfu_janus import JANUS_BINARY, NETNS_ADDRESS, NETNS_ENV, NETNS_SETUP, run_janus_room
from media.event_loop import LoopName  # noqa: E402


def relay_address() -> str:
    """A fresh abstract Unix socket name for one spread run: nothing to clean up."""
    global _relay_runs
    _relay_runs += 1
    return f"\0bench-relay-{os.getpid()}-{_relay_runs}"


async def wait_for_sources(server: Worker, count: int, timeout: float = 10.0) -> None:
    """Until the mirror has every published track (they arrive through the relay)."""
    deadline = time.monotonic() + timeout
    while await server.call("sources") < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the mirror has not got the {count} published tracks")
        await asyncio.sleep(0.1)


async def run_room(mode: str, publishers: int, observers: int, seconds: float,
                   peer_processes: int, speaker_period: float, loop_name: LoopName,
                   ) -> dict[str, Any]:
    spread = mode.startswith("spread-")
    address = relay_address() if spread else ""
    options = {"mode": mode, "room_size": publishers + observers, "relay_address": address}
    sfu = Worker("sfu", loop_name, role="home" if spread else "single", **options)
    mirror = Worker("sfu", loop_name, role="mirror", **options) if spread else None
    peers = [Worker("peer", **peer_options(mode, publishers, speaker_period))
             for _ in range(peer_processes)]
    pub_ids = [f"p{i}" for i in range(publishers)]
    obs_ids = [f"o{i}" for i in range(observers)]
    members = pub_ids + obs_ids
    client = {pid: peers[i % len(peers)] for i, pid in enumerate(members)}
    # The server process holding each member's subscribe connection: spread, every second
    # member's is in the mirror, so each process carries about half the fan-out.
    receiver = {pid: mirror if mirror is not None and i % 2 else sfu
                for i, pid in enumerate(members)}
    try:
        if mirror is not None:
            await sfu.call("start_relay")
            await mirror.call("start_relay")
        for pid in members:
            publishes, here = pid in pub_ids, receiver[pid] is sfu
            if publishes or here:
                await sfu.call("add", pid, publishes, here)
            if not here:
                await receiver[pid].call("add", pid, False)
        if base_mode(mode) == "policy":
            await sfu.call("set_presenter", pub_ids[0])  # the mirror follows the home's view
        for pid in pub_ids:
            offer = await client[pid].call("publish_offer", pid)
            await client[pid].call("publish_answer", pid, await sfu.call("publish", pid, offer))
        await asyncio.sleep(1)
        if mirror is not None:
            # A subscribe offer made before a track arrives would miss it.
            await wait_for_sources(mirror, 2 * publishers)
        for pid in members:
            offer = await receiver[pid].call("subscribe_offer", pid)
            answer = await client[pid].call("subscribe", pid, offer)
            await receiver[pid].call("subscribe_answer", pid, answer)
        await asyncio.sleep(4)

        async def sample() -> ServerSample:
            if mirror is None:
                return await sfu.call("sample")
            # Both at once, so that their CPU covers the same window.
            home_sample, mirror_sample = await asyncio.gather(sfu.call("sample"),
                                                              mirror.call("sample"))
            return spread_sample(home_sample, mirror_sample)

        return {"mode": mode, **await measure(peers, publishers, observers, seconds, sample)}
    finally:
        # The mirror first: a home that goes first makes the mirror warn of a lost home.
        for worker in [w for w in (mirror, sfu) if w is not None] + peers:
            await worker.close()


def print_table(rows: list[dict[str, Any]], direct: tuple[float, float]) -> None:
    print(f"\ndirect publisher->subscriber send-to-receive: p50 {direct[0] * 1000:.1f} ms, "
          f"p95 {direct[1] * 1000:.1f} ms (subtracted below)")
    print("| mode | room | subscribed / forwarded streams | videos paused / switched | "
          "server cores (kernel) | home / mirror cores (relay drops) | CPU per forwarded stream "
          "| packets/s | video fps min / mean | added delay p50 / p95 | UDP receive errors "
          "| streams per subscriber at the end (video+audio) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        p50, p95 = (r["delay_p50"] - direct[0]) * 1000, (r["delay_p95"] - direct[1]) * 1000
        delay = "-" if r["mode"] == "relay" else f"{p50:.0f} / {p95:.0f} ms"
        packets = "-" if r["packets_per_s"] != r["packets_per_s"] else f"{r['packets_per_s']:,.0f}"
        per_subscriber = ", ".join(f"{v}+{a}" for v, a in r["per_subscriber"])
        parts = r.get("part_cores") or []
        split = "-" if not parts else (" / ".join(f"{c:.2f}" for c in parts)
                                       + f" ({r['relay_dropped']:,})")
        print(f"| {r['mode']} | {r['publishers']} + {r['observers']} | {r['subscribed']} / "
              f"{r['forwarded']:.0f} | {r['paused']} / {r['switched']} | {r['cores']:.2f} "
              f"({r['kernel_share']:.0%}) | {split} | {r['per_stream'] * 1000:.2f} ms/s "
              f"| {packets} | {r['fps_min']:.1f} / {r['fps_mean']:.1f} | {delay} "
              f"| {r['udp_errors']:,} | {per_subscriber} |")
    by_size: dict[tuple[int, int], dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_size.setdefault((r["publishers"], r["observers"]), {})[r["mode"]] = r
    for (pubs, obs), modes in by_size.items():
        for ours in ("all", "policy"):
            for other in ("janus", "relay"):
                if {ours, other} <= set(modes):
                    ratio = modes[ours]["per_stream"] / modes[other]["per_stream"]
                    print(f"{pubs}+{obs}: CPU per forwarded stream, {ours} / {other} = {ratio:.2f}")
        if {"all", "policy"} <= set(modes):
            ratio = modes["policy"]["cores"] / modes["all"]["cores"]
            print(f"{pubs}+{obs}: server cores, policy / all = {ratio:.2f}")
        for one in ("all", "policy"):
            if {one, "spread-" + one} <= set(modes):
                spread, single = modes["spread-" + one], modes[one]
                print(f"{pubs}+{obs}: spread-{one} / {one}: server cores "
                      f"{spread['cores'] / single['cores']:.2f}, CPU per forwarded stream "
                      f"{spread['per_stream'] / single['per_stream']:.2f}")
    print("video fps are over streams forwarded for the whole window; publishers replay at 30. "
          "Rows whose mean is under 27 were CPU-bound on this machine.")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publishers", type=int, default=11)
    parser.add_argument("--observers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--modes", default="all,policy,janus",
                        help="all, policy (our SFU), janus, relay (aiortc MediaRelay), "
                             "spread-all, spread-policy (our SFU over two processes)")
    parser.add_argument("--peer-processes", type=int, default=2)
    parser.add_argument("--small", default="4,2",
                        help="also run this publishers,observers room first ('' to skip)")
    parser.add_argument("--speaker-period", type=float, default=5.0,
                        help="seconds each publisher speaks in turn (policy mode)")
    add_loop_option(parser, "the SFU process's event loop")
    args = parser.parse_args()
    modes = args.modes.split(",")
    if "janus" in modes and not os.path.exists(JANUS_BINARY):
        print(f"{JANUS_BINARY} not found (apt-get install janus): running without Janus")
        modes.remove("janus")
    if "janus" in modes and not os.environ.get(NETNS_ENV):
        # Re-run inside a private network namespace (needs root): see sfu_janus.py.
        command = " ".join([NETNS_SETUP, "&&", "exec", "env", f"{NETNS_ENV}={NETNS_ADDRESS}",
                            *map(shlex.quote, [sys.executable, *sys.argv])])
        os.execvp("unshare", ["unshare", "-n", "sh", "-c", command])
    sizes = [(args.publishers, args.observers)]
    if args.small:
        small = tuple(int(x) for x in args.small.split(","))
        sizes.insert(0, (small[0], small[1]))
    print(f"our SFU's loop: {args.loop}; load average {os.getloadavg()[0]:.2f}", flush=True)
    direct = await direct_delay(args.seconds)
    rows = []
    for pubs, obs in sizes:
        for mode in modes:
            print(f"running {mode} with {pubs} publishers + {obs} observers ...", flush=True)
            if mode == "janus":
                run = run_janus_room(pubs, obs, args.seconds, args.peer_processes,
                                     peer_options(mode, pubs, args.speaker_period))
            else:
                run = run_room(mode, pubs, obs, args.seconds, args.peer_processes,
                               args.speaker_period, args.loop)
            rows.append(await asyncio.wait_for(run, 300))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print_table(rows, direct)


if __name__ == "__main__":
    asyncio.run(main())

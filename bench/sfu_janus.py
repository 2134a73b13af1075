"""The same room through Janus's VideoRoom (Debian's ``janus``), as the benchmark's peer.

Janus runs with its own configuration in a temporary folder (HTTP transport and the
VideoRoom plugin only, ICE on loopback) and is driven through its HTTP API with long
polling; the peers are the same processes and replayed media as for our SFU, so the CPU of
the two servers per forwarded stream compares like with like.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from bench.room_harness import ServerSample, Worker, measure, server_sample

JANUS_BINARY = "/usr/bin/janus"
JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
ROOM = 4242
# libnice gathers no loopback candidate, so Janus needs an interface of its own: main() in
# bench/room_scale.py re-runs the benchmark in a private network namespace holding a veth pair
# with this address (nothing leaves the namespace).
NETNS_ENV = "BENCH_NETNS_ADDRESS"
NETNS_ADDRESS = "10.99.0.1"
NETNS_SETUP = (f"ip link set lo up && ip link add bench0 type veth peer name bench1 && "
               f"ip addr add {NETNS_ADDRESS}/24 dev bench0 && ip link set bench0 up && "
               f"ip link set bench1 up")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_config(folder: Path, port: int) -> None:
    plugins = [p.name for p in (JANUS_LIB / "plugins").glob("*.so")
               if "videoroom" not in p.name]
    transports = [p.name for p in (JANUS_LIB / "transports").glob("*.so")
                  if "http" not in p.name]
    (folder / "janus.jcfg").write_text(f"""
general: {{
    configs_folder = "{folder}"
    plugins_folder = "{JANUS_LIB / 'plugins'}"
    transports_folder = "{JANUS_LIB / 'transports'}"
    events_folder = "{JANUS_LIB / 'events'}"
    loggers_folder = "{JANUS_LIB / 'loggers'}"
    debug_level = 3
    session_timeout = 120
}}
media: {{ rtp_port_range = "30000-40000" }}
nat: {{ ice_enforce_list = "bench0" nice_debug = false }}
plugins: {{ disable = "{','.join(plugins)}" }}
transports: {{ disable = "{','.join(transports)}" }}
events: {{ broadcast = false }}
""")
    (folder / "janus.transport.http.jcfg").write_text(f"""
general: {{ json = "compact" base_path = "/janus" http = true port = {port}
           interface = "lo" https = false }}
admin: {{ admin_http = false }}
""")
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: { }\n")


class JanusSession:
    """One Janus API session with its long-poll loop; events are routed by transaction."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base
        self.id = 0
        self._tx = itertools.count()
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._poller: asyncio.Task[None] | None = None

    async def _post(self, path: str, body: dict[str, Any],
                    wait_event: bool = True) -> dict[str, Any]:
        tx = f"t{next(self._tx)}"
        # Registered before sending: the long poll may bring the event before the ack.
        future = asyncio.get_running_loop().create_future()
        self._waiting[tx] = future
        try:
            async with self.http.post(self.base + path, json={**body, "transaction": tx}) as r:
                reply = await r.json()
            if reply.get("janus") == "error":
                raise RuntimeError(f"janus: {reply['error']}")
            if reply.get("janus") == "ack" and wait_event:
                reply = await asyncio.wait_for(future, 30)
        finally:
            self._waiting.pop(tx, None)
        data = reply.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise RuntimeError(f"videoroom: {data['error']}")
        return reply

    async def start(self) -> None:
        self.id = (await self._post("", {"janus": "create"}))["data"]["id"]
        self._poller = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            async with self.http.get(f"{self.base}/{self.id}?maxev=10") as r:
                events = await r.json()
            for event in events if isinstance(events, list) else [events]:
                future = self._waiting.pop(event.get("transaction", ""), None)
                if future is not None and not future.done() and event.get("janus") == "event":
                    future.set_result(event)

    async def attach(self) -> int:
        reply = await self._post(f"/{self.id}", {"janus": "attach",
                                                 "plugin": "janus.plugin.videoroom"})
        return int(reply["data"]["id"])

    async def message(self, handle: int, body: dict[str, Any],
                      jsep: dict[str, Any] | None = None) -> dict[str, Any]:
        request: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        return await self._post(f"/{self.id}/{handle}", request)

    async def candidates_done(self, handle: int) -> None:
        """aiortc puts every candidate in its SDP; Janus still waits for the end of trickle."""
        await self._post(f"/{self.id}/{handle}", {"janus": "trickle",
                                                  "candidate": {"completed": True}},
                         wait_event=False)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        await self._post(f"/{self.id}", {"janus": "destroy"})


def _janus_cpu(pid: int) -> tuple[float, float]:
    """Janus's (user + system, system) CPU seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, int(fields[12]) / tick


async def run_janus_room(publishers: int, observers: int, seconds: float,
                         peer_processes: int, peer_options: dict[str, Any]) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-janus-"))
    port = _free_port()
    _write_config(folder, port)
    log = (folder / "janus.log").open("w")
    janus = subprocess.Popen([JANUS_BINARY, "-F", str(folder), "-C", str(folder / "janus.jcfg"),
                              "-E", "bench0", "-o"], stdout=log, stderr=subprocess.STDOUT)
    address = os.environ[NETNS_ENV]
    peers = [Worker("peer", ice_address=address, **peer_options) for _ in range(peer_processes)]
    pub_ids = [f"p{i}" for i in range(publishers)]
    obs_ids = [f"o{i}" for i in range(observers)]
    home = {pid: peers[i % len(peers)] for i, pid in enumerate(pub_ids + obs_ids)}
    base = f"http://127.0.0.1:{port}/janus"
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    session = JanusSession(http, base)
    try:
        for _ in range(100):
            try:
                async with http.get(base + "/info") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"janus did not start; see {folder / 'janus.log'}")
        await session.start()
        admin = await session.attach()
        await session.message(admin, {"request": "create", "room": ROOM,
                                      "publishers": publishers + 1, "bitrate": 0,
                                      "videocodec": "vp8", "audiocodec": "opus",
                                      "fir_freq": 0})
        feeds: dict[str, int] = {}
        for pid in pub_ids:
            handle = await session.attach()
            offer = await home[pid].call("publish_offer", pid)
            reply = await session.message(
                handle, {"request": "joinandconfigure", "room": ROOM, "ptype": "publisher",
                         "display": pid, "audio": True, "video": True},
                {"type": "offer", "sdp": offer})
            await session.candidates_done(handle)
            feeds[pid] = int(reply["plugindata"]["data"]["id"])
            await home[pid].call("publish_answer", pid, reply["jsep"]["sdp"])
        await asyncio.sleep(1)
        for pid in pub_ids + obs_ids:
            streams = [{"feed": feed} for owner, feed in feeds.items() if owner != pid]
            if not streams:
                continue
            handle = await session.attach()
            reply = await session.message(handle, {"request": "join", "room": ROOM,
                                                   "ptype": "subscriber", "streams": streams})
            answer = await home[pid].call("subscribe", pid, reply["jsep"]["sdp"])
            await session.message(handle, {"request": "start", "room": ROOM},
                                  {"type": "answer", "sdp": answer})
            await session.candidates_done(handle)
        await asyncio.sleep(4)

        async def janus_sample() -> ServerSample:
            # Janus exposes no packet counter here: -1 marks packets/s as not measured.
            cpu, kernel = _janus_cpu(janus.pid)
            return {**server_sample(-1), "cpu": cpu, "kernel": kernel}

        return {"mode": "janus", **await measure(peers, publishers, observers, seconds,
                                                 janus_sample)}
    except Exception:
        log.flush()
        print("janus log, last lines:\n" + "\n".join(
            (folder / "janus.log").read_text().splitlines()[-25:]))
        raise
    finally:
        # Janus may already be gone; it is killed below either way.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(session.close(), 5)
        await http.close()
        for worker in peers:
            await worker.close()
        janus.terminate()
        try:
            janus.wait(10)
        except subprocess.TimeoutExpired:
            janus.kill()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)

"""Every few seconds: the SFU's per-stream figures, summed per participant, sent to the
room and kept here for a /metrics endpoint."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from typing import Any

from media.room import RoomStats

from ..ports import Outbox
from ..room_state import RoomState
from .bridge import MediaBridge

log = logging.getLogger(__name__)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(raw: RoomStats) -> dict[str, dict[str, Any]]:
    """Per participant: what it publishes (as the SFU receives it) and what it receives
    (as the SFU sends it, with loss and RTT from its receiver reports)."""
    people: dict[str, dict[str, Any]] = {}

    def entry(pid: str) -> dict[str, Any]:
        return people.setdefault(pid, {"publish": [], "receive": {
            "bitrate_bps": 0.0, "video_fps": 0.0, "streams": 0, "packets_lost": 0,
            "fraction_lost": None, "rtt_s": None}})

    for s in raw["inbound"]:
        entry(s["publisher_id"])["publish"].append({
            "track_id": s["track_id"], "kind": s["kind"], "codec": s["codec"],
            "bitrate_bps": s["bitrate_bps"], "fps": s["fps"], "packets": s["packets"],
            "packets_lost": s["packets_lost"], "jitter_s": s["jitter_s"],
        })
    losses: dict[str, list[float]] = {}
    rtts: dict[str, list[float]] = {}
    for s in raw["outbound"]:
        pid = s["subscriber_id"]
        receive = entry(pid)["receive"]
        receive["bitrate_bps"] += s["bitrate_bps"]
        receive["streams"] += 1
        if s["kind"] == "video":
            receive["video_fps"] += s["fps"]
        if s["packets_lost"] is not None:
            receive["packets_lost"] += s["packets_lost"]
        if s["fraction_lost"] is not None:
            losses.setdefault(pid, []).append(s["fraction_lost"])
        if s["rtt_s"] is not None:
            rtts.setdefault(pid, []).append(s["rtt_s"])
    for pid, person in people.items():
        person["receive"]["fraction_lost"] = max(losses[pid]) if pid in losses else None
        person["receive"]["rtt_s"] = _mean(rtts.get(pid, []))
    return people


async def media_figures(bridge: MediaBridge, state: RoomState,
                        latest: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """What /metrics shows of this process's SFU: the rooms whose media it carries, their
    members, its streams (from the latest stats round) and its CPU and memory. Plain data,
    so a worker can send it to its node. ``latest``: StatsCollector.latest."""
    members: Counter[tuple[str, str, str]] = Counter()
    rooms = 0
    for room_id in bridge.room_ids():
        in_room = await state.members(room_id)
        rooms += bool(in_room)
        for m in in_room:
            members[(m.role.value, "connected" if m.connected else "reconnecting",
                     "admitted" if m.admitted else "lobby")] += 1
    raws = [room["raw"] for room in latest.values()]
    mirrors, dropped = bridge.relay_figures()
    with open("/proc/self/statm") as statm:  # noqa: ASYNC230 - procfs answers at once
        rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return {
        "rooms": rooms,
        "members": [[*key, count] for key, count in sorted(members.items())],
        "inbound": [{"bitrate_bps": s["bitrate_bps"], "packets": s["packets"] or 0}
                    for raw in raws for s in raw.get("inbound", [])],
        "outbound": [{"bitrate_bps": s["bitrate_bps"], "packets": s["packets"] or 0,
                      "packets_lost": s["packets_lost"] or 0,
                      "fraction_lost": s["fraction_lost"]}
                     for raw in raws for s in raw.get("outbound", [])],
        "relay_mirrors": mirrors,
        "relay_frames_dropped": dropped,
        "cpu_seconds": time.process_time(),
        "rss_bytes": rss,
    }


class StatsCollector:
    def __init__(self, bridge: MediaBridge, outbox: Outbox, interval: float) -> None:
        self._bridge = bridge
        self._outbox = outbox
        self._interval = interval
        #: room id → {"at": unix time, "participants": summary, "raw": SFU stats}
        self.latest: dict[int, dict[str, Any]] = {}

    async def collect_once(self) -> None:
        bridge = self._bridge
        await bridge.report_mirrors()
        live = set(bridge.room_ids())
        for room_id in list(self.latest):
            if room_id not in live:
                del self.latest[room_id]
        for room_id in live:
            raw = await bridge.stats(room_id)
            if raw is None:
                continue
            summary = summarize(raw)
            self.latest[room_id] = {"at": time.time(), "participants": summary, "raw": raw}
            await self._outbox.broadcast(room_id, "stats", {
                "interval_s": self._interval, "participants": summary})

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.collect_once()
            except Exception:
                # One bad read must not end stats for every room.
                log.exception("room stats collection failed")

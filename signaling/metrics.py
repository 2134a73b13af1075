"""The rooms' figures at ``/metrics``: rooms and their members, the media the SFU receives
and forwards, and the SFU workers. Read from the room state and the latest SFU statistics at
each scrape; counts only, no name."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from app.appkeys import SETTINGS
from app.metrics import METRIC_SOURCES, gauge

from .cluster.nodes import worker_id
from .server import MEDIA


async def _room_families(app: web.Application) -> list[Metric]:
    media = app.get(MEDIA)
    settings = app[SETTINGS]
    # The rooms whose media this process (or one of its SFU workers) carries: with several
    # nodes sharing Redis, each room is counted by exactly one of them.
    mine = [await media.figures()] if media is not None else []
    workers: dict[str, dict[str, Any] | None] = {}
    if media is not None and media.router is not None:
        for index in range(settings.media_workers):
            name = worker_id(settings.node_id, index)
            workers[name] = await media.router.figures(name)
    every: list[dict[str, Any]] = mine + [f for f in workers.values() if f is not None]
    members: Counter[tuple[str, str, str]] = Counter()
    for figures in every:
        for role, status, place, count in figures["members"]:
            members[(role, status, place)] += count
    by_role = GaugeMetricFamily("hoichan_room_members", "Members of live rooms",
                                labels=["role", "status", "place"])
    for (role, status, place), count in sorted(members.items()):
        by_role.add_metric([role, status, place], count)
    inbound = [s for f in every for s in f["inbound"]]
    outbound = [s for f in every for s in f["outbound"]]
    losses = [s["fraction_lost"] for s in outbound if s["fraction_lost"] is not None]
    up = GaugeMetricFamily("hoichan_worker_up", "Whether the SFU worker answered",
                           labels=["worker"])
    cpu = CounterMetricFamily("hoichan_worker_cpu_seconds", "CPU time of the SFU worker",
                              labels=["worker"])
    rss = GaugeMetricFamily("hoichan_worker_resident_memory_bytes",
                            "Resident memory of the SFU worker", labels=["worker"])
    mirrors = GaugeMetricFamily("hoichan_worker_relay_mirrors", "Other workers' mirrors of "
                                "rooms received in this worker, fed over its relay",
                                labels=["worker"])
    dropped = CounterMetricFamily("hoichan_worker_relay_frames_dropped", "Frames the "
                                  "worker did not relay to a lagging mirror",
                                  labels=["worker"])
    for name, answer in sorted(workers.items()):
        up.add_metric([name], answer is not None)
        if answer is not None:
            cpu.add_metric([name], answer["cpu_seconds"])
            rss.add_metric([name], answer["rss_bytes"])
            mirrors.add_metric([name], answer["relay_mirrors"])
            dropped.add_metric([name], answer["relay_frames_dropped"])
    return [
        gauge("hoichan_rooms", "Rooms whose media this process and its workers carry",
               sum(f["rooms"] for f in every)),
        by_role,
        gauge("hoichan_received_streams", "Streams the SFU receives from publishers",
               len(inbound)),
        gauge("hoichan_received_bitrate_bps", "Bitrate the SFU receives",
               sum(s["bitrate_bps"] for s in inbound)),
        gauge("hoichan_forwarded_streams", "Streams the SFU forwards to subscribers",
               len(outbound)),
        gauge("hoichan_forwarded_bitrate_bps", "Bitrate the SFU forwards",
               sum(s["bitrate_bps"] for s in outbound)),
        gauge("hoichan_received_packets", "RTP packets the SFU received on its live "
               "published streams", sum(s["packets"] for s in inbound)),
        gauge("hoichan_forwarded_packets", "RTP packets the SFU sent on its live forwarded "
               "streams", sum(s["packets"] for s in outbound)),
        gauge("hoichan_forwarded_packets_lost", "Packets lost towards subscribers, as their "
               "receiver reports say", sum(s["packets_lost"] for s in outbound)),
        gauge("hoichan_subscriber_fraction_lost_max", "The worst subscriber loss fraction",
               max(losses, default=0.0)),
        up, cpu, rss, mirrors, dropped,
    ]


def setup_room_metrics(app: web.Application) -> None:
    app[METRIC_SOURCES].append(_room_families)

"""Prometheus metrics of this process at ``/metrics``: rooms and their members, the media the
SFU receives and forwards, PACS imports, the DICOM store, and the process (CPU, memory).

Figures are read when Prometheus scrapes, from the room state, the latest SFU statistics and
the database, so nothing is kept twice. Counts only: no name, no patient data.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Iterator
from ipaddress import ip_address
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from app.appkeys import READ_SESSIONS, SETTINGS
from app.errors import forbidden, unauthorized
from app.pacs.models import DicomInstance, ImportJob
from signaling.media_router import MediaRouter
from signaling.nodes import worker_id
from signaling.server import HUB
from signaling.stats import media_figures


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


async def _room_families(app: web.Application) -> list[Metric]:
    hub = app.get(HUB)
    settings = app[SETTINGS]
    # The rooms whose media this process (or one of its SFU workers) carries: with several
    # nodes sharing Redis, each room is counted by exactly one of them.
    mine = [await media_figures(hub)] if hub is not None else []
    workers: dict[str, dict[str, Any] | None] = {}
    if hub is not None and isinstance(hub.media, MediaRouter):
        for index in range(settings.media_workers):
            name = worker_id(settings.node_id, index)
            workers[name] = await hub.media.figures(name)
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
        _gauge("hoichan_rooms", "Rooms whose media this process and its workers carry",
               sum(f["rooms"] for f in every)),
        by_role,
        _gauge("hoichan_received_streams", "Streams the SFU receives from publishers",
               len(inbound)),
        _gauge("hoichan_received_bitrate_bps", "Bitrate the SFU receives",
               sum(s["bitrate_bps"] for s in inbound)),
        _gauge("hoichan_forwarded_streams", "Streams the SFU forwards to subscribers",
               len(outbound)),
        _gauge("hoichan_forwarded_bitrate_bps", "Bitrate the SFU forwards",
               sum(s["bitrate_bps"] for s in outbound)),
        _gauge("hoichan_received_packets", "RTP packets the SFU received on its live "
               "published streams", sum(s["packets"] for s in inbound)),
        _gauge("hoichan_forwarded_packets", "RTP packets the SFU sent on its live forwarded "
               "streams", sum(s["packets"] for s in outbound)),
        _gauge("hoichan_forwarded_packets_lost", "Packets lost towards subscribers, as their "
               "receiver reports say", sum(s["packets_lost"] for s in outbound)),
        _gauge("hoichan_subscriber_fraction_lost_max", "The worst subscriber loss fraction",
               max(losses, default=0.0)),
        up, cpu, rss, mirrors, dropped,
    ]


async def _store_families(app: web.Application) -> list[Metric]:
    async with app[READ_SESSIONS]() as session:
        instances = await session.scalar(select(func.count(DicomInstance.id))) or 0
        jobs = dict((await session.execute(
            select(ImportJob.status, func.count(ImportJob.id))
            .group_by(ImportJob.status))).all())
    imports = GaugeMetricFamily("hoichan_import_jobs", "PACS imports by status",
                                labels=["status"])
    for status, count in sorted(jobs.items(), key=lambda kv: kv[0].value):
        imports.add_metric([status.value], count)
    return [_gauge("hoichan_dicom_instances", "Instances in the DICOM store", instances),
            imports]


def _check_access(request: web.Request) -> None:
    """With HOICHAN_METRICS_TOKEN, its bearer; without, loopback callers only."""
    token = request.app[SETTINGS].metrics_token
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
            raise unauthorized("metrics need the HOICHAN_METRICS_TOKEN bearer token")
        return
    try:
        local = ip_address(request.remote or "").is_loopback
    except ValueError:
        local = False
    if not local:
        raise forbidden("metrics are served to loopback only unless HOICHAN_METRICS_TOKEN "
                        "is set")


async def metrics(request: web.Request) -> web.Response:
    _check_access(request)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(await _room_families(request.app)
                                + await _store_families(request.app)))
    ProcessCollector(registry=registry)
    return web.Response(body=generate_latest(registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_metrics(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)

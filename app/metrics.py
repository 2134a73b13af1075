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

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from app.appkeys import READ_SESSIONS, SETTINGS
from app.errors import forbidden, unauthorized
from app.pacs.models import DicomInstance, ImportJob
from signaling.server import HUB


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


async def _room_families(app: web.Application) -> list[Metric]:
    hub = app.get(HUB)
    members: Counter[tuple[str, str, str]] = Counter()
    rooms = 0
    if hub is not None and hub.bridge is not None:
        # The rooms whose media this process carries: with several nodes sharing Redis,
        # each room is counted by exactly one of them.
        for room_id in hub.bridge.room_ids():
            in_room = await hub.state.members(room_id)
            rooms += bool(in_room)
            for m in in_room:
                members[(m.role.value, "connected" if m.connected else "reconnecting",
                         "admitted" if m.admitted else "lobby")] += 1
    by_role = GaugeMetricFamily("hoichan_room_members", "Members of live rooms",
                                labels=["role", "status", "place"])
    for (role, status, place), count in sorted(members.items()):
        by_role.add_metric([role, status, place], count)
    inbound = outbound = []
    if hub is not None and hub.stats is not None:
        raws = [room["raw"] for room in hub.stats.latest.values()]
        inbound = [s for raw in raws for s in raw.get("inbound", [])]
        outbound = [s for raw in raws for s in raw.get("outbound", [])]
    losses = [s["fraction_lost"] for s in outbound if s["fraction_lost"] is not None]
    return [
        _gauge("hoichan_rooms", "Rooms with members in this process", rooms),
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
               "published streams", sum(s["packets"] or 0 for s in inbound)),
        _gauge("hoichan_forwarded_packets", "RTP packets the SFU sent on its live forwarded "
               "streams", sum(s["packets"] or 0 for s in outbound)),
        _gauge("hoichan_forwarded_packets_lost", "Packets lost towards subscribers, as their "
               "receiver reports say", sum(s["packets_lost"] or 0 for s in outbound)),
        _gauge("hoichan_subscriber_fraction_lost_max", "The worst subscriber loss fraction",
               max(losses, default=0.0)),
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

"""Prometheus metrics of this process at ``/metrics``: PACS imports, the DICOM store, the
process (CPU, memory), and what other parts add as sources (the rooms and their media).

Figures are read when Prometheus scrapes, from the database and the sources, so nothing is
kept twice. Counts only: no name, no patient data.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterator
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

#: Figures another part of the server adds (the rooms: ``signaling.metrics``), read at each
#: scrape like the store's.
MetricSource = Callable[[web.Application], Awaitable[list[Metric]]]
METRIC_SOURCES = web.AppKey("metric_sources", list[MetricSource])


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


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
    return [gauge("hoichan_dicom_instances", "Instances in the DICOM store", instances),
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
    families: list[Metric] = []
    for source in request.app[METRIC_SOURCES]:
        families += await source(request.app)
    registry.register(_Families(families))
    ProcessCollector(registry=registry)
    return web.Response(body=generate_latest(registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_metrics(app: web.Application) -> None:
    sources: list[MetricSource] = [_store_families]
    app[METRIC_SOURCES] = sources
    app.router.add_get("/metrics", metrics)

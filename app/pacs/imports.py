"""Bringing a study from a remote PACS into a case, in the background.

A job is a database row, so it outlives the request that asked for it, a client that went
away and a restart of the server (jobs found queued or running at start are run again;
ingest is idempotent, so what had come already is not fetched twice into the store). With
several nodes on one database, a node claims a job with a lease it renews while the job runs:
one node runs it, and if that node dies another takes it over when the lease runs out.
Progress is what the store holds of the study, counted while the retrieval runs: the same
truth whichever way the objects come (C-MOVE to our SCP, C-GET, WADO-RS).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import audit
from app.appkeys import SESSIONS, SETTINGS
from app.db.models import CaseStudy
from app.db.types import utcnow
from app.pacs import dicomweb_client, dimse_client
from app.pacs.ingest import Ingested, Ingester, IngestError
from app.pacs.models import (
    DicomInstance,
    DicomSeries,
    DicomStudy,
    ImportJob,
    ImportStatus,
    NodeKind,
    PacsNode,
    Retrieve,
)
from app.pacs.query import RemoteError, RemoteStudy, StudyQuery
from app.pacs.setup import INGESTER, SCP
from app.pacs.window import Window

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.5
CONCURRENT_JOBS = 2
#: A running job's claim holds this long unless its node renews it (every third of it).
LEASE = timedelta(seconds=30)
#: How often a node looks for jobs nobody holds (queued, or left by a node that died).
ADOPT_INTERVAL_S = 10.0
#: WADO-RS objects read ahead while earlier ones are being kept, so they commit in groups.
WADO_IN_FLIGHT = 16
WADO_IN_FLIGHT_BYTES = 256 * 1024 * 1024
STATUS_SUCCESS = 0x0000
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_OUT_OF_RESOURCES = 0xA700


def peer(node: PacsNode, calling_ae_title: str) -> dimse_client.Peer:
    assert node.port is not None
    return dimse_client.Peer(node.ae_title, node.host, node.port, calling_ae_title)


async def find_studies(node: PacsNode, calling_ae_title: str, query: StudyQuery,
                       limit: int) -> list[RemoteStudy]:
    if node.kind is NodeKind.dicomweb:
        return await dicomweb_client.find_studies(node.dicomweb_url, query, limit)
    return await asyncio.to_thread(dimse_client.find_studies, peer(node, calling_ae_title),
                                   query, limit)


async def find_study(node: PacsNode, calling_ae_title: str,
                     study_instance_uid: str) -> RemoteStudy | None:
    found = await find_studies(node, calling_ae_title,
                               StudyQuery(study_instance_uid=study_instance_uid), 1)
    return found[0] if found else None


async def stored_instances(session: AsyncSession, study_instance_uid: str) -> int:
    return int(await session.scalar(
        select(func.count(DicomInstance.id))
        .join(DicomSeries, DicomSeries.id == DicomInstance.series_id)
        .join(DicomStudy, DicomStudy.id == DicomSeries.study_id)
        .where(DicomStudy.study_instance_uid == study_instance_uid)) or 0)


class Importer:
    """Runs import jobs, at most ``CONCURRENT_JOBS`` at once, each in its own task."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ingester: Ingester,
                 ae_title: str, scp_listening: Callable[[], bool], node_id: str) -> None:
        self._sessions, self._ingester, self._ae_title = sessions, ingester, ae_title
        self._scp_listening = scp_listening
        self._node_id = node_id
        self._slots = asyncio.Semaphore(CONCURRENT_JOBS)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._adopting: asyncio.Task[None] | None = None

    async def resume(self) -> None:
        """Runs the jobs nobody holds: queued, or running under a lease that ran out (the
        node running them stopped or died) or under this node's own name (this node's
        previous process)."""
        async with self._sessions() as session:
            ids = list(await session.scalars(
                select(ImportJob.id).where(
                    ImportJob.status.in_((ImportStatus.queued, ImportStatus.running)),
                    self._claimable()).order_by(ImportJob.id)))
        for job_id in ids:
            self.submit(job_id)

    async def start(self) -> None:
        await self.resume()
        self._adopting = asyncio.create_task(self._adopt_forever())

    async def _adopt_forever(self) -> None:
        """Other nodes may die with jobs running: look for them now and then."""
        while True:
            await asyncio.sleep(ADOPT_INTERVAL_S)
            try:
                await self.resume()
            except Exception:
                log.exception("looking for import jobs to take over failed")

    def _claimable(self) -> Any:
        return or_(ImportJob.lease_until.is_(None), ImportJob.lease_until < utcnow(),
                   ImportJob.runner == self._node_id)

    def submit(self, job_id: int) -> None:
        if job_id in self._tasks:
            return
        task = asyncio.create_task(self._run(job_id), name=f"import-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    async def wait(self, job_id: int) -> None:
        """For tests and shutdown: until the job's current run is over."""
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.shield(task)

    async def stop(self) -> None:
        """Jobs cut off here stay "running" in the database: this node's next start or,
        once their lease runs out, another node runs them again."""
        if self._adopting is not None:
            self._adopting.cancel()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, job_id: int) -> None:
        async with self._slots:
            async with self._sessions.begin() as session:
                # One conditional UPDATE: of several nodes taking the job, one gets it.
                now = utcnow()
                claimed = await session.execute(
                    update(ImportJob)
                    .where(ImportJob.id == job_id,
                           ImportJob.status.in_((ImportStatus.queued, ImportStatus.running)),
                           self._claimable())
                    .values(status=ImportStatus.running, error="",
                            attempts=ImportJob.attempts + 1, runner=self._node_id,
                            lease_until=now + LEASE, updated_at=now))
                if not claimed.rowcount:  # type: ignore[attr-defined]
                    return
                job = await session.get(ImportJob, job_id)
                assert job is not None
                node, study_uid = job.node, job.study_instance_uid
            ticker = asyncio.create_task(self._report_progress(job_id, study_uid))
            try:
                error = await self._retrieve(node, study_uid) if node else \
                    "the PACS node was removed"
            except RemoteError as exc:
                error = str(exc)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("import %d failed", job_id)
                error = "internal error; see the server log"
            finally:
                ticker.cancel()
            try:
                await self._finish(job_id, error)
            except Exception:
                # Left "running": the next start of the server runs it again.
                log.exception("import %d: could not record its outcome", job_id)

    async def _retrieve(self, node: PacsNode, study_uid: str) -> str:
        """Runs the retrieval; returns what went wrong, or "" when the node reports none."""
        if node.kind is NodeKind.dicomweb:
            source = f"WADO-RS {node.name}"
            window: Window[Ingested] = Window(WADO_IN_FLIGHT, WADO_IN_FLIGHT_BYTES)

            async def store(data: bytes) -> None:
                await window.add(self._ingester.ingest(data, source), len(data))

            try:
                await dicomweb_client.retrieve_study(node.dicomweb_url, study_uid, store)
            finally:
                await window.wait()
            window.raise_first()
            return ""
        remote = peer(node, self._ae_title)
        if node.retrieve is Retrieve.c_move:
            if not self._scp_listening():
                return ("C-MOVE needs our DICOM SCP listening (HOICHAN_DICOM_PORT); "
                        "use C-GET for this node or enable the SCP")
            result = await asyncio.to_thread(dimse_client.move_study, remote, study_uid,
                                             self._ae_title)
        else:
            sop_classes = await asyncio.to_thread(dimse_client.sop_classes_in_study, remote,
                                                  study_uid)
            result = await asyncio.to_thread(dimse_client.get_study, remote, study_uid,
                                             sop_classes, self._store_from_thread(node))
        if result.failed:
            return f"the node could not send {result.failed} instance(s)"
        return ""

    def _store_from_thread(self, node: PacsNode) -> Callable[[bytes], int]:
        """C-GET's store handler, on pynetdicom's thread."""
        source = f"C-GET {node.name}"

        def store(data: bytes) -> int:
            try:
                self._ingester.ingest_in_thread(data, source)
            except IngestError as exc:
                log.warning("C-GET object from %s refused: %s", node.name, exc)
                return STATUS_CANNOT_UNDERSTAND
            except Exception:
                log.exception("C-GET object from %s could not be stored", node.name)
                return STATUS_OUT_OF_RESOURCES
            return STATUS_SUCCESS
        return store

    async def _report_progress(self, job_id: int, study_uid: str) -> None:
        """Progress as instances arrive, and the job's lease renewed while it runs."""
        last = -1
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            renew = time.monotonic() - renewed >= LEASE.total_seconds() / 3
            async with self._sessions.begin() as session:
                done = await stored_instances(session, study_uid)
                job = await session.get(ImportJob, job_id)
                if job is not None and (done != last or renew):
                    now = utcnow()
                    job.instances_done, job.updated_at = done, now
                    if renew:
                        job.lease_until, renewed = now + LEASE, time.monotonic()
                last = done

    async def _finish(self, job_id: int, error: str) -> None:
        async with self._sessions.begin() as session:
            job = await session.get(ImportJob, job_id)
            if job is None:
                return  # its case was removed meanwhile
            job.instances_done = await stored_instances(session, job.study_instance_uid)
            if not error and job.instances_total and job.instances_done < job.instances_total:
                error = (f"{job.instances_total - job.instances_done} of "
                         f"{job.instances_total} instances did not arrive")
            job.instances_failed = max((job.instances_total or 0) - job.instances_done, 0) \
                if error else 0
            job.status = ImportStatus.failed if error else ImportStatus.done
            job.error, job.updated_at = error, utcnow()
            job.runner, job.lease_until = "", None
            if not error and not await session.scalar(select(CaseStudy.id).where(
                    CaseStudy.case_id == job.case_id,
                    CaseStudy.study_instance_uid == job.study_instance_uid)):
                session.add(CaseStudy(case_id=job.case_id,
                                      study_instance_uid=job.study_instance_uid))
            audit.record(session, "pacs.import." + job.status.value, actor=None,
                         actor_email=job.requested_by.email, object_type="import",
                         object_id=job.id, consultation_id=job.case.consultation_id,
                         outcome=audit.FAILURE if error else audit.SUCCESS,
                         detail={"node": job.node.name if job.node else None,
                                 "study": job.study_instance_uid,
                                 "instances": job.instances_done, "error": error})
        log.info("import %d %s%s", job_id, "failed: " if error else "done", error)


IMPORTER = web.AppKey("importer", Importer)


def setup_imports(app: web.Application) -> None:
    """The importer starts with the application, after the SCP that C-MOVE sends to, and
    stops as the application begins to shut down, while the ingester still keeps what its
    jobs bring."""
    async def start(app: web.Application) -> None:
        settings = app[SETTINGS]
        importer = Importer(app[SESSIONS], app[INGESTER], settings.dicom_ae_title,
                            lambda: SCP in app, settings.node_id)
        app[IMPORTER] = importer
        await importer.start()

    async def stop(app: web.Application) -> None:
        importer = app.get(IMPORTER)
        if importer is not None:
            await importer.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)

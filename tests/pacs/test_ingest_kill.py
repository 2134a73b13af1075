"""A real `hoichan serve` killed with SIGKILL while objects come in, by storescu and by
several pynetdicom associations: after the restart every object it acknowledged is indexed
and readable by WADO-RS, and nothing is half kept (no row without its file, no file without
its row, no staged file left)."""

from __future__ import annotations

import asyncio
import io
import threading

import pydicom
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from tests.pacs.ingest_helpers import ct, nothing_half_kept, server
from tests.pacs.scp_helpers import run
from tests.pacs.tiny import Study, instance
from tests.waiting import poll

ASSOCIATIONS = 4
PER_ASSOCIATION = 100
KILL_AFTER = 150  # acknowledgements


async def test_what_storescu_had_acknowledged_survives_kill_9(world, tmp_path):
    app = server(world, tmp_path / "node")
    sent = {str(ds.SOPInstanceUID): ds for ds in (ct(tmp_path) for _ in range(5))}
    app.start(60)
    try:
        _, out = await run("storescu", "-v", "-aec", "HOICHAN", "127.0.0.1",
                           app.env["HOICHAN_DICOM_PORT"],
                           *(str(tmp_path / f"{uid}.dcm") for uid in sent))
        app.kill()  # the moment storescu has its answers
        assert out.count("Received Store Response (Success)") == len(sent), out
        app.start(60)
        await nothing_half_kept(world, app, sent, set(sent))
    finally:
        app.stop()


def _objects(study_uid: str) -> list[list[pydicom.Dataset]]:
    """Each association's objects: tiny CT slices of one study, a series per association."""
    study = Study(study_uid, "KILL-1", "NGUYEN^KILL", "20261201")
    return [[pydicom.dcmread(io.BytesIO(instance(study, series, number)))
             for number in range(1, PER_ASSOCIATION + 1)]
            for series in range(1, ASSOCIATIONS + 1)]


class Senders:
    """One pynetdicom association per list of objects, each on its thread; ``acked``
    holds the SOP Instance UIDs answered with success, as they are answered."""

    def __init__(self, port: int, objects: list[list[pydicom.Dataset]]) -> None:
        self.acked: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send, args=(port, batch), daemon=True)
                         for batch in objects]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(30)

    def _send(self, port: int, datasets: list[pydicom.Dataset]) -> None:
        ae = AE(ae_title="PACS")
        # Short: once the server is killed, each association stops at its next exchange.
        ae.dimse_timeout = ae.network_timeout = 5
        ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", port, ae_title="HOICHAN")
        if not assoc.is_established:
            return
        try:
            for ds in datasets:
                if not assoc.is_established:
                    return  # the server is gone
                status = assoc.send_c_store(ds)
                if status and int(status.Status) == 0:
                    with self._lock:
                        self.acked.append(str(ds.SOPInstanceUID))
        finally:
            if assoc.is_established:
                assoc.release()


async def test_what_was_acknowledged_survives_kill_9_in_mid_stream(world, tmp_path):
    app = server(world, tmp_path / "node")
    objects = _objects(generate_uid())
    sent = {str(ds.SOPInstanceUID): ds for batch in objects for ds in batch}
    app.start(60)
    try:
        senders = Senders(int(app.env["HOICHAN_DICOM_PORT"]), objects)
        senders.start()
        await poll(lambda: len(senders.acked) >= KILL_AFTER, 120, interval=0.005)
        app.kill()  # with objects in flight on every association
        await asyncio.to_thread(senders.join)
        acked = set(senders.acked)  # answers read after the kill were sent before it
        assert KILL_AFTER <= len(acked) < len(sent), len(acked)
        app.start(60)
        await nothing_half_kept(world, app, sent, acked)
    finally:
        app.stop()

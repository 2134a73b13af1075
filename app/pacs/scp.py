"""The C-STORE and C-ECHO SCP that hospital PACS and modalities push to.

pynetdicom serves associations on its own threads; each received object is handed to the
application's event loop for ingest, and the association thread waits for the outcome, so
success is answered only once the object is on disk and indexed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pynetdicom import ALL_TRANSFER_SYNTAXES, AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from app.pacs.ingest import IngestError, Ingested

log = logging.getLogger(__name__)

# Status codes of PS3.4 Annex B: "cannot understand" for a malformed object,
# "out of resources" when it could not be kept (disk, database).
STATUS_SUCCESS = 0x0000
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_OUT_OF_RESOURCES = 0xA700
INGEST_TIMEOUT_S = 120.0

IngestFn = Callable[[bytes, str], Awaitable[Ingested]]


class StoreScp:
    """Listens on ``(host, port)`` as ``ae_title``; ``allowed_callers`` empty means any."""

    def __init__(self, ae_title: str, host: str, port: int, allowed_callers: tuple[str, ...],
                 ingest: IngestFn, loop: asyncio.AbstractEventLoop) -> None:
        self._ingest, self._loop = ingest, loop
        self._address = (host, port)
        self._ae = AE(ae_title=ae_title)
        for context in AllStoragePresentationContexts:
            self._ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        self._ae.add_supported_context(Verification)
        if allowed_callers:
            self._ae.require_called_aet = True
            self._ae.require_calling_aet = list(allowed_callers)
        self._server: ThreadedAssociationServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._server = self._ae.start_server(
            self._address, block=False,
            evt_handlers=[(evt.EVT_C_STORE, self._on_store), (evt.EVT_C_ECHO, self._on_echo)])
        log.info("DICOM SCP %s listening on %s:%d", self._ae.ae_title, self._address[0],
                 self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _on_echo(self, event: Any) -> int:
        return STATUS_SUCCESS

    def _on_store(self, event: Any) -> int:
        caller = f"{event.assoc.requestor.ae_title}@{event.assoc.requestor.address}"
        try:
            # The bytes as received, with file meta: stored without re-encoding.
            data = bytes(event.encoded_dataset())
        except Exception as exc:  # pynetdicom raises what the decoder raised
            log.warning("C-STORE from %s refused, unreadable: %s", caller, exc)
            return STATUS_CANNOT_UNDERSTAND
        future = asyncio.run_coroutine_threadsafe(self._ingest(data, caller), self._loop)
        try:
            result = future.result(INGEST_TIMEOUT_S)
        except IngestError as exc:
            log.warning("C-STORE from %s refused: %s", caller, exc)
            return STATUS_CANNOT_UNDERSTAND
        except Exception:
            future.cancel()
            log.exception("C-STORE from %s could not be stored", caller)
            return STATUS_OUT_OF_RESOURCES
        log.info("C-STORE from %s: %s%s", caller, result.sop_instance_uid,
                 " (duplicate)" if result.duplicate else "")
        return STATUS_SUCCESS

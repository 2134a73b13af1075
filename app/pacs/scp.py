"""The C-STORE and C-ECHO SCP that hospital PACS and modalities push to.

pynetdicom serves associations on its own threads; each received object is checked on its
association's thread and kept by the application's ingester (``app/pacs/ingest.py``) with
whatever else arrives meanwhile, and the association thread waits for the outcome, so
success is answered only once the object is on disk and indexed.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from app.pacs.ingest import Ingested, IngestError

log = logging.getLogger(__name__)

# Status codes of PS3.4 Annex B: "cannot understand" for a malformed object,
# "out of resources" when it could not be kept (disk, database).
STATUS_SUCCESS = 0x0000
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_OUT_OF_RESOURCES = 0xA700

#: Keeps one object (as received, and who sent it), called on an association's thread:
#: returns once it is durable, raises IngestError for a malformed one and anything else
#: when it could not be kept.
StoreFn = Callable[[bytes, str], Ingested]


# A-ABORT PDU (PS3.8 9.3.8) from the service provider (source 2), with its reason.
ABORT_UNRECOGNIZED_PDU, ABORT_UNEXPECTED_PDU, ABORT_INVALID_PARAMETER = 1, 2, 6
A_ASSOCIATE_RQ = 0x01
PDU_TYPES = range(0x01, 0x08)
# Far above any real A-ASSOCIATE-RQ (128 contexts and a SAML assertion fit in 64 KiB), far
# below what a garbage length field asks pynetdicom to wait for.
MAX_ASSOCIATE_RQ = 1 << 20


def _a_abort(reason: int) -> bytes:
    return bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, reason])


@dataclass(frozen=True)
class _Refusal:
    why: str
    abort_reason: int | None  # None: the peer left already, there is no one to tell


def _first_pdu_refusal(sock: socket.socket, timeout: float | None) -> _Refusal | None:
    """Why the peer's first bytes cannot open an association, or None. Only peeked: they
    stay for pynetdicom to read."""
    previous = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        first = sock.recv(1, socket.MSG_PEEK)
        header = sock.recv(6, socket.MSG_PEEK) if first else b""
    except OSError as exc:
        return _Refusal(f"nothing received ({exc})", ABORT_UNEXPECTED_PDU)
    finally:
        sock.settimeout(previous)
    if not first:
        return _Refusal("closed before any PDU", None)  # a port check, say
    if first[0] != A_ASSOCIATE_RQ:
        reason = ABORT_UNEXPECTED_PDU if first[0] in PDU_TYPES else ABORT_UNRECOGNIZED_PDU
        return _Refusal(f"first PDU of type 0x{first[0]:02X}, not an association request",
                        reason)
    length = int.from_bytes(header[2:], "big") if len(header) == 6 else 0
    if length > MAX_ASSOCIATE_RQ:
        return _Refusal(f"an association request of {length} bytes", ABORT_INVALID_PARAMETER)
    return None


class _Contexts(list[PresentationContext]):
    """The supported contexts, which pynetdicom deep-copies for every association: 170
    storage classes in 45 transfer syntaxes each are 7,650 UIDs re-validated by regular
    expression, 45 ms or more with the GIL held, during which the event loop (the HTTP
    side, the SFU) stands still. Each context copied with its own list of the same UIDs
    (immutable strings) is all a negotiation needs."""

    def __deepcopy__(self, memo: dict[int, Any]) -> list[PresentationContext]:
        copies = []
        for context in self:
            twin = copy.copy(context)
            twin._transfer_syntax = list(context._transfer_syntax)
            copies.append(twin)
        return copies


class _Server(ThreadedAssociationServer):
    """pynetdicom's threaded server, hardened for a port open to a hospital network, and
    made cheaper to open an association with.

    pynetdicom does the TLS handshake in its accept loop, so one peer that connects and
    sends nothing stops every other association; here it is done on the association's own
    thread. And pynetdicom answers bytes that are no DICOM (a garbage PDU type, a length of
    gigabytes) by waiting for more of them, up to its network timeout; here such a peer gets
    an A-ABORT at once.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.contexts = _Contexts(self.contexts)

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        sock, address = cast(socket.socket, self.socket).accept()
        if self.ssl_context:
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            refusal = self._refusal(request)
        except OSError as exc:  # the TLS handshake failed
            refusal = _Refusal(f"TLS handshake failed: {exc}", None)
        if refusal is None:
            super().process_request_thread(request, client_address)
            return
        if refusal.abort_reason is None:
            log.info("DICOM connection from %s closed: %s", client_address[0], refusal.why)
        else:
            log.warning("DICOM connection from %s aborted: %s", client_address[0],
                        refusal.why)
            with contextlib.suppress(OSError):  # the peer is gone already
                request.sendall(_a_abort(refusal.abort_reason))
        self.shutdown_request(request)

    def _refusal(self, request: socket.socket) -> _Refusal | None:
        if isinstance(request, ssl.SSLSocket):
            # Inside TLS the bytes cannot be peeked at; the peer is at least encrypted (and
            # authenticated, with a CA), so pynetdicom judges them.
            previous = request.gettimeout()
            request.settimeout(self.ae.acse_timeout)
            request.do_handshake()
            request.settimeout(previous)
            return None
        return _first_pdu_refusal(request, self.ae.acse_timeout)

    def shutdown(self) -> None:
        # Not pynetdicom's: that one unregisters from the AE, which only start_server()
        # registers with.
        socketserver.BaseServer.shutdown(self)
        self.server_close()


def tls_context(cert: Path, key: Path, ca: Path | None) -> ssl.SSLContext:
    """The DIMSE TLS server context (PS3.15 B.9, BCP 195: TLS 1.2 or later); with ``ca``,
    a caller must present a certificate signed by it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if ca is not None:
        context.load_verify_locations(cafile=ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class _Callers(list[str]):
    """pynetdicom checks a calling AE title only when its allow-list is truthy; this one is
    truthy even when empty, so that an empty allow-list refuses everyone."""

    def __bool__(self) -> bool:
        return True


class _CallerCheckingAE(AE):
    """An AE whose allowed calling AE titles change at run time (PACS nodes are configured
    through the API). pynetdicom reads ``require_calling_aet`` for each association."""

    callers: frozenset[str] | None = None

    @property
    def require_calling_aet(self) -> list[str]:
        return [] if self.callers is None else _Callers(sorted(self.callers))

    @require_calling_aet.setter
    def require_calling_aet(self, ae_titles: list[str]) -> None:
        # pynetdicom's own meaning: an empty list lets anyone in.
        self.callers = frozenset(ae_titles) if ae_titles else None


class StoreScp:
    """Listens on ``(host, port)`` as ``ae_title``, keeping objects with ``store``;
    ``allowed_callers`` empty means any; with ``ssl_context``, only over TLS."""

    def __init__(self, ae_title: str, host: str, port: int, allowed_callers: tuple[str, ...],
                 store: StoreFn, ssl_context: ssl.SSLContext | None = None) -> None:
        self._store = store
        self._address = (host, port)
        self._ssl_context = ssl_context
        self._ae = _CallerCheckingAE(ae_title=ae_title)
        for context in AllStoragePresentationContexts:
            assert context.abstract_syntax is not None  # pynetdicom's list names each one
            self._ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        self._ae.add_supported_context(Verification)
        self.allow_callers(allowed_callers or None)
        self._server: _Server | None = None

    def allow_callers(self, callers: Collection[str] | None) -> None:
        """From the next association on, only these calling AE titles (and then only when
        they call us by our AE title); None lets anyone in, an empty set nobody."""
        self._ae.callers = None if callers is None else frozenset(callers)
        self._ae.require_called_aet = callers is not None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self) -> None:
        server = cast(_Server, self._ae.make_server(
            self._address, ssl_context=self._ssl_context, server_class=_Server,
            evt_handlers=[(evt.EVT_C_STORE, self._on_store), (evt.EVT_C_ECHO, self._on_echo)]))
        threading.Thread(target=server.serve_forever, name="dicom-scp", daemon=True).start()
        self._server = server
        log.info("DICOM SCP %s listening on %s:%d%s", self._ae.ae_title, self._address[0],
                 self.port, " (TLS)" if self._ssl_context else "")

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
        try:
            result = self._store(data, caller)
        except IngestError as exc:
            log.warning("C-STORE from %s refused: %s", caller, exc)
            return STATUS_CANNOT_UNDERSTAND
        except Exception:
            log.exception("C-STORE from %s could not be stored", caller)
            return STATUS_OUT_OF_RESOURCES
        log.info("C-STORE from %s: %s%s", caller, result.sop_instance_uid,
                 " (duplicate)" if result.duplicate else "")
        return STATUS_SUCCESS

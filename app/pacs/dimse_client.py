"""Our side of DIMSE towards a hospital PACS: C-ECHO, C-FIND, C-MOVE and C-GET (study root),
and C-STORE of the objects we make (the minutes' key objects).

pynetdicom's association calls block, so every function here is synchronous and callers run
it in a worker thread. Objects a C-GET brings arrive on this association and are handed to
``store``, which answers with the status to send back (it blocks until the object is kept).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import (
    AE,
    ALL_TRANSFER_SYNTAXES,
    StoragePresentationContexts,
    build_role,
    evt,
)
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from app.pacs.query import (
    SERIES_RETURN_KEYS,
    STUDY_RETURN_KEYS,
    RemoteError,
    RemoteSeries,
    RemoteStudy,
    StudyQuery,
    series_from,
    study_from,
    values,
)

log = logging.getLogger(__name__)

PENDING = (0xFF00, 0xFF01)
SUCCESS = 0x0000
WARNING = 0xB000
MAX_CONTEXTS = 128  # PS3.8: presentation context IDs are odd numbers 1-255
ACSE_TIMEOUT_S = 15.0
# Between two DIMSE messages: a C-MOVE's next pending response may take a while to come.
DIMSE_TIMEOUT_S = 300.0

StoreFn = Callable[[bytes], int]


@dataclass(frozen=True)
class Peer:
    """The remote node as DIMSE sees it, and the AE title we call it as."""

    ae_title: str
    host: str
    port: int
    calling_ae_title: str


@dataclass(frozen=True)
class Retrieved:
    """The sub-operations the node reported at the end of a C-MOVE or C-GET."""

    completed: int
    failed: int
    warning: int


def _ae(calling: str) -> AE:
    ae = AE(ae_title=calling)
    ae.acse_timeout = ACSE_TIMEOUT_S
    ae.dimse_timeout = DIMSE_TIMEOUT_S
    ae.network_timeout = DIMSE_TIMEOUT_S
    return ae


@contextmanager
def _association(peer: Peer, ae: AE, **kwargs: Any) -> Iterator[Association]:
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, **kwargs)
    if not assoc.is_established:
        what = "rejected the association" if assoc.is_rejected else (
            "aborted the association" if assoc.is_aborted else "could not be reached")
        raise RemoteError(f"{peer.ae_title}@{peer.host}:{peer.port} {what}")
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def echo(peer: Peer) -> None:
    ae = _ae(peer.calling_ae_title)
    ae.add_requested_context(Verification)
    with _association(peer, ae) as assoc:
        status = assoc.send_c_echo()
        if not status or status.Status != SUCCESS:
            raise RemoteError(f"C-ECHO failed: {_status_text(status)}")


def _find(peer: Peer, identifier: Dataset, limit: int) -> list[Dataset]:
    ae = _ae(peer.calling_ae_title)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    answers: list[Dataset] = []
    with _association(peer, ae) as assoc:
        responses = assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind)
        for status, answer in responses:
            if not status:
                raise RemoteError("C-FIND: no response from the node (timeout or abort)")
            if status.Status in PENDING:
                if answer is not None and len(answers) < limit:
                    answers.append(answer)
                if len(answers) >= limit:
                    assoc.send_c_cancel(1, query_model=StudyRootQueryRetrieveInformationModelFind)
            elif status.Status not in (SUCCESS, 0xFE00):  # FE00: cancelled, as we asked
                raise RemoteError(f"C-FIND failed: {_status_text(status)}")
    return answers


def _identifier(level: str, keys: dict[str, str], return_keys: tuple[str, ...]) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword in return_keys:
        setattr(ds, keyword, "")
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def find_studies(peer: Peer, query: StudyQuery, limit: int) -> list[RemoteStudy]:
    identifier = _identifier("STUDY", query.matching_keys(), STUDY_RETURN_KEYS)
    studies = (study_from(ds) for ds in _find(peer, identifier, limit))
    return [s for s in studies if s is not None]


def find_series(peer: Peer, study_instance_uid: str, limit: int) -> list[RemoteSeries]:
    identifier = _identifier("SERIES", {"StudyInstanceUID": study_instance_uid},
                             SERIES_RETURN_KEYS)
    series = (series_from(ds) for ds in _find(peer, identifier, limit))
    return [s for s in series if s is not None]


def sop_classes_in_study(peer: Peer, study_instance_uid: str) -> list[str]:
    """What C-GET has to accept; empty when the node does not tell (then we offer many)."""
    identifier = _identifier("STUDY", {"StudyInstanceUID": study_instance_uid},
                             ("SOPClassesInStudy",))
    found = _find(peer, identifier, 1)
    return values(found[0], "SOPClassesInStudy") if found else []


def _study_identifier(study_instance_uid: str) -> Dataset:
    return _identifier("STUDY", {"StudyInstanceUID": study_instance_uid}, ())


def _retrieved(responses: Iterator[tuple[Dataset, Dataset | None]], what: str) -> Retrieved:
    final: Dataset | None = None
    for status, _ in responses:
        if not status:
            raise RemoteError(f"{what}: no response from the node (timeout or abort)")
        final = status
        if status.Status not in PENDING and status.Status not in (SUCCESS, WARNING):
            raise RemoteError(f"{what} failed: {_status_text(status)}")
    if final is None:
        raise RemoteError(f"{what}: the node sent no response")
    return Retrieved(completed=int(final.get("NumberOfCompletedSuboperations", 0) or 0),
                     failed=int(final.get("NumberOfFailedSuboperations", 0) or 0),
                     warning=int(final.get("NumberOfWarningSuboperations", 0) or 0))


def move_study(peer: Peer, study_instance_uid: str, destination_ae_title: str) -> Retrieved:
    """The node opens its own association to our SCP and sends the study there."""
    ae = _ae(peer.calling_ae_title)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    with _association(peer, ae) as assoc:
        return _retrieved(assoc.send_c_move(
            _study_identifier(study_instance_uid), destination_ae_title,
            StudyRootQueryRetrieveInformationModelMove), "C-MOVE")


def get_study(peer: Peer, study_instance_uid: str, sop_classes: list[str],
              store: StoreFn) -> Retrieved:
    """The node sends the study back on our association; we act as storage SCP for it."""
    ae = _ae(peer.calling_ae_title)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    room = MAX_CONTEXTS - 1
    if sop_classes:
        classes = sop_classes[:room]
        for uid in classes:
            ae.add_requested_context(uid, ALL_TRANSFER_SYNTAXES)
    else:
        classes = [str(cx.abstract_syntax) for cx in StoragePresentationContexts[:room]]
        for cx in StoragePresentationContexts[:room]:
            ae.add_requested_context(str(cx.abstract_syntax), cx.transfer_syntax)
    roles = [build_role(uid, scp_role=True) for uid in classes]

    def on_store(event: Any) -> int:
        try:
            data = bytes(event.encoded_dataset())
        except Exception as exc:  # pynetdicom raises what the decoder raised
            log.warning("C-GET object refused, unreadable: %s", exc)
            return 0xC000
        return store(data)

    with _association(peer, ae, ext_neg=roles,
                      evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
        return _retrieved(assoc.send_c_get(
            _study_identifier(study_instance_uid),
            StudyRootQueryRetrieveInformationModelGet), "C-GET")


def store(peer: Peer, objects: Sequence[bytes]) -> None:
    """Send ``objects`` (DICOM files) on one association; RemoteError names the first the
    node did not take (a warning status is taken: the node kept the object)."""
    datasets = [pydicom.dcmread(io.BytesIO(data)) for data in objects]
    ae = _ae(peer.calling_ae_title)
    for uid in sorted({(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID))
                       for ds in datasets}):
        ae.add_requested_context(*uid)
    with _association(peer, ae) as assoc:
        for ds in datasets:
            try:
                status = assoc.send_c_store(ds)
            except ValueError:  # pynetdicom: no accepted context for the object
                raise RemoteError(f"{peer.ae_title} accepts no {ds.SOPClassUID.name} "
                                  "objects") from None
            code = int(status.Status) if status else None
            if code is None or not (code == SUCCESS or (code & 0xF000) == WARNING):
                raise RemoteError(f"C-STORE of {ds.SOPInstanceUID} failed: "
                                  f"{_status_text(status)}")


def _status_text(status: Dataset | None) -> str:
    if not status:
        return "no response"
    comment = status.get("ErrorComment", "")
    return f"status 0x{int(status.Status):04X}" + (f" ({comment})" if comment else "")

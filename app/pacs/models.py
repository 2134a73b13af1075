"""The index of stored DICOM objects (study, series, instance, with what QIDO-RS matches on),
the remote PACS nodes an admin configured, and the imports from them."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.models import Base, Case, User, string_enum
from app.db.types import UTCDateTime, search_key, utcnow

# A name's app.text_search key, kept beside it on write. "C" on PostgreSQL: an index in
# byte order also serves prefix matches (LIKE 'nguyen%'), as SQLite's always does.
SEARCH_KEY = search_key(324)


class DicomStudy(Base):
    __tablename__ = "dicom_studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    patient_name: Mapped[str] = mapped_column(String(324), default="")
    # QIDO-RS matches names on these keys, without case or diacritics, through an index.
    patient_name_search: Mapped[str] = mapped_column(
        SEARCH_KEY, default="", server_default="", index=True)
    patient_birth_date: Mapped[str] = mapped_column(String(8), default="")
    patient_sex: Mapped[str] = mapped_column(String(16), default="")
    study_date: Mapped[str] = mapped_column(String(8), default="", index=True)
    study_time: Mapped[str] = mapped_column(String(16), default="")
    accession_number: Mapped[str] = mapped_column(String(16), default="", index=True)
    study_description: Mapped[str] = mapped_column(String(64), default="")
    referring_physician_name: Mapped[str] = mapped_column(String(324), default="")
    referring_physician_search: Mapped[str] = mapped_column(
        SEARCH_KEY, default="", server_default="", index=True)
    study_id: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    series: Mapped[list[DicomSeries]] = relationship(back_populates="study")


class DicomSeries(Base):
    __tablename__ = "dicom_series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("dicom_studies.id"), index=True)
    modality: Mapped[str] = mapped_column(String(16), default="", index=True)
    series_number: Mapped[int | None] = mapped_column(Integer)
    series_description: Mapped[str] = mapped_column(String(64), default="")
    body_part_examined: Mapped[str] = mapped_column(String(16), default="")

    study: Mapped[DicomStudy] = relationship(back_populates="series")


class DicomInstance(Base):
    """One stored object. ``path`` is relative to the DICOM store root."""

    __tablename__ = "dicom_instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("dicom_series.id"), index=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    instance_number: Mapped[int | None] = mapped_column(Integer)
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    number_of_frames: Mapped[int | None] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(Integer)
    received_from: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FrameIndex(Base):
    """Where each frame of an instance lies in one encoding: the stored file itself (its
    own transfer syntax), or a copy encoded once into another syntax and kept beside it.
    ``frames`` holds, per frame, the byte ranges ``[offset, length]`` whose concatenation
    is that frame's bytes, so serving a frame is a positioned read with no parsing."""

    __tablename__ = "frame_indexes"
    __table_args__ = (UniqueConstraint("instance_id", "transfer_syntax_uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("dicom_instances.id", ondelete="CASCADE"), index=True)
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(255))
    frames: Mapped[list[list[list[int]]]] = mapped_column(JSON)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NodeKind(str, enum.Enum):
    dimse = "dimse"
    dicomweb = "dicomweb"


class Retrieve(str, enum.Enum):
    """How a DIMSE node sends us a study: C-MOVE to our SCP, or C-GET on our association."""

    c_move = "c-move"
    c_get = "c-get"


class ImportStatus(str, enum.Enum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class PacsNode(Base):
    """A hospital PACS we query and retrieve from: DIMSE (AE title, host, port) or DICOMweb."""

    __tablename__ = "pacs_nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[NodeKind] = mapped_column(string_enum(NodeKind, "pacs_node_kind"))
    ae_title: Mapped[str] = mapped_column(String(16), default="")
    host: Mapped[str] = mapped_column(String(255), default="")
    port: Mapped[int | None] = mapped_column(Integer)
    retrieve: Mapped[Retrieve] = mapped_column(string_enum(Retrieve, "pacs_retrieve"),
                                               default=Retrieve.c_move)
    dicomweb_url: Mapped[str] = mapped_column(String(500), default="")
    hospital_id: Mapped[int | None] = mapped_column(ForeignKey("hospitals.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImportJob(Base):
    """One study brought from a node into a case; runs in the background, may be retried."""

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # A node removed later leaves its past imports with no node.
    node_id: Mapped[int | None] = mapped_column(
        ForeignKey("pacs_nodes.id", ondelete="SET NULL"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"),
                                         index=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64))
    status: Mapped[ImportStatus] = mapped_column(string_enum(ImportStatus, "import_status"),
                                                 default=ImportStatus.queued, index=True)
    instances_total: Mapped[int | None] = mapped_column(Integer)
    instances_done: Mapped[int] = mapped_column(Integer, default=0)
    instances_failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Which node runs the job, and until when that claim holds unless renewed: with several
    # nodes, one runs it, and another takes it over if that one dies.
    runner: Mapped[str] = mapped_column(String(128), default="", server_default="")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    node: Mapped[PacsNode | None] = relationship(lazy="joined")
    case: Mapped[Case] = relationship(lazy="joined")
    requested_by: Mapped[User] = relationship(lazy="joined")

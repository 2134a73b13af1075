"""The index rows of a batch of checked objects, added in one transaction: a few Core
statements for the whole batch, not a round of ORM look-ups and inserts per object.

Each statement costs about half a millisecond of CPU through SQLAlchemy's async layer (and
a transaction about one), which for one object at a time (a single association) is most of
ingest's cost: so a batch takes studies and series it saw committed from memory, and finds
instances it holds already by inserting them (ON CONFLICT DO NOTHING) rather than by a
look-up first.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Insert, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.pacs.checking import Checked, IngestError
from app.pacs.models import DicomInstance, DicomSeries, DicomStudy, FrameIndex

CHUNK = 500  # values per IN (...) list, far below any driver's parameter limit
KNOWN_LIMIT = 20_000  # studies and series remembered; forgotten all at once past that

STUDIES, SERIES = cast(Table, DicomStudy.__table__), cast(Table, DicomSeries.__table__)
INSTANCES, FRAMES = cast(Table, DicomInstance.__table__), cast(Table, FrameIndex.__table__)


@dataclass(frozen=True)
class Entry:
    checked: Checked
    received_from: str


@dataclass
class Known:
    """Ids of studies and series committed earlier. Index rows are never removed, so an id
    once committed stays right; a failed transaction forgets everything all the same."""

    studies: dict[str, int] = field(default_factory=dict)
    series: dict[str, tuple[int, int]] = field(default_factory=dict)  # (id, its study's id)

    def learn(self, added: Added) -> None:
        if len(self.studies) + len(self.series) > KNOWN_LIMIT:
            self.forget()
        self.studies.update(added.studies)
        self.series.update(added.series)

    def forget(self) -> None:
        self.studies.clear()
        self.series.clear()


@dataclass
class Added:
    """What a batch's transaction did with each entry, by SOP Instance UID; the entries in
    neither ``held`` nor ``refused`` were added."""

    #: Instances the index held already, with the path their row names.
    held: dict[str, str] = field(default_factory=dict)
    refused: dict[str, IngestError] = field(default_factory=dict)
    #: The studies and series the batch used, for ``Known`` once committed.
    studies: dict[str, int] = field(default_factory=dict)
    series: dict[str, tuple[int, int]] = field(default_factory=dict)


def _chunks(values: Collection[str]) -> list[list[str]]:
    ordered = sorted(values)
    return [ordered[i:i + CHUNK] for i in range(0, len(ordered), CHUNK)]


async def held_paths(session: AsyncSession, sop_uids: Collection[str]) -> dict[str, str]:
    """Which of these instances the index holds: SOP Instance UID to the row's path."""
    found: dict[str, str] = {}
    for chunk in _chunks(sop_uids):
        rows = await session.execute(
            select(DicomInstance.sop_instance_uid, DicomInstance.path)
            .where(DicomInstance.sop_instance_uid.in_(chunk)))
        found.update({str(uid): str(path) for uid, path in rows})
    return found


async def indexed_paths(session: AsyncSession, paths: Collection[str]) -> set[str]:
    """Which of these store paths an index row names."""
    found: set[str] = set()
    for chunk in _chunks(paths):
        found.update(await session.scalars(
            select(DicomInstance.path).where(DicomInstance.path.in_(chunk))))
    return found


def _insert_new(conn: AsyncConnection, table: Table, key: str) -> Insert:
    """INSERT that skips a row whose ``key`` is taken, on either database."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=[key])
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=[key])


async def _study_ids(conn: AsyncConnection, entries: Sequence[Entry], known: Known
                     ) -> dict[str, int]:
    """Each entry's study id, inserting the studies not indexed yet (their first object's
    attributes are the study's)."""
    first = {e.checked.study_uid: e.checked for e in reversed(entries)}
    ids = {uid: known.studies[uid] for uid in first if uid in known.studies}
    for chunk in _chunks(first.keys() - ids.keys()):
        rows = await conn.execute(select(STUDIES.c.study_instance_uid, STUDIES.c.id)
                                  .where(STUDIES.c.study_instance_uid.in_(chunk)))
        ids.update({str(uid): int(id_) for uid, id_ in rows})
    new = [{"study_instance_uid": uid, **checked.study}
           for uid, checked in first.items() if uid not in ids]
    if new:
        rows = await conn.execute(
            STUDIES.insert().returning(STUDIES.c.study_instance_uid, STUDIES.c.id), new)
        ids.update({str(uid): int(id_) for uid, id_ in rows})
    return ids


async def _series_ids(conn: AsyncConnection, entries: Sequence[Entry],
                      studies: dict[str, int], known: Known) -> dict[str, tuple[int, int]]:
    """Each entry's series as (series id, its study's id), inserting the new ones."""
    first = {e.checked.series_uid: e.checked for e in reversed(entries)}
    ids = {uid: known.series[uid] for uid in first if uid in known.series}
    for chunk in _chunks(first.keys() - ids.keys()):
        rows = await conn.execute(
            select(SERIES.c.series_instance_uid, SERIES.c.id, SERIES.c.study_id)
            .where(SERIES.c.series_instance_uid.in_(chunk)))
        ids.update({str(uid): (int(id_), int(study)) for uid, id_, study in rows})
    new = [{"series_instance_uid": uid, "study_id": studies[checked.study_uid],
            **checked.series} for uid, checked in first.items() if uid not in ids]
    if new:
        rows = await conn.execute(
            SERIES.insert().returning(SERIES.c.series_instance_uid, SERIES.c.id,
                                      SERIES.c.study_id), new)
        ids.update({str(uid): (int(id_), int(study)) for uid, id_, study in rows})
    return ids


async def add(session: AsyncSession, entries: Sequence[Entry], known: Known) -> Added:
    """Index ``entries`` (distinct SOP Instance UIDs, their files in place) inside the
    session's transaction, which the caller commits. An instance held already is left as it
    is; one whose series the index has under another study is refused."""
    conn = await session.connection()
    studies = await _study_ids(conn, entries, known)
    series = await _series_ids(conn, entries, studies, known)
    added = Added(studies=studies, series=series)
    rows = []
    for entry in entries:
        checked = entry.checked
        series_id, study_id = series[checked.series_uid]
        if study_id != studies[checked.study_uid]:
            added.refused[checked.sop_uid] = IngestError(
                f"series {checked.series_uid} already belongs to another study")
            continue
        rows.append({"sop_instance_uid": checked.sop_uid, "series_id": series_id,
                     "sop_class_uid": checked.sop_class_uid, "path": checked.relative_path,
                     "size_bytes": len(checked.data),
                     "received_from": entry.received_from[:64], **checked.instance})
    if added.refused:
        # Held already is a duplicate, whatever series it names now: idempotent by SOP
        # Instance UID.
        added.held = await held_paths(session, added.refused)
        for sop in added.held:
            del added.refused[sop]
    if not rows:
        return added
    ids = {str(uid): int(id_) for uid, id_ in await conn.execute(
        _insert_new(conn, INSTANCES, "sop_instance_uid").returning(
            INSTANCES.c.sop_instance_uid, INSTANCES.c.id), rows)}
    skipped = [row["sop_instance_uid"] for row in rows if row["sop_instance_uid"] not in ids]
    if skipped:
        added.held.update(await held_paths(session, skipped))
    # The stored file's own frame index, so that no first request has to build it.
    frames = [{"instance_id": ids[c.sop_uid], "transfer_syntax_uid": c.frames[0],
               "path": c.relative_path, "frames": c.frames[1], "size_bytes": len(c.data)}
              for c in (e.checked for e in entries) if c.frames is not None and c.sop_uid in ids]
    if frames:
        await conn.execute(FRAMES.insert(), frames)
    return added

"""What the ingest tests share: objects to send, ways to send them, the index and the store
looked at, SQL to make the database refuse, and the check that nothing is half kept after a
server was killed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
from sqlalchemy import select, text

from app.db.engine import create_engine, session_factory
from app.pacs.checking import check
from app.pacs.models import DicomInstance, FrameIndex
from app.pacs.staging import STAGING_DIR
from app.pacs.store import store_root
from app.pacs.syntaxes import EXPLICIT_LE
from tests.app_process import AppProcess, free_port
from tests.pacs.multipart import parts

FRAMES_ACCEPT = 'multipart/related; type="application/octet-stream"'


def ct(folder: Path | None = None) -> pydicom.Dataset:
    """CT_small under a new SOP Instance UID (written to ``folder`` when given)."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    if folder is not None:
        ds.save_as(folder / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
    return ds


def send_all(port: int, datasets: list[pydicom.Dataset]) -> list[int]:
    """The C-STORE statuses of ``datasets`` sent on one association."""
    ae = AE(ae_title="PACS")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="HOICHAN")
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def stored_files(root: Path) -> set[Path]:
    """The store's files, the staging directories' aside (see ``staged_files``)."""
    return {p for p in files_under(root) if STAGING_DIR not in p.relative_to(root).parts}


def staged_files(root: Path) -> list[Path]:
    return sorted(files_under(root / STAGING_DIR))


async def held(scp: Any) -> dict[str, Path]:
    """The index of an SCP opened by ``open_scp``: SOP Instance UID to its file."""
    async with scp.sessions() as s:
        rows = (await s.execute(select(DicomInstance.sop_instance_uid, DicomInstance.path))).all()
    return {uid: scp.root / path for uid, path in rows}


async def execute_sql(url: str, statements: list[str]) -> None:
    """Run ``statements`` in one transaction (triggers that make the index refuse)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def server(world: Any, root: Path) -> AppProcess:
    """`hoichan serve` on the world's database, with its DICOM port, storing under
    ``root``; tokens of ``world.auth`` are good for it."""
    app = AppProcess(root, HOICHAN_DATABASE_URL=world.settings.database_url,
                     HOICHAN_JWT_SECRET=world.settings.jwt_secret)
    app.env["HOICHAN_DICOM_PORT"] = str(free_port())  # AppProcess's default is none
    return app


async def nothing_half_kept(world: Any, app: AppProcess, sent: dict[str, pydicom.Dataset],
                            acked: set[str]) -> None:
    """After a kill and a restart of ``app``: every acknowledged object is indexed and
    readable by WADO-RS, frame for frame as sent; what the index holds beyond them was stored
    as its answer was lost with the process; the files are exactly the rows' (each whole),
    each with its frame index, and no staged file is left."""
    engine = create_engine(world.settings.database_url)
    try:
        async with session_factory(engine)() as s:
            rows = {uid: path for uid, path in await s.execute(
                select(DicomInstance.sop_instance_uid, DicomInstance.path))}
            framed = set(await s.scalars(
                select(DicomInstance.sop_instance_uid)
                .join(FrameIndex, FrameIndex.instance_id == DicomInstance.id)
                .where(FrameIndex.transfer_syntax_uid == EXPLICIT_LE)))
    finally:
        await engine.dispose()
    assert acked <= set(rows) <= set(sent), (len(acked), len(rows))
    assert framed == set(rows)  # the stored file's frame index, made at ingest
    root = store_root(app.data_dir)
    assert stored_files(root) == {root / path for path in rows.values()}
    assert staged_files(root) == []
    (own,) = (root / STAGING_DIR).iterdir()  # the restarted process's; the dead one's gone
    assert app.proc is not None and own.name.startswith(f"{app.proc.pid}-")
    for uid, path in rows.items():
        assert check((root / path).read_bytes()).sop_uid == uid  # whole, readable
    async with aiohttp.ClientSession(headers=world.auth("admin")) as http:
        for uid in sorted(rows):
            ds = sent[uid]
            url = (f"{app.url}/dicomweb/studies/{ds.StudyInstanceUID}/series/"
                   f"{ds.SeriesInstanceUID}/instances/{uid}/frames/1")
            async with http.get(url, headers={"Accept": FRAMES_ACCEPT}) as r:
                assert r.status == 200, await r.text()
                (frame,) = parts(await r.read(), r.headers["Content-Type"])
            assert frame == ds.PixelData  # native little endian, one frame


# "insert": the index refuses the row (before anything is written). "commit": a deferred
# foreign key fails the commit, after the file was written and fsynced.
REFUSING = {
    ("sqlite", "insert"): (
        [("CREATE TRIGGER refuse BEFORE INSERT ON dicom_instances "
          "BEGIN SELECT RAISE(ABORT, 'the index refuses'); END")],
        ["DROP TRIGGER refuse"]),
    ("postgresql", "insert"): (
        [("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
          "$$ BEGIN RAISE EXCEPTION 'the index refuses'; END $$"),
         ("CREATE TRIGGER refuse BEFORE INSERT ON dicom_instances "
          "FOR EACH ROW EXECUTE FUNCTION refuse()")],
        ["DROP TRIGGER refuse ON dicom_instances", "DROP FUNCTION refuse()"]),
    ("sqlite", "commit"): (
        ["CREATE TABLE guard_parent (id INTEGER PRIMARY KEY)",
         ("CREATE TABLE guard (parent INTEGER REFERENCES guard_parent (id) "
          "DEFERRABLE INITIALLY DEFERRED)"),
         ("CREATE TRIGGER refuse AFTER INSERT ON dicom_instances "
          "BEGIN INSERT INTO guard VALUES (-1); END")],
        ["DROP TRIGGER refuse", "DROP TABLE guard", "DROP TABLE guard_parent"]),
    ("postgresql", "commit"): (
        ["CREATE TABLE guard_parent (id INTEGER PRIMARY KEY)",
         ("CREATE TABLE guard (parent INTEGER REFERENCES guard_parent (id) "
          "DEFERRABLE INITIALLY DEFERRED)"),
         ("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
          "$$ BEGIN INSERT INTO guard VALUES (-1); RETURN NEW; END $$"),
         ("CREATE TRIGGER refuse AFTER INSERT ON dicom_instances "
          "FOR EACH ROW EXECUTE FUNCTION refuse()")],
        ["DROP TRIGGER refuse ON dicom_instances", "DROP FUNCTION refuse()",
         "DROP TABLE guard", "DROP TABLE guard_parent"]),
}

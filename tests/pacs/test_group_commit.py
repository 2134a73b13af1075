"""Ingest in group commits: objects arriving together are committed together, one that the
index refuses does not fail the others, a commit's lost outcome is settled, the stored
file's frame index is written with its instance, what a killed process placed without
indexing is removed by the next start, and a file in the way is replaced only when no row
holds it and no other process is placing it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import event, func, select

from app.db.engine import create_engine, session_factory
from app.pacs import frame_index, index_batch, store
from app.pacs.checking import check
from app.pacs.ingest import Ingester
from app.pacs.models import DicomInstance, FrameIndex
from app.pacs.staging import STAGING_DIR, Staging
from app.pacs.store import store_root
from app.pacs.syntaxes import EXPLICIT_LE
from tests.pacs.ingest_helpers import execute_sql, staged_files, stored_files
from tests.pacs.scp_helpers import fresh_copy
from tests.pacs.tiny import Study, instance

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def ingester(settings: Any) -> AsyncIterator[Ingester]:
    engine = create_engine(settings.database_url)
    ingester = Ingester(session_factory(engine), settings.data_dir)
    await ingester.start()
    ingester.engine = engine  # type: ignore[attr-defined]
    ingester.sessions = session_factory(engine)  # type: ignore[attr-defined]
    try:
        yield ingester
    finally:
        await ingester.close()
        await engine.dispose()


def tiny_objects(count: int) -> list[bytes]:
    study = Study(generate_uid(), "GC-1", "TRAN^GROUP", "20261202")
    return [instance(study, 1, number) for number in range(1, count + 1)]


async def rows(ingester: Any) -> dict[str, str]:
    async with ingester.sessions() as s:
        return {uid: path for uid, path in await s.execute(
            select(DicomInstance.sop_instance_uid, DicomInstance.path))}


async def test_objects_arriving_together_are_committed_together(ingester, settings):
    commits = []
    event.listen(ingester.engine.sync_engine, "commit", lambda conn: commits.append(1))
    objects = tiny_objects(24)
    results = await asyncio.gather(*(ingester.ingest(data, "test") for data in objects))
    assert not any(r.duplicate for r in results)
    root = store_root(settings.data_dir)
    index = await rows(ingester)
    assert set(index) == {r.sop_instance_uid for r in results}
    assert stored_files(root) == {root / path for path in index.values()}
    assert staged_files(root) == []
    assert len(commits) < len(objects) / 4, commits  # groups, not one commit per object
    async with ingester.sessions() as s:
        indexed = await s.scalar(select(func.count()).select_from(FrameIndex).where(
            FrameIndex.transfer_syntax_uid == EXPLICIT_LE))
    assert indexed == len(objects)


REFUSE_ONE = {
    "sqlite": (["CREATE TRIGGER refuse_one BEFORE INSERT ON dicom_instances "
                "WHEN NEW.sop_instance_uid = '{uid}' "
                "BEGIN SELECT RAISE(ABORT, 'the index refuses this one'); END"],
               ["DROP TRIGGER refuse_one"]),
    "postgresql": (["CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN IF NEW.sop_instance_uid = '{uid}' THEN "
                    "RAISE EXCEPTION 'the index refuses this one'; END IF; RETURN NEW; END $$",
                    "CREATE TRIGGER refuse_one BEFORE INSERT ON dicom_instances "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_one()"],
                   ["DROP TRIGGER refuse_one ON dicom_instances", "DROP FUNCTION refuse_one()"]),
}


async def test_one_object_the_index_refuses_does_not_fail_its_batch(ingester, settings):
    objects = tiny_objects(10)
    bad = (await ingester.check(objects[3])).sop_uid
    install, remove = REFUSE_ONE["sqlite" if settings.is_sqlite else "postgresql"]
    await execute_sql(settings.database_url, [s.replace("{uid}", bad) for s in install])
    try:
        results = await asyncio.gather(*(ingester.ingest(data, "test") for data in objects),
                                       return_exceptions=True)
    finally:
        await execute_sql(settings.database_url, remove)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1 and "refuses this one" in str(failed[0]), results
    assert results[3] is failed[0]
    index = await rows(ingester)
    assert bad not in index and len(index) == 9
    root = store_root(settings.data_dir)
    assert stored_files(root) == {root / path for path in index.values()}
    assert staged_files(root) == []


async def test_a_repeat_within_one_batch_is_a_duplicate(ingester, settings):
    data = tiny_objects(1)[0]
    first, again = await asyncio.gather(ingester.ingest(data, "a"), ingester.ingest(data, "b"))
    assert sorted([first.duplicate, again.duplicate]) == [False, True]
    root = store_root(settings.data_dir)
    index = await rows(ingester)
    assert list(index) == [first.sop_instance_uid]
    assert stored_files(root) == {root / path for path in index.values()}


# The stored file's frame index, made at ingest: by offset for native little endian, by
# fragments for encapsulated syntaxes (multi-frame too), none for big endian or deflated.
FRAME_FILES = {"CT_small.dcm": EXPLICIT_LE, "MR_small_implicit.dcm": EXPLICIT_LE,
               "MR_small_RLE.dcm": "1.2.840.10008.1.2.5",
               "emri_small_jpeg_2k_lossless.dcm": "1.2.840.10008.1.2.4.90",
               "SC_rgb_rle_2frame.dcm": "1.2.840.10008.1.2.5",
               "MR_small_bigendian.dcm": None, "image_dfl.dcm": None}


async def test_the_stored_files_frame_index_is_written_at_ingest(ingester, settings,
                                                                 tmp_path):
    root = store_root(settings.data_dir)
    for name, encoding in FRAME_FILES.items():
        # Under a new SOP Instance UID: some of these files share one.
        data = Path(fresh_copy(name, tmp_path)).read_bytes()
        result = await ingester.ingest(data, "test")
        async with ingester.sessions() as s:
            row = await s.scalar(select(DicomInstance).where(
                DicomInstance.sop_instance_uid == result.sop_instance_uid))
            indexes = list(await s.scalars(
                select(FrameIndex).where(FrameIndex.instance_id == row.id)))
        if encoding is None:
            assert indexes == [], name
            continue
        (index,) = indexes
        assert (index.transfer_syntax_uid, index.path) == (encoding, row.path), name
        # The frames it points at are those the lazy build finds in the file.
        built = await asyncio.to_thread(frame_index.build, root, row, encoding)
        numbers = list(range(1, len(built.frames) + 1))
        assert len(index.frames) == len(built.frames), name
        assert frame_index.read(root, index, numbers) == frame_index.read(root, built, numbers)


async def test_a_commit_that_happened_though_it_failed_is_stored(ingester, settings,
                                                                 monkeypatch):
    # COMMIT reached the database, then its answer was lost with the connection: the index
    # says the object is held, so it is stored (not removed, not reported failed).
    real_add = index_batch.add
    lost: list[int] = []

    async def commit_then_fail(session: Any, *args: Any) -> Any:
        added = await real_add(session, *args)
        if not lost:
            lost.append(1)
            await session.commit()
            raise ConnectionResetError("the answer to COMMIT was lost")
        return added

    monkeypatch.setattr(index_batch, "add", commit_then_fail)
    result = await ingester.ingest(tiny_objects(1)[0], "test")
    assert lost and not result.duplicate
    root = store_root(settings.data_dir)
    index = await rows(ingester)
    assert list(index) == [result.sop_instance_uid]
    assert stored_files(root) == {root / index[result.sop_instance_uid]}
    assert staged_files(root) == []


async def test_a_commit_whose_outcome_cannot_be_learned_is_settled_later(ingester, settings,
                                                                        monkeypatch):
    # COMMIT failed and the index cannot be asked either: reported failed, the file stays
    # until the next batch asks again (here: it had not been committed, so it goes).
    failing = [1, 1]
    real_add, real_held = index_batch.add, index_batch.held_paths

    async def add_then_fail(*args: Any) -> Any:
        added = await real_add(*args)
        if failing:
            failing.pop()
            raise ConnectionResetError("the database went away")
        return added

    async def held_fails_once(*args: Any) -> Any:
        if failing:
            failing.pop()
            raise ConnectionResetError("the database went away")
        return await real_held(*args)

    monkeypatch.setattr(index_batch, "add", add_then_fail)
    monkeypatch.setattr(index_batch, "held_paths", held_fails_once)
    lost, later = tiny_objects(2)
    with pytest.raises(ConnectionResetError):
        await ingester.ingest(lost, "test")
    root = store_root(settings.data_dir)
    assert await rows(ingester) == {}
    assert len(stored_files(root)) == 1 and len(staged_files(root)) == 1  # not yet settled
    stored = await ingester.ingest(later, "test")
    index = await rows(ingester)
    assert list(index) == [stored.sop_instance_uid]
    assert stored_files(root) == {root / index[stored.sop_instance_uid]}
    assert staged_files(root) == []


# A process that staged an object, placed it in the store, then died before indexing it.
DIES_AFTER_PLACING = """
import os, signal, sys
from pathlib import Path
from app.pacs import store
from app.pacs.staging import Staging
root, relative, data = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]).read_bytes()
staging = Staging.open(root)
copy = staging.write(relative, data)
staging.sync()
store.make_dirs([(root / relative).parent])
store.link_into_place(copy, root / relative)
store.sync_dir((root / relative).parent)
# Also staged, never placed: its store path is another process's file by then.
staging.write(sys.argv[4], data)
staging.sync()
os.kill(os.getpid(), signal.SIGKILL)
"""


async def test_a_killed_processs_placed_but_unindexed_files_are_removed_at_start(
        settings, tmp_path):
    root = store_root(settings.data_dir)
    engine = create_engine(settings.database_url)
    try:
        # An object stored and indexed: the dead process had a staged copy for its path too,
        # but the file there is this one, not the dead process's.
        kept = await _ingest_one(engine, settings.data_dir, tiny_objects(1)[0])
        orphan = tiny_objects(1)[0]
        source = tmp_path / "orphan.dcm"
        source.write_bytes(orphan)
        relative = check(orphan).relative_path
        done = subprocess.run(
            [sys.executable, "-c", DIES_AFTER_PLACING, str(root), relative, str(source),
             kept[1]], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == -signal.SIGKILL, done.stderr
        assert (root / relative).exists() and len(staged_files(root)) == 2

        ingester = Ingester(session_factory(engine), settings.data_dir)
        await ingester.start()
        await ingester.close()
        assert not (root / relative).exists()  # placed, never indexed: gone
        assert stored_files(root) == {root / kept[1]}  # another's file at a staged path: kept
        assert list((root / STAGING_DIR).iterdir()) == []
    finally:
        await engine.dispose()


async def _ingest_one(engine: Any, data_dir: Path, data: bytes) -> tuple[str, str]:
    ingester = Ingester(session_factory(engine), data_dir)
    await ingester.start()
    try:
        result = await ingester.ingest(data, "test")
    finally:
        await ingester.close()
    return result.sop_instance_uid, check(data).relative_path



async def test_a_file_no_row_holds_nor_staged_copy_names_is_replaced(ingester, settings):
    # Left by a version that wrote files straight into place (killed before its commit).
    data = tiny_objects(1)[0]
    root = store_root(settings.data_dir)
    orphan = root / check(data).relative_path
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"half an object")
    result = await ingester.ingest(data, "test")
    assert not result.duplicate
    assert orphan.read_bytes() == data
    assert stored_files(root) == {orphan} and staged_files(root) == []


async def test_a_file_another_live_process_is_placing_is_left_to_it(ingester, settings):
    data = tiny_objects(1)[0]
    root = store_root(settings.data_dir)
    relative = check(data).relative_path
    other = Staging.open(root)  # as another process would, which holds it while it lives
    try:
        copy = other.write(relative, data)
        store.make_dirs([(root / relative).parent])
        store.link_into_place(copy, root / relative)
        with pytest.raises(FileExistsError, match="another process is storing"):
            await ingester.ingest(data, "test")
        assert await rows(ingester) == {}
        assert (root / relative).samefile(copy)  # the other's file, untouched
    finally:
        copy.unlink()
        (root / relative).unlink()
        other.close()
